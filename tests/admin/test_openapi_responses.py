"""Real replies of every documented route match the OpenAPI document, on both databases.

One story calls every operation of the document with real data — a fleet with crawled data,
display values and history, an instance crawled for real from a local fake, a crawl job,
statistics with charts, trends, both export formats, the registration protocol — and its
error replies; each body is validated (with ``jsonschema``, ``$ref`` resolved through a
``referencing`` registry holding the document) against the schema documented for the status
it came with. Every documented (path, method, status) must be reached at least once, so the
document cannot promise a reply that no route gives, nor a route give one it does not list.
"""

from __future__ import annotations

import time
import uuid as uuid_mod
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from cephalopod.admin import api as admin_api
from cephalopod.admin.openapi import document
from cephalopod.db import db
from cephalopod.instances.models import Instance
from tests.admin.conftest import SETTINGS
from tests.stats.seeding import add_snapshots

DOCUMENT_URI = "urn:cephalopod:openapi"
FLEET_ENDPOINTS = [{"url": "/system-info", "headers": {}}, {"url": "/stats", "headers": {}}]
METHODS = ("get", "post", "put", "patch", "delete", "options")

UNKNOWN = "00000000-0000-4000-8000-00000000ffff"
FORMATS = FormatChecker()


@FORMATS.checks("date-time", raises=ValueError)
def _is_utc_timestamp(value: object) -> bool:
    """The API's timestamps: ISO 8601 in UTC, with a Z (jsonschema checks none by default)."""
    if not isinstance(value, str):
        return True
    return value.endswith("Z") and datetime.fromisoformat(value).utcoffset() == timedelta(0)


@FORMATS.checks("date", raises=ValueError)
def _is_date(value: object) -> bool:
    return not isinstance(value, str) or date.fromisoformat(value).isoformat() == value


def _pointer(*parts: str) -> str:
    return "/".join(quote(part.replace("~", "~0").replace("/", "~1"), safe="") for part in parts)


class Checker:
    """Validate replies against the document; remember which documented replies were seen."""

    def __init__(self) -> None:
        self.spec = document()
        self.registry: Registry = Registry().with_resource(
            DOCUMENT_URI, Resource(contents=self.spec, specification=DRAFT202012)
        )
        self.seen: set[tuple[str, str, str]] = set()

    def __call__(self, path: str, method: str, response: Any) -> Any:
        """Check one reply of the documented ``path`` (OpenAPI style) and return it."""
        method = method.lower()
        operation = self.spec["paths"][path][method]
        status = str(response.status_code)
        where = f"{method.upper()} {path} → {status}: {response.get_data(as_text=True)[:300]}"
        assert status in operation["responses"], f"undocumented reply {where}"
        self.seen.add((path, method, status))
        content = operation["responses"][status].get("content")
        if content is None:
            assert response.get_data() == b"", where
            return response
        assert response.mimetype in content, (where, response.mimetype)
        if response.mimetype == "application/json":
            body = response.get_json()
        else:
            body = response.get_data(as_text=True)
        pointer = _pointer("paths", path, method, "responses", status, "content")
        pointer += "/" + _pointer(response.mimetype, "schema")
        validator = Draft202012Validator(
            {"$ref": f"{DOCUMENT_URI}#/{pointer}"},
            registry=self.registry,
            format_checker=FORMATS,
        )
        errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(body)]
        assert not errors, (where, errors[:5])
        return response

    def documented(self) -> set[tuple[str, str, str]]:
        """Every (path, method, status) the document lists."""
        return {
            (path, method, status)
            for path, item in self.spec["paths"].items()
            for method, operation in item.items()
            if method in METHODS
            for status in operation["responses"]
        }


def test_component_schemas_are_valid_json_schema():
    for name, schema in document()["components"]["schemas"].items():
        assert name
        Draft202012Validator.check_schema(schema)


