"""The registration protocol, rule by rule, on SQLite and PostgreSQL (Flask's test client).

Real clients (Indico's community hub) speak it, so every rule of the issue has a row here.
"""

from __future__ import annotations

import json
import uuid as uuid_mod
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from cephalopod.db import db
from cephalopod.instances.models import Instance, InstanceField, Snapshot
from cephalopod.instances.schemas import ALIASES
from tests.conftest import count_rows

PREFIXES = ["/api/instance", "/instance"]
VALID: dict[str, Any] = {
    "url": "https://indico.example.org",
    "contact": "Ann Example",
    "email": "ann@example.org",
    "organization": "Example Lab",
}
SUMMARY_KEYS = {"uuid", "enabled", "url", "contact", "email", "organization", "registered"}
MISSING = object()
REQUIRED = ["url", "contact", "email", "organization"]


def post_json(client: FlaskClient, body: Any, prefix: str = "/api/instance") -> Any:
    """POST a JSON text body exactly as Indico does (a string with the JSON content type)."""
    text = body if isinstance(body, str) else json.dumps(body)
    return client.post(f"{prefix}/", data=text, content_type="application/json")


def patch_json(client: FlaskClient, uuid: str, body: Any, prefix: str = "/api/instance") -> Any:
    """PATCH a JSON text body."""
    text = body if isinstance(body, str) else json.dumps(body)
    return client.patch(f"{prefix}/{uuid}", data=text, content_type="application/json")


def with_changes(**changes: Any) -> dict[str, Any]:
    """The valid body with some keys changed (``MISSING`` removes one)."""
    body = {**VALID, **changes}
    return {k: v for k, v in body.items() if v is not MISSING}


def register(client: FlaskClient, **changes: Any) -> str:
    """Register an instance and return its uuid."""
    response = post_json(client, with_changes(**changes))
    assert response.status_code == 201, response.json
    return response.json["uuid"]


def db_record(app: Flask, uuid: str) -> dict[str, Any]:
    """The stored row of an instance, read straight from the database."""
    with app.app_context():
        instance = db.session.scalar(select(Instance).where(Instance.uuid == uuid_mod.UUID(uuid)))
        assert instance is not None
        return {
            "url": instance.url,
            "contact": instance.contact,
            "email": instance.email,
            "organization": instance.organization,
            "enabled": instance.enabled,
            "updated_at": instance.updated_at,
        }


# --- POST: the happy path ---------------------------------------------------------------------


@pytest.mark.parametrize("prefix", PREFIXES)
def test_register_replies_201_with_uuid_and_location(
    app: Flask, client: FlaskClient, prefix: str
) -> None:
    response = post_json(client, VALID, prefix)
    assert response.status_code == 201
    assert response.is_json
    assert set(response.json) == {"uuid"}
    uuid = response.json["uuid"]
    assert len(uuid) == 36
    assert uuid[14] == "4"  # a version-4 UUID
    assert response.headers["Location"].endswith(f"{prefix}/{uuid}")
    assert client.get(response.headers["Location"]).status_code == 200
    record = db_record(app, uuid)
    assert record["enabled"] is True
    assert {k: record[k] for k in VALID} == VALID


@pytest.mark.parametrize(
    ("changes", "stored"),
    [
        pytest.param({"url": "https://indico.example.org/"}, {"url": VALID["url"]}, id="slash"),
        pytest.param(
            {"url": "  https://indico.example.org/event/  "},
            {"url": "https://indico.example.org/event"},
            id="url-stripped",
        ),
        pytest.param({"url": "http://x.example.org:8080"}, {}, id="http-port"),
        pytest.param({"url": "HTTPS://Indico.Example.org"}, {}, id="upper-scheme-kept"),
        pytest.param({"url": "http://[2001:db8::1]:8443/indico"}, {}, id="ipv6"),
        pytest.param({"url": "https://x.example.org/?a=1"}, {}, id="query"),
        pytest.param({"url": "https://x.org/" + "a" * (2048 - 14)}, {}, id="url-2048"),
        pytest.param(
            {"contact": "  Ann  ", "organization": "\tLab\n"},
            {"contact": "Ann", "organization": "Lab"},
            id="whitespace-stripped",
        ),
        pytest.param({"contact": "x" * 255, "organization": "y" * 255}, {}, id="255-chars"),
        pytest.param({"contact": "Zoë Ünïcødé 😀", "organization": "東京大学"}, {}, id="unicode"),
        pytest.param({"email": "Ann.Example+hub@Example.ORG"}, {}, id="email-kept-as-sent"),
        pytest.param({"email": "ann@exämple.org"}, {}, id="email-idn"),
        pytest.param(
            {"organization": MISSING, "organisation": "British Lab"},
            {"organization": "British Lab"},
            id="organisation-alias",
        ),
        pytest.param(
            {"enabled": False, "uuid": "x", "foo": {"bar": 1}}, {"enabled": True}, id="unknown"
        ),
    ],
)
def test_register_normalises(
    app: Flask, client: FlaskClient, changes: dict[str, Any], stored: dict[str, Any]
) -> None:
    body = with_changes(**changes)
    uuid = register(client, **changes)
    expected = {k: body.get(k, v) for k, v in VALID.items()}
    expected.update(stored)
    summary = client.get(f"/api/instance/{uuid}").json
    assert {k: summary[k] for k in expected} == expected
    assert summary["enabled"] is stored.get("enabled", True)


