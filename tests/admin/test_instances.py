"""One instance through the admin API: detail, edit, delete, crawl; login, token and CSRF."""

from __future__ import annotations

import re
import time
from datetime import date, timedelta

import pytest

from benchmarks.fleet import ENDPOINTS, stats, system_info
from tests.admin.test_list import ITEM_KEYS
from tests.stats.seeding import add_snapshots

ADMIN_ROUTES = [
    ("GET", "/api/admin/instances"),
    ("GET", "/api/admin/instances/{uuid}"),
    ("PATCH", "/api/admin/instances/{uuid}"),
    ("DELETE", "/api/admin/instances/{uuid}"),
    ("POST", "/api/admin/instances/{uuid}/crawl"),
    ("POST", "/api/admin/crawl"),
    ("GET", "/api/admin/crawl/some-job"),
    ("GET", "/api/admin/statistics"),
    ("GET", "/api/admin/statistics/trend?field=version"),
    ("GET", "/api/admin/export"),
]


def test_every_route_needs_a_login_or_a_token(client, instances):
    for method, path in ADMIN_ROUTES:
        url = path.format(uuid=instances[1])
        for headers in ({}, {"Authorization": "Bearer ceph_wrong"}, {"Authorization": "Basic x"}):
            response = client.open(url, method=method, headers=headers, json={})
            assert response.status_code == 401, (method, url, headers)
            assert response.json == {"error": "Authentication required"}


def test_detail(api, app, instances):
    with app.app_context():
        from cephalopod.instances.operations import get_instance

        instance_id = get_instance(instances[1]).id
    first = date(2026, 1, 1)
    add_snapshots(
        app, [(instance_id, first + timedelta(days=d), {"version": f"0.{d}"}) for d in range(95)]
    )
    reply = api(f"/api/admin/instances/{instances[1]}").json
    assert set(reply) == ITEM_KEYS | {"crawled_data", "history", "audit"}
    assert reply["crawled_data"] == {"version": "1.0", "events": 10, "cores": [1, 2]}
    assert reply["fields"] == {"cores": 3, "events": 10, "version": "1.0"}
    assert len(reply["history"]) == 90
    assert reply["history"][0] == {"date": "2026-04-05", "data": {"version": "0.94"}}
    assert reply["history"][-1]["date"] == "2026-01-06"
    never = api(f"/api/admin/instances/{instances[4]}").json
    assert (never["crawled_data"], never["history"]) == (None, [])
    assert api(f"/api/admin/instances/{instances[2]}").json["duplicate_of"] == instances[1]


@pytest.mark.parametrize("uuid", ["00000000-0000-4000-8000-000000000999", "not-a-uuid"])
def test_unknown_instances_are_404(api, instances, uuid):
    for method in ("GET", "PATCH", "DELETE"):
        response = api(f"/api/admin/instances/{uuid}", method, json={"contact": "x"})
        assert response.status_code == 404
        assert response.json == {"error": "Instance not found"}
    assert api(f"/api/admin/instances/{uuid}/crawl", "POST").status_code == 404


def test_edit(api, instances):
    response = api(
        f"/api/admin/instances/{instances[2]}",
        "PATCH",
        json={"url": "https://beta.example.org/", "enabled": False, "contact": None},
    )
    assert response.status_code == 200, response.json
    item = response.json
    assert set(item) == ITEM_KEYS
    assert (item["url"], item["enabled"], item["contact"]) == (
        "https://beta.example.org",
        False,
        "Contact 2",
    )
    assert item["duplicate_of"] is None  # no longer the same URL as Alpha
    assert item["fields"] == {"events": 2.5, "version": "2.0"}


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"email": "not-an-address"}, {"field": "email"}),
        ({"enabled": "false"}, {"field": "enabled", "error": "enabled must be true or false"}),
        ({"url": "ftp://x.org"}, {"field": "url"}),
        ({"contact": "  "}, {"error": "Invalid value", "field": "contact"}),
        ({"uuid": "x"}, {"error": "Unexpected data", "data": {"uuid": "x"}}),
        ([1], {"error": "The JSON body must be an object"}),
    ],
)
def test_edit_validates_like_the_public_api(api, instances, body, error):
    response = api(f"/api/admin/instances/{instances[1]}", "PATCH", json=body)
    assert response.status_code == 400
    assert error.items() <= response.json.items()


