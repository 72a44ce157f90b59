"""GET /api/admin/audit: filters, paging, bad parameters; the instance item's latest entries."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask

from cephalopod.audit import operations as audit
from cephalopod.audit.operations import Actor
from cephalopod.db import db
from cephalopod.instances import operations as ops

T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)


@pytest.fixture
def log(app: Flask, make_instance, admin: dict[str, Any]) -> dict[str, Any]:
    """Two instances and a known history: 6 entries each an hour apart from T0, plus the
    registrations and the admin's token (recorded now)."""
    one, two = make_instance(), make_instance()
    with app.app_context():
        history = [
            ("update", Actor.instance("192.0.2.1"), one),
            ("disable", Actor("user", name="ann", address="192.0.2.2"), one),
            ("crawl", Actor("token", name="bob", token_id=admin["token_id"]), two),
            ("enable", Actor("user", name="ann"), one),
            ("login_failed", Actor("anonymous", name="mallory", address="192.0.2.9"), None),
            ("delete", Actor("user", name="bob"), two),
        ]
        for hour, (action, actor, instance) in enumerate(history):
            audit.record(action, actor, instance=instance, at=T0 + timedelta(hours=hour))
        db.session.commit()
    return {"one": str(one.uuid), "two": str(two.uuid), "headers": admin["headers"]}


def get(client, log: dict[str, Any], query: str = "") -> Any:
    response = client.get(f"/api/admin/audit{query}", headers=log["headers"])
    return response


def actions(reply: Any) -> list[str]:
    return [item["action"] for item in reply.json["items"]]


def test_the_whole_log_newest_first(client, log) -> None:
    reply = get(client, log)
    assert reply.status_code == 200
    body = reply.json
    assert (body["total"], body["page"], body["per_page"]) == (9, 1, 50)
    # the token, then the registrations, were made now, long after T0
    assert actions(reply) == [
        "register",
        "register",
        "token_create",
        "delete",
        "login_failed",
        "enable",
        "crawl",
        "disable",
        "update",
    ]
    assert body["items"][0]["instance_uuid"] == log["two"]  # the same time: the later first
    times = [item["time"] for item in body["items"]]
    assert times == sorted(times, reverse=True)
    item = next(i for i in body["items"] if i["action"] == "disable")
    assert item == {
        "id": item["id"],
        "time": "2026-06-01T13:00:00Z",
        "action": "disable",
        "actor_kind": "user",
        "actor": "ann",
        "token_id": None,
        "address": "192.0.2.2",
        "instance_uuid": log["one"],
        "instance_name": item["instance_name"],
        "instance_url": item["instance_url"],
        "changes": None,
    }
    assert item["instance_name"].startswith("Organization ")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?action=enable", ["enable"]),
        ("?actor=ann", ["enable", "disable"]),
        ("?actor=bob&actor_kind=token", ["crawl"]),
        ("?actor_kind=anonymous", ["login_failed"]),
        ("?since=2026-06-01T14:00:00Z&until=2026-06-01T16:00:00Z", ["enable", "crawl"]),
        (
            "?since=2026-06-01T16:00:00%2B02:00&until=2026-06-01T17:00:00z",
            ["login_failed", "enable", "crawl"],
        ),
        ("?since=2026-06-01t11:30:00-00:30&until=2026-06-01T13:00:00.5Z", ["disable", "update"]),
        ("?until=2026-06-01T12:00:00.000001Z", ["update"]),
        ("?action=update&since=&until=&instance=&actor=", ["update"]),  # empty: no filter
    ],
)
def test_filters(client, log, query: str, expected: list[str]) -> None:
    reply = get(client, log, query)
    assert reply.status_code == 200, reply.json
    assert actions(reply) == expected
    assert reply.json["total"] == len(expected)


def test_an_instance_filter_and_a_deleted_instance(client, log) -> None:
    assert actions(get(client, log, f"?instance={log['one']}")) == [
        "register",
        "enable",
        "disable",
        "update",
    ]
    assert actions(get(client, log, f"?instance={log['two'].upper()}")) == [
        "register",
        "delete",
        "crawl",
    ]
    assert get(client, log, f"?instance={uuid.uuid4()}").json["total"] == 0


def test_paging(client, log) -> None:
    first = get(client, log, "?per_page=4")
    second = get(client, log, "?per_page=4&page=2")
    last = get(client, log, "?per_page=4&page=3")
    beyond = get(client, log, "?per_page=4&page=4")
    ids = [i["id"] for page in (first, second, last) for i in page.json["items"]]
    assert len(ids) == len(set(ids)) == 9
    assert [len(p.json["items"]) for p in (first, second, last, beyond)] == [4, 4, 1, 0]
    assert (second.json["page"], second.json["per_page"], second.json["total"]) == (2, 4, 9)


@pytest.mark.parametrize(
    ("query", "parameter", "words"),
    [
        ("?instance=nope", "instance", "must be a UUID"),
        ("?instance=%7B12345678-1234-4234-8234-123456789abc%7D", "instance", "must be a UUID"),
        ("?action=explode", "action", "must be one of register"),
        ("?actor_kind=robot", "actor_kind", "must be one of instance"),
        ("?actor=" + "x" * 256, "actor", "at most 255 characters"),
        ("?actor=a%00b", "actor", "control characters"),
        ("?since=yesterday", "since", "RFC 3339"),
        ("?since=2026-06-01T12:00:00", "since", "RFC 3339"),  # no offset: which time?
        ("?since=2026-06-01", "since", "RFC 3339"),
        ("?until=2024-01-01T12:99:00Z", "until", "not a valid date and time"),
        ("?until=2024-02-30T12:00:00Z", "until", "not a valid date and time"),
        ("?page=0", "page", "between 1 and"),
        ("?per_page=501", "per_page", "between 1 and 500"),
        ("?per_page=ten", "per_page", "whole number"),
        ("?action=update&action=delete", "action", "more than once"),
        ("?sort=time", "sort", "unknown parameter"),
    ],
)
def test_bad_parameters_are_refused_with_a_message(client, log, query, parameter, words) -> None:
    reply = get(client, log, query)
    assert reply.status_code == 400
    assert reply.json["parameter"] == parameter
    assert words in reply.json["error"]


def test_login_required(client, log) -> None:
    reply = client.get("/api/admin/audit")
    assert reply.status_code == 401
    assert reply.json == {"error": "Authentication required"}


def test_the_instance_item_carries_its_latest_entries(app: Flask, client, log) -> None:
    reply = client.get(f"/api/admin/instances/{log['one']}", headers=log["headers"])
    assert reply.status_code == 200
    assert [e["action"] for e in reply.json["audit"]] == ["register", "enable", "disable", "update"]
    assert {e["instance_uuid"] for e in reply.json["audit"]} == {log["one"]}
    with app.app_context():
        instance = ops.get_instance(log["one"])
        assert instance is not None
        for n in range(25):
            ops.update_instance(instance, {"contact": f"Contact {n}"})
    reply = client.get(f"/api/admin/instances/{log['one']}", headers=log["headers"])
    latest = reply.json["audit"]
    assert len(latest) == 20
    assert latest[0]["changes"] == {"contact": {"old": "Contact 23", "new": "Contact 24"}}