def test_register_accepts_paired_surrogate_escapes(client: FlaskClient) -> None:
    text = json.dumps(VALID)[:-1] + ', "contact": "Ann \\ud83d\\ude00"}'
    response = post_json(client, text)
    assert response.status_code == 201, response.json
    assert client.get(f"/api/instance/{response.json['uuid']}").json["contact"] == "Ann 😀"


def test_register_twice_gives_two_uuids(client: FlaskClient) -> None:
    assert register(client) != register(client)


# --- POST: every rule that refuses ------------------------------------------------------------

# (changes to the valid body, the field named in the answer, whether it is "Invalid value")
POST_INVALID: list[Any] = [
    *[pytest.param({f: MISSING}, f, True, id=f"{f}-missing") for f in REQUIRED],
    *[pytest.param({f: None}, f, True, id=f"{f}-null") for f in REQUIRED],
    *[pytest.param({f: ""}, f, True, id=f"{f}-empty") for f in REQUIRED],
    *[pytest.param({f: " \t\n "}, f, True, id=f"{f}-blank") for f in REQUIRED],
    *[pytest.param({f: 42}, f, False, id=f"{f}-number") for f in REQUIRED],
    *[pytest.param({f: ["x"]}, f, False, id=f"{f}-list") for f in REQUIRED],
    *[pytest.param({f: {"x": 1}}, f, False, id=f"{f}-object") for f in REQUIRED],
    *[pytest.param({f: True}, f, False, id=f"{f}-bool") for f in REQUIRED],
    pytest.param(
        {"organization": MISSING, "organisation": ""}, "organisation", True, id="alias-empty"
    ),
    pytest.param({"organisation": "Other"}, "organisation", False, id="both-spellings"),
    pytest.param({"url": "ftp://indico.example.org"}, "url", False, id="url-ftp"),
    pytest.param({"url": "javascript:alert(1)"}, "url", False, id="url-javascript"),
    pytest.param({"url": "file:///etc/passwd"}, "url", False, id="url-file"),
    pytest.param({"url": "indico.example.org"}, "url", False, id="url-no-scheme"),
    pytest.param({"url": "//indico.example.org"}, "url", False, id="url-scheme-relative"),
    pytest.param({"url": "https://"}, "url", False, id="url-no-host"),
    pytest.param({"url": "https:///event"}, "url", False, id="url-empty-host"),
    pytest.param({"url": "https://:443/"}, "url", False, id="url-port-only"),
    pytest.param({"url": "https://user@indico.example.org"}, "url", False, id="url-user"),
    pytest.param({"url": "https://user:pw@indico.example.org"}, "url", False, id="url-userinfo"),
    pytest.param({"url": "https://@indico.example.org"}, "url", False, id="url-empty-user"),
    pytest.param({"url": "https://indico.example.org/#top"}, "url", False, id="url-fragment"),
    pytest.param({"url": "https://indico.example.org/#"}, "url", False, id="url-empty-fragment"),
    pytest.param({"url": "https://indico.example.org:99999"}, "url", False, id="url-bad-port"),
    pytest.param({"url": "https://indico.example.org:0"}, "url", False, id="url-port-0"),
    pytest.param({"url": "https://[::1"}, "url", False, id="url-bad-ipv6"),
    pytest.param({"url": "https://indico.example.org/a b"}, "url", False, id="url-space"),
    pytest.param({"url": "https://x.org/" + "a" * (2049 - 14)}, "url", False, id="url-2049"),
    pytest.param({"email": "ann.example.org"}, "email", False, id="email-no-at"),
    pytest.param({"email": "ann@"}, "email", False, id="email-no-domain"),
    pytest.param({"email": "@example.org"}, "email", False, id="email-no-local"),
    pytest.param({"email": "ann example@example.org"}, "email", False, id="email-space"),
    pytest.param({"email": "Ann <ann@example.org>"}, "email", False, id="email-display-name"),
    pytest.param({"email": "ann@example"}, "email", False, id="email-no-tld"),
    pytest.param({"email": "a" * 244 + "@example.org"}, "email", False, id="email-256"),
    pytest.param({"contact": "x" * 256}, "contact", False, id="contact-256"),
    pytest.param({"organization": "x" * 256}, "organization", False, id="organization-256"),
    pytest.param(
        {"organisation": "x" * 256, "organization": MISSING},
        "organisation",
        False,
        id="organisation-256",
    ),
    pytest.param({"contact": "Ann\x00"}, "contact", False, id="contact-nul"),
    pytest.param({"contact": "Ann\nExample"}, "contact", False, id="contact-newline"),
    pytest.param({"organization": "Lab\x1b[31m"}, "organization", False, id="organization-escape"),
    pytest.param({"organization": "Lab\x7f"}, "organization", False, id="organization-del"),
    pytest.param({"contact": "Ann\x85Example"}, "contact", False, id="contact-c1-control"),
    pytest.param({"url": "https://indico.example.org/\x00"}, "url", False, id="url-nul"),
    pytest.param({"email": "ann\x07@example.org"}, "email", False, id="email-bell"),
]