def _snapshots(app, uuids: dict[int, str]) -> None:
    """Give two fleet instances a few days of history (a field's values moving)."""
    with app.app_context():
        ids = dict(db.session.execute(sa.select(Instance.uuid, Instance.id)).all())
    first, second = (ids[uuid_mod.UUID(uuids[n])] for n in (1, 2))
    today = date(2026, 1, 10)
    add_snapshots(
        app,
        [
            (first, today - timedelta(days=40), {"version": "0.9", "events": 1, "secret": "x"}),
            (first, today, {"version": "1.0", "events": 10, "secret": "x"}),
            (second, today - timedelta(days=3), {"version": "2.0", "events": 2.5}),
        ],
    )


@pytest.fixture
def public_app(make_app):
    """The app with settings, a fake fleet's endpoints and public statistics."""
    return make_app(
        CRAWLED_FIELDS_SETTINGS=SETTINGS,
        CRAWLING_ENDPOINTS=FLEET_ENDPOINTS,
        PUBLIC_STATISTICS=True,
        REGISTRATION_RATE_LIMIT="6 per hour",
    )


def test_every_documented_reply_matches_its_schema(
    public_app, make_app, make_instance, instances, auth_for, fleet, monkeypatch
):
    app = public_app
    check = Checker()
    client = app.test_client()
    headers = auth_for(app)
    _snapshots(app, instances)

    def admin(path: str, method: str = "GET", url: str | None = None, **kwargs: Any) -> Any:
        response = client.open(url or path, method=method, headers=headers, **kwargs)
        return check(path, method, response)

    one, never = instances[1], instances[4]
    detail = "/api/admin/instances/{uuid}"

    # the registration protocol, both prefixes: 201, 200, 400, 404, 413, 429, 204
    body = {"url": f"{fleet}/i/7", "contact": "C", "email": "c@x.org", "organization": "O"}
    for prefix in ("/api/instance", "/instance"):
        path = f"{prefix}/"
        check(path, "post", client.post(path, json={"url": "nope"}))
        check(path, "post", client.post(path, data="x" * 70_000, content_type="application/json"))
        if prefix == "/api/instance":
            created = check(path, "post", client.post(path, json=body)).json["uuid"]
        record = f"{prefix}/{{uuid}}"
        check(record, "get", client.get(f"{prefix}/{created}"))
        check(record, "get", client.get(f"{prefix}/{UNKNOWN}"))
        check(record, "patch", client.patch(f"{prefix}/{created}", json={"contact": "D"}))
        check(record, "patch", client.patch(f"{prefix}/{created}", json={"nope": 1}))
        check(record, "patch", client.patch(f"{prefix}/{created}", json={"url": ""}))
        big = {"contact": "x" * 70_000}
        check(record, "patch", client.patch(f"{prefix}/{created}", json=big))
        check(record, "patch", client.patch(f"{prefix}/{UNKNOWN}", json={"contact": "D"}))
        check(record, "options", client.options(f"{prefix}/{created}"))
        check(record, "delete", client.delete(f"{prefix}/{UNKNOWN}"))
        check(record, "delete", client.delete(f"{prefix}/{make_instance().uuid}"))
    for _ in range(4):  # the budget is shared by both prefixes: this exhausts it
        check("/instance/", "post", client.post("/instance/", json=body))
    check("/api/instance/", "post", client.post("/api/instance/", json=body))

    # crawl one instance for real (from the local fake), then read it back
    crawled = check(
        "/api/admin/instances/{uuid}/crawl",
        "post",
        client.post(f"/api/admin/instances/{created}/crawl", headers=headers),
    )
    admin("/api/admin/instances/{uuid}/crawl", "POST", f"/api/admin/instances/{UNKNOWN}/crawl")
    if crawled.status_code == 202:  # a crawl-now that answers with a job to poll
        _wait(client, headers, crawled.json["job"])
    # a crawl-now that is not done at once answers 202 with its job (no waiting at all here)
    monkeypatch.setattr(admin_api, "CRAWL_WAIT_SECONDS", 0.0)
    queued = check(
        "/api/admin/instances/{uuid}/crawl",
        "post",
        client.post(f"/api/admin/instances/{created}/crawl", headers=headers),
    )
    assert queued.status_code == 202, queued.json
    _wait(client, headers, queued.json["job"])
    for uuid in (created, one, never):
        reply = admin(detail, url=f"/api/admin/instances/{uuid}")
        assert reply.status_code == 200
    assert admin(detail, url=f"/api/admin/instances/{one}").json["history"]
    admin(detail, url=f"/api/admin/instances/{UNKNOWN}")

    # the list: filters, sorts by main and crawled fields, duplicates; refused parameters
    for query in (
        "",
        "?sort=field:version&order=desc",
        "?sort=field:events&country=DE",
        "?duplicates=1&status=enabled",
        "?health=error&q=gamma",
        "?sort=last_crawl&per_page=2&page=2",
        "?sort=field:nope",
        "?page=0",
        "?per_page=10&per_page=20",
        "?colour=red",
    ):
        admin("/api/admin/instances", url=f"/api/admin/instances{query}")
    assert admin("/api/admin/instances", url="/api/admin/instances?duplicates=1").json["total"]

    # edits and deletion through the admin API
    admin(detail, "PATCH", f"/api/admin/instances/{one}", json={"organization": "Alpha 2"})
    admin(detail, "PATCH", f"/api/admin/instances/{one}", json={"email": "not an address"})
    admin(detail, "PATCH", f"/api/admin/instances/{UNKNOWN}", json={"enabled": False})
    admin(detail, "DELETE", f"/api/admin/instances/{instances[3]}")
    admin(detail, "DELETE", f"/api/admin/instances/{instances[3]}")

    # a crawl of all, polled to its end; an unknown job
    job = admin("/api/admin/crawl", "POST").json["job"]
    _wait(client, headers, job, check)
    admin("/api/admin/crawl/{job}", url="/api/admin/crawl/no-such-job")

    # statistics (with charts), trends, geolocation, export
    for status in ("", "?status=all", "?status=disabled", "?status=bogus"):
        admin("/api/admin/statistics", url=f"/api/admin/statistics{status}")
    assert admin("/api/admin/statistics").json["charts"]
    for status in ("", "?status=all", "?status=maybe"):
        check("/api/statistics", "get", client.get(f"/api/statistics{status}"))
    for query in (
        "field=version",
        "field=version&interval=day&status=all",
        "field=events&interval=week",
        "field=instances",
        "field=secret",
        "interval=day",
    ):
        trend = "/api/admin/statistics/trend"
        admin(trend, url=f"{trend}?{query}")
    admin("/api/admin/geolocation")
    for query in ("?format=json", "?format=csv&sort=field:version", "?format=xml"):
        admin("/api/admin/export", url=f"/api/admin/export{query}")

    # the audit log of all the above: filters, paging, refused parameters; an item's entries
    for query in (
        "",
        f"?instance={created}&per_page=2&page=2",
        f"?instance={instances[3]}",  # deleted above: its entries stay
        "?action=update&actor=admin&actor_kind=token",
        "?since=2026-01-01T00:00:00Z&until=2999-01-01T00:00:00%2B01:00",
        "?since=yesterday",
        "?action=explode",
        "?per_page=0",
    ):
        admin("/api/admin/audit", url=f"/api/admin/audit{query}")
    entries = admin("/api/admin/audit", url="/api/admin/audit").json["items"]
    assert {e["action"] for e in entries} >= {"register", "update", "delete", "crawl"}
    assert admin(detail, url=f"/api/admin/instances/{created}").json["audit"]

    # the document itself; without login; public statistics switched off
    check("/api/openapi.json", "get", client.get("/api/openapi.json"))
    for path, item in check.spec["paths"].items():  # every admin operation wants a login
        for method in (m for m in item if m in METHODS and path.startswith("/api/admin")):
            url = path.replace("{uuid}", one).replace("{job}", job)
            check(path, method, client.open(url, method=method))
    closed = make_app(CRAWLED_FIELDS_SETTINGS=SETTINGS)
    check("/api/statistics", "get", closed.test_client().get("/api/statistics"))

    missing = sorted(check.documented() - check.seen)
    assert not missing, f"documented replies no call reached: {missing}"


def _wait(client, headers, job: str, check: Checker | None = None) -> None:
    deadline = time.monotonic() + 30
    while True:
        response = client.get(f"/api/admin/crawl/{job}", headers=headers)
        if check is not None:
            check("/api/admin/crawl/{job}", "get", response)
        if response.json["state"] in ("done", "failed") or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert response.json["state"] == "done", response.json