def test_delete(api, app, instances):
    assert api(f"/api/admin/instances/{instances[1]}", "DELETE").status_code == 204
    assert api(f"/api/admin/instances/{instances[1]}").status_code == 404
    assert api("/api/admin/instances").json["total"] == 4
    from tests.conftest import count_rows

    assert count_rows(app, "instance_fields") == 8  # 2, 3 and 5 keep theirs


def test_crawl_one_now(make_app, fleet, auth_for):
    from tests.admin.conftest import SETTINGS

    app = make_app(CRAWLED_FIELDS_SETTINGS=SETTINGS, CRAWLING_ENDPOINTS=ENDPOINTS)
    client = app.test_client()
    headers = auth_for(app)
    body = {"url": f"{fleet}/i/7", "contact": "C", "email": "c@x.org", "organization": "O"}
    uuid = client.post("/api/instance/", json=body).json["uuid"]
    response = client.post(f"/api/admin/instances/{uuid}/crawl", headers=headers)
    assert response.status_code == 200, response.json
    item = response.json
    assert set(item) == ITEM_KEYS
    assert item["crawl_status"] == "ok"
    expected = {**system_info(7), **stats(7)}
    expected["contributions"] = None  # a list without aggregation in these settings
    assert item["fields"] == expected


def test_crawl_all_in_the_background(make_app, fleet, auth_for):
    app = make_app(CRAWLING_ENDPOINTS=ENDPOINTS)
    client = app.test_client()
    headers = auth_for(app)
    for n in (1, 2):
        body = {"url": f"{fleet}/i/{n}", "contact": "C", "email": "c@x.org",
                "organization": f"O{n}"}  # fmt: skip
        client.post("/api/instance/", json=body)
    started = client.post("/api/admin/crawl", headers=headers)
    assert started.status_code == 202
    assert set(started.json) == {"job"}
    job = started.json["job"]
    deadline = time.monotonic() + 20
    while True:
        status = client.get(f"/api/admin/crawl/{job}", headers=headers).json
        assert set(status) == {"state", "total", "done", "ok", "failed"}
        if status["state"] in ("done", "failed") or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert status == {"state": "done", "total": 2, "done": 2, "ok": 2, "failed": 0}
    missing = client.get("/api/admin/crawl/no-such-job", headers=headers)
    assert (missing.status_code, missing.json) == (404, {"error": "Crawl job not found"})


# --- session login and CSRF ---------------------------------------------------------------------


def _session_login(client) -> str:
    """Log in through the form as a browser does; return the page's CSRF token."""
    page = client.get("/login")
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text).group(1)
    form = {"csrf_token": token, "username": "admin", "password": "admin-password"}
    assert client.post("/login", data=form).status_code == 302
    return token


def test_session_reads_freely_but_writes_need_the_csrf_token(client, token, instances):
    csrf = _session_login(client)
    assert client.get("/api/admin/instances").status_code == 200
    url = f"/api/admin/instances/{instances[1]}"
    refused = client.patch(url, json={"contact": "Mallory"})
    assert refused.status_code == 400
    assert "CSRF" in refused.json["error"]
    assert (
        client.patch(url, json={"contact": "Ann"}, headers={"X-CSRFToken": "forged"}).status_code
        == 400
    )
    assert client.delete(url).status_code == 400
    assert client.post("/api/admin/crawl").status_code == 400
    accepted = client.patch(url, json={"contact": "Ann"}, headers={"X-CSRFToken": csrf})
    assert (accepted.status_code, accepted.json["contact"]) == (200, "Ann")


def test_token_writes_need_no_csrf_token(app, api, instances):
    assert app.config["WTF_CSRF_ENABLED"] is not False
    response = api(f"/api/admin/instances/{instances[1]}", "PATCH", json={"contact": "Bob"})
    assert (response.status_code, response.json["contact"]) == (200, "Bob")