@pytest.mark.parametrize(("changes", "field", "invalid_value"), POST_INVALID)
def test_register_refuses(
    app: Flask, client: FlaskClient, changes: dict[str, Any], field: str, invalid_value: bool
) -> None:
    response = post_json(client, with_changes(**changes))
    assert response.status_code == 400, response.json
    assert response.is_json
    assert response.json["field"] == field
    if invalid_value:
        assert response.json["error"] == "Invalid value"
    else:
        assert ALIASES.get(field, field) in response.json["error"]
    assert count_rows(app, "instances") == 0


@pytest.mark.parametrize("field", REQUIRED)
def test_register_refuses_unpaired_surrogates(app: Flask, client: FlaskClient, field: str) -> None:
    for escape in ("\\ud800", "\\udfff", "x\\udc00y"):
        body = json.dumps(VALID)[:-1] + f', "{field}": "{escape}"}}'
        response = post_json(client, body)
        assert response.status_code == 400, (escape, response.json)
        assert response.json["field"] == field
        assert "surrogate" in response.json["error"]
    assert count_rows(app, "instances") == 0


# --- GET: the summary -------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", PREFIXES)
def test_summary_shape(client: FlaskClient, prefix: str) -> None:
    before = datetime.now(UTC)
    uuid = register(client, url="https://indico.example.org/")
    response = client.get(f"{prefix}/{uuid}")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    summary = response.json
    assert set(summary) == SUMMARY_KEYS
    assert list(summary) == ["uuid", "enabled", "url", "contact", "email", "organization",
                             "registered"]  # fmt: skip
    assert summary == {
        **VALID,
        "uuid": uuid,
        "enabled": True,
        "registered": summary["registered"],
    }
    registered = datetime.fromisoformat(summary["registered"])
    assert summary["registered"].endswith(("Z", "+00:00"))
    assert registered.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=1) <= registered <= datetime.now(UTC)


def test_summary_registered_is_utc_whatever_the_display_timezone(
    make_app: Callable[..., Flask],
) -> None:
    client = make_app(BABEL_DEFAULT_TIMEZONE="Asia/Tokyo").test_client()
    uuid = register(client)
    registered = client.get(f"/api/instance/{uuid}").json["registered"]
    assert datetime.fromisoformat(registered).utcoffset() == timedelta(0)


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize(
    "uuid",
    [
        "6b2f5a4e-0000-4000-8000-000000000000",  # well-formed, unknown
        "not-a-uuid",
        "1234",
        "6b2f5a4e-0000-4000-8000-00000000000g",
        "%00",
        "' OR 1=1 --",
        "x" * 300,
    ],
)
def test_unknown_or_malformed_uuid_is_json_404_with_cors(
    client: FlaskClient, prefix: str, uuid: str
) -> None:
    register(client)
    for method in ("GET", "PATCH", "DELETE"):
        kwargs = {"json": {"enabled": False}} if method == "PATCH" else {}
        response = client.open(f"{prefix}/{uuid}", method=method, **kwargs)
        assert response.status_code == 404, (method, response.data)
        assert response.is_json
        assert response.json["error"]
    assert client.get(f"{prefix}/{uuid}").headers["Access-Control-Allow-Origin"] == "*"


def test_cors_preflight(client: FlaskClient) -> None:
    uuid = register(client)
    response = client.options(
        f"/api/instance/{uuid}",
        headers={"Origin": "https://indico.example.org", "Access-Control-Request-Method": "GET"},
    )
    assert response.status_code in (200, 204)
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "GET" in response.headers["Access-Control-Allow-Methods"]


def test_uuid_lookup_ignores_case(client: FlaskClient) -> None:
    uuid = register(client)
    assert client.get(f"/api/instance/{uuid.upper()}").json["uuid"] == uuid


# --- PATCH ------------------------------------------------------------------------------------

PATCH_VALID: list[Any] = [
    pytest.param({"enabled": False}, {"enabled": False}, id="disable"),
    pytest.param({"url": "https://new.example.org/"}, {"url": "https://new.example.org"}, id="url"),
    pytest.param({"contact": " Bob "}, {"contact": "Bob"}, id="contact"),
    pytest.param({"email": "bob@example.org"}, {"email": "bob@example.org"}, id="email"),
    pytest.param({"organization": "New Lab"}, {"organization": "New Lab"}, id="organization"),
    pytest.param({"organisation": "British"}, {"organization": "British"}, id="organisation"),
    pytest.param({}, {}, id="empty-object"),
    pytest.param({"contact": None, "url": None, "enabled": None}, {}, id="nulls-ignored"),
    pytest.param(
        {"contact": None, "email": "bob@example.org"}, {"email": "bob@example.org"}, id="null+value"
    ),
    pytest.param(
        # what Indico's sync_instance sends: everything at once
        {
            "enabled": True,
            "url": "https://indico.example.org",
            "contact": "Ann Example",
            "email": "ann@example.org",
            "organization": "Renamed Lab",
        },
        {"organization": "Renamed Lab"},
        id="indico-sync",
    ),
]


@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize(("body", "changed"), PATCH_VALID)
def test_patch_changes_a_subset(
    app: Flask, client: FlaskClient, prefix: str, body: dict[str, Any], changed: dict[str, Any]
) -> None:
    uuid = register(client)
    before = db_record(app, uuid)
    response = patch_json(client, uuid, body, prefix)
    assert response.status_code == 200, response.json
    expected = {**VALID, "enabled": True, **changed}
    assert set(response.json) == SUMMARY_KEYS
    assert {k: response.json[k] for k in expected} == expected
    assert client.get(f"/api/instance/{uuid}").json == response.json
    after = db_record(app, uuid)
    assert {k: after[k] for k in expected} == expected
    if changed:
        assert after["updated_at"] > before["updated_at"]
    else:
        assert after["updated_at"] == before["updated_at"]


def test_patch_enable_again(client: FlaskClient) -> None:
    uuid = register(client)
    assert patch_json(client, uuid, {"enabled": False}).json["enabled"] is False
    assert patch_json(client, uuid, {"enabled": True}).json["enabled"] is True


# (body, the JSON answer expected exactly, or the field it must name)
PATCH_INVALID: list[Any] = [
    *[
        pytest.param({f: ""}, {"error": "Invalid value", "field": f}, id=f"{f}-empty")
        for f in REQUIRED
    ],
    pytest.param(
        {"organisation": ""},
        {"error": "Invalid value", "field": "organisation"},
        id="organisation-empty",
    ),
    pytest.param({"contact": "   "}, {"error": "Invalid value", "field": "contact"}, id="blank"),
    pytest.param(
        {"foo": "bar"}, {"error": "Unexpected data", "data": {"foo": "bar"}}, id="unknown-key"
    ),
    pytest.param(
        {"foo": None, "uuid": "x", "contact": "Bob"},
        {"error": "Unexpected data", "data": {"foo": None, "uuid": "x"}},
        id="unknown-keys-with-valid",
    ),
    pytest.param(
        {"registered": "2020-01-01T00:00:00Z"},
        {"error": "Unexpected data", "data": {"registered": "2020-01-01T00:00:00Z"}},
        id="read-only-key",
    ),
    pytest.param({"enabled": "false"}, "enabled", id="enabled-string-false"),
    pytest.param({"enabled": "true"}, "enabled", id="enabled-string-true"),
    pytest.param({"enabled": 0}, "enabled", id="enabled-zero"),
    pytest.param({"enabled": 1}, "enabled", id="enabled-one"),
    pytest.param({"enabled": []}, "enabled", id="enabled-list"),
    pytest.param({"url": 42}, "url", id="url-number"),
    pytest.param({"url": "ftp://x.example.org"}, "url", id="url-ftp"),
    pytest.param({"url": "https://u:p@x.example.org"}, "url", id="url-userinfo"),
    pytest.param({"url": "https://x.example.org/#a"}, "url", id="url-fragment"),
    pytest.param({"email": "not-an-email"}, "email", id="email"),
    pytest.param({"contact": ["Bob"]}, "contact", id="contact-list"),
    pytest.param({"contact": "x" * 256}, "contact", id="contact-256"),
    pytest.param({"organization": "Lab\x00"}, "organization", id="organization-nul"),
    pytest.param({"organization": "A", "organisation": "B"}, "organisation", id="both-spellings"),
    pytest.param(
        # valid changes beside one invalid value: none of them may be applied
        {"enabled": False, "contact": "Bob", "url": "https://new.example.org", "email": "x"},
        "email",
        id="valid-changes-with-one-invalid",
    ),
    pytest.param(
        {"enabled": False, "organization": ""},
        {"error": "Invalid value", "field": "organization"},
        id="disable-with-empty",
    ),
]


@pytest.mark.parametrize(("body", "expected"), PATCH_INVALID)
def test_patch_refuses_and_changes_nothing(
    app: Flask, client: FlaskClient, body: dict[str, Any], expected: dict[str, Any] | str
) -> None:
    uuid = register(client)
    before = db_record(app, uuid)
    response = patch_json(client, uuid, body)
    assert response.status_code == 400, response.json
    assert response.is_json
    if isinstance(expected, dict):
        assert {k: response.json.get(k) for k in expected} == expected
    else:
        assert response.json["field"] == expected
        assert expected in response.json["error"]
    assert db_record(app, uuid) == before


def test_patch_refuses_unpaired_surrogate(app: Flask, client: FlaskClient) -> None:
    uuid = register(client)
    before = db_record(app, uuid)
    response = patch_json(client, uuid, '{"enabled": false, "contact": "Bob \\udbff"}')
    assert response.status_code == 400
    assert response.json["field"] == "contact"
    assert db_record(app, uuid) == before


# --- DELETE -----------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", PREFIXES)
def test_delete_removes_the_record_and_everything_crawled(
    app: Flask, client: FlaskClient, prefix: str
) -> None:
    leaving, staying = register(client), register(client)
    with app.app_context():
        for uuid in (leaving, staying):
            instance = db.session.scalar(
                select(Instance).where(Instance.uuid == uuid_mod.UUID(uuid))
            )
            assert instance is not None
            instance.crawled_data = {"python_version": "3.12"}
            db.session.add(
                InstanceField(instance=instance, field="python_version", value_text='"3.12"')
            )
            for day in (date(2026, 1, 1), date(2026, 1, 2)):
                db.session.add(
                    Snapshot(instance=instance, day=day, data={"python_version": "3.12"})
                )
        db.session.commit()
    assert count_rows(app, "snapshots") == 4

    response = client.delete(f"{prefix}/{leaving}")
    assert response.status_code == 204
    assert response.data == b""
    assert client.get(f"/api/instance/{leaving}").status_code == 404
    assert count_rows(app, "instances") == 1
    assert count_rows(app, "instance_fields") == 1
    assert count_rows(app, "snapshots") == 2
    assert client.get(f"/api/instance/{staying}").status_code == 200
    # gone for good: a second delete and a PATCH find nothing, a new POST is a new uuid
    assert client.delete(f"{prefix}/{leaving}").status_code == 404
    assert patch_json(client, leaving, {"enabled": True}).status_code == 404
