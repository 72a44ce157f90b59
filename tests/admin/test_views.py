"""The admin web pages through Flask's test client, on SQLite and PostgreSQL.

Status, headings, the layout, strangers' strings escaped, ``javascript:`` URLs never linked,
security headers, login required, and public statistics without anything personal.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from markupsafe import escape

from cephalopod.auth import operations as auth_ops
from cephalopod.db import db
from cephalopod.instances.models import Instance, Snapshot
from cephalopod.instances.urls import url_key
from cephalopod.stats.fields import parse_field_settings
from tests.admin.conftest import SETTINGS, T0
from tests.stats.seeding import insert_instances, instance_row

XSS_IMG = "<img src=x onerror=alert(1)>"
XSS_SCRIPT = "</script><script>alert(1)</script>"
JS_URL = "javascript:alert(1)"
PAGES = ("/", "/servers", "/statistics")


@pytest.fixture
def users(app: Flask, fast_hashing: None) -> None:
    """A user "admin" with the password "admin-password" (cheap hashing)."""
    with app.app_context():
        auth_ops.create_user("admin", "admin-password")


def _csrf(html: str) -> str:
    match = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


@pytest.fixture
def logged_in(client: FlaskClient, users: None) -> FlaskClient:
    """The test client with a session of "admin"."""
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert token
    reply = client.post(
        "/login",
        data={"username": "admin", "password": "admin-password", "csrf_token": token.group(1)},
    )
    assert reply.status_code == 302
    return client


@pytest.fixture
def fleet(app: Flask) -> dict[str, str]:
    """Servers with hostile strings, a javascript: URL, a duplicate and a location; name → uuid."""
    registry = parse_field_settings(SETTINGS)
    specs: dict[str, dict[str, Any]] = {
        "hostile": {
            "organization": XSS_IMG,
            "url": "https://hostile.example.org",
            "contact": XSS_SCRIPT,
            "crawled_data": {"version": XSS_SCRIPT, "events": 3, "cores": [1, 2]},
            "country_code": "DE",
            "country_name": "Germany",
            "latitude": 52.5,
            "longitude": 13.4,
            "city": "Berlin",
        },
        "jsurl": {"organization": "JS link", "url": JS_URL, "crawl_status": "error",
                  "crawl_error": XSS_IMG},
        "first": {"organization": "First", "url": "https://dup.example.org"},
        "second": {"organization": "Second", "url": "https://www.dup.example.org/",
                   "enabled": False},
    }  # fmt: skip
    rows = []
    for n, (_name, values) in enumerate(specs.items(), start=1):
        values = {**values}
        rows.append(
            instance_row(
                n,
                url_key=url_key(values["url"]) if values["url"].startswith("http") else "js",
                registered_at=T0 + timedelta(hours=n),
                last_crawl_at=T0 if values.get("crawled_data") else None,
                **values,
            )
        )
    ids = insert_instances(app, rows, registry)
    with app.app_context():
        for day in range(3):
            db.session.add(
                Snapshot(
                    instance_id=ids[0],
                    day=date(2026, 1, 1) + timedelta(days=day),
                    data={"version": XSS_SCRIPT, "events": day},
                )
            )
        db.session.commit()
    return {name: str(row["uuid"]) for name, row in zip(specs, rows, strict=True)}


def _text(client: FlaskClient, path: str, status: int = 200) -> str:
    reply = client.get(path)
    assert reply.status_code == status, (path, reply.status_code)
    return reply.get_data(as_text=True)


def _assert_escaped(html: str) -> None:
    assert "<img src=x" not in html
    assert "<script>alert" not in html
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "an inline script"


# --- login, layout, headers ---------------------------------------------------------------------


@pytest.mark.parametrize("path", [*PAGES, "/servers/00000000-0000-4000-8000-000000000001"])
def test_pages_need_login(client: FlaskClient, path: str) -> None:
    reply = client.get(path)
    assert reply.status_code == 302
    assert "/login" in reply.headers["Location"]


@pytest.mark.parametrize("path", [*PAGES, "/login"])
def test_security_headers_on_every_page(client: FlaskClient, logged_in: FlaskClient, path: str):
    reply = client.get(path)
    csp = reply.headers["Content-Security-Policy"]
    script_src = next(p for p in csp.split(";") if p.strip().startswith("script-src"))
    assert "unsafe-inline" not in script_src
    assert "unsafe-eval" not in script_src
    assert "frame-ancestors 'none'" in csp
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    assert reply.headers["Referrer-Policy"]
    assert reply.headers["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize(
    ("path", "heading"), [("/", "Home"), ("/servers", "Servers"), ("/statistics", "Statistics")]
)
def test_layout(logged_in: FlaskClient, fleet: dict[str, str], path: str, heading: str) -> None:
    html = _text(logged_in, path)
    assert f"<title>{heading} · Cephalopod</title>" in html
    assert f"<h1>{heading}</h1>" in html
    nav = re.search(r'<nav aria-label="Main">(.*?)</nav>', html, re.S)
    assert nav
    for name in ("Home", "Servers", "Statistics"):
        assert f">{name}</a>" in nav.group(1)
    assert 'aria-current="page"' in nav.group(1)
    assert ">admin<" in html
    assert ">Log out</button>" in html
    assert "favicon.svg" in html
    _assert_escaped(html)


def test_dates_in_the_configured_timezone(make_app, users) -> None:
    app = make_app(BABEL_DEFAULT_TIMEZONE="Europe/Berlin", CRAWLED_FIELDS_SETTINGS=SETTINGS)
    with app.app_context():
        auth_ops.create_user("other", "other-password")
    registry = parse_field_settings(SETTINGS)
    insert_instances(app, [instance_row(1, registered_at=T0)], registry)
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert token
    client.post(
        "/login", data={"username": "other", "password": "other-password",
                        "csrf_token": token.group(1)},
    )  # fmt: skip
    html = _text(client, "/servers")
    # T0 is 08:00 UTC: 09:00 in Berlin in January, and the zone is named
    assert re.search(r'<time datetime="2026-01-10T08:00:00Z">[^<]*09:00[^<]*Europe/Berlin', html)


# --- home ---------------------------------------------------------------------------------------


def test_home_counts_link_to_the_filtered_list(logged_in: FlaskClient, fleet) -> None:
    html = _text(logged_in, "/")
    assert re.search(r'href="/servers\?status=all"><strong>4</strong> <span>Registered', html)
    assert re.search(r'href="/servers\?status=enabled"><strong>3</strong>', html)
    assert re.search(r'href="/servers\?health=error"><strong>1</strong> <span>Failing', html)
    assert "Latest crawl errors" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html  # the error reason, as text
    assert ">Crawl all</button>" in html
    assert "<progress" in html


def test_each_crawl_error_on_home_links_to_the_servers_failing_with_it(
    logged_in: FlaskClient, fleet
) -> None:
    html = _text(logged_in, "/")
    link = "/servers?" + urlencode({"health": "error", "error": XSS_IMG}, safe="()")
    assert f'href="{escape(link)}">1</a>' in html
    listed = _text(logged_in, link)
    assert f'href="/servers/{fleet["jsurl"]}"' in listed
    assert f'href="/servers/{fleet["hostile"]}"' not in listed
    assert "failing with “&lt;img src=x onerror=alert(1)&gt;”" in listed  # said, as text
    other = _text(logged_in, "/servers?" + urlencode({"error": "connection refused"}))
    assert "No server matches" in other
    assert logged_in.get("/servers?error=" + "x" * 501).status_code == 400


def test_home_counts_agree_with_the_api(logged_in: FlaskClient, fleet) -> None:
    """Each Home number is the API's total of the list it links to (one grouped query)."""
    html = _text(logged_in, "/")
    tiles = dict(re.findall(r'href="/servers\?([a-z]+=[a-z]+)"><strong>(\d+)</strong>', html))
    assert set(tiles) == {
        "status=all", "status=enabled", "health=ok", "health=error", "health=never"
    }  # fmt: skip
    for link, shown in tiles.items():
        assert int(shown) == logged_in.get(f"/api/admin/instances?{link}").json["total"], link
    stats = logged_in.get("/api/admin/statistics?status=all").json
    assert (stats["instances"], stats["active"]) == (
        int(tiles["status=all"]),
        int(tiles["status=enabled"]),
    )
    assert sum(int(tiles[f"health={h}"]) for h in ("ok", "error", "never")) == stats["instances"]


# --- servers ------------------------------------------------------------------------------------


def test_server_list(logged_in: FlaskClient, fleet: dict[str, str]) -> None:
    html = _text(logged_in, "/servers")
    _assert_escaped(html)
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert f'href="/servers/{fleet["hostile"]}"' in html
    assert 'href="https://hostile.example.org" target="_blank" rel="noopener noreferrer"' in html
    assert "Duplicate" in html
    assert "4 servers" in html
    for label in ("Search", "Status", "Health", "Country"):
        assert f">{label}</label>" in html
    assert "/api/admin/export" in html
    assert '<dialog id="delete-dialog"' in html


def test_javascript_url_is_never_a_link(logged_in: FlaskClient, fleet: dict[str, str]) -> None:
    for path in ("/servers", f"/servers/{fleet['jsurl']}"):
        html = _text(logged_in, path)
        assert 'href="javascript:' not in html.lower()
        assert JS_URL in html  # shown, as text


def test_sort_headers_reverse_and_filters_stay_in_the_url(logged_in, fleet) -> None:
    html = _text(logged_in, "/servers?sort=organization&order=asc&status=enabled")
    assert 'aria-sort="ascending"' in html
    assert "sort=organization&amp;order=desc" in html  # clicking again reverses
    html = _text(logged_in, "/servers?sort=field:version&order=desc")
    assert 'aria-sort="descending"' in html
    html = _text(logged_in, "/servers?health=never&q=First")
    assert ">First</a>" in html
    assert ">Second</a>" not in html


def test_country_filter_counts_agree_with_the_statistics(logged_in, fleet, app) -> None:
    with app.app_context():  # a disabled server in another country counts too (status all)
        second = db.session.scalars(
            sa.select(Instance).where(Instance.organization == "Second")
        ).one()
        second.country_code, second.country_name = "FR", "France"
        db.session.commit()
    html = _text(logged_in, "/servers")
    options = re.findall(r'<option value="([A-Z]{2})"[^>]*>([^<]+) \((\d+)\)</option>', html)
    countries = logged_in.get("/api/admin/statistics?status=all").json["countries"]
    expected = [(c["code"], c["name"], str(c["count"])) for c in countries if c["code"]]
    assert options == expected
    assert sorted(options) == [("DE", "Germany", "1"), ("FR", "France", "1")]


def test_list_agrees_with_the_api(logged_in: FlaskClient, fleet) -> None:
    api = logged_in.get("/api/admin/instances?status=enabled&sort=url").get_json()
    html = _text(logged_in, "/servers?status=enabled&sort=url")
    rows = re.findall(r'data-testid="row-([0-9a-f-]+)"', html)
    assert rows == [item["uuid"] for item in api["items"]]


def test_no_server_matches(logged_in: FlaskClient, fleet) -> None:
    assert "No server matches" in _text(logged_in, "/servers?q=nothing-like-this")


def test_bad_list_parameter_is_an_html_400(logged_in: FlaskClient) -> None:
    html = _text(logged_in, "/servers?sort=nope", 400)
    assert "Invalid parameter sort" in html
    assert "<h1>" in html


def test_pages_of_the_list(logged_in: FlaskClient, fleet) -> None:
    html = _text(logged_in, "/servers?per_page=2")
    assert "Page 1 of 2" in html
    assert "page=2" in html
    assert "Page 2 of 2" in _text(logged_in, "/servers?per_page=2&page=2")


# --- detail, edit, delete -----------------------------------------------------------------------


def test_server_detail(logged_in: FlaskClient, fleet: dict[str, str]) -> None:
    html = _text(logged_in, f"/servers/{fleet['hostile']}")
    _assert_escaped(html)
    assert "<h1>&lt;img src=x onerror=alert(1)&gt;</h1>" in html
    for section in ("Main information", "Edit", "Crawled information", "Health", "History",
                    "Location"):  # fmt: skip
        assert f">{section}</h2>" in html
    for label in ("Organization", "URL", "Contact", "E-mail"):
        assert f">{label}</label>" in html
    assert ">Save</button>" in html
    assert 'data-testid="server-map"' in html
    assert "IP Geolocation by DB-IP" in html
    assert "not displayable" not in html or "Cores" in html
    assert "data-chart=" in html  # the events history


def test_history_shows_display_values_and_a_charted_texts_changes(
    app: Flask, logged_in: FlaskClient, fleet: dict[str, str]
) -> None:
    """A summed list is charted as its sum; a charted text field lists the days it changed."""
    with app.app_context():
        first = sa.select(Instance).where(Instance.uuid == UUID(fleet["first"]))
        instance = db.session.scalar(first)
        assert instance is not None
        for day, (version, cores) in enumerate([("3.2", [1, 1]), ("3.2", [2, 2]), ("3.3", [4])]):
            db.session.add(
                Snapshot(instance_id=instance.id, day=date(2026, 2, 1) + timedelta(days=day),
                         data={"version": version, "cores": cores, "secret": "hidden-value"})
            )  # fmt: skip
        db.session.commit()
    html = _text(logged_in, f"/servers/{fleet['first']}")
    history = html[html.index('id="history-title"') : html.index('id="audit-title"')]
    assert re.search(r">cores</h3>", history, re.IGNORECASE)
    assert '<th scope="row">2026-02-01</th><td>2</td>' in history  # the sum of [1, 1]
    assert '<th scope="row">2026-02-03</th><td>4</td>' in history
    changes = history[history.index("The days its value changed") :]
    assert '<th scope="row">2026-02-03</th><td>3.3</td>' in changes
    assert '<th scope="row">2026-02-01</th><td>3.2</td>' in changes
    assert ">2026-02-02</th>" not in changes  # no change that day
    assert "hidden-value" not in html
    assert "secret" not in history.lower()


def test_detail_location_unknown(logged_in: FlaskClient, fleet: dict[str, str]) -> None:
    html = _text(logged_in, f"/servers/{fleet['first']}")
    assert "location unknown" in html
    assert "IP Geolocation by DB-IP" in html


def test_unknown_server_is_404(logged_in: FlaskClient) -> None:
    _text(logged_in, "/servers/00000000-0000-4000-8000-00000000beef", 404)


def test_edit_saves_and_refuses_with_the_fields_message(logged_in, fleet, app) -> None:
    uuid = fleet["first"]
    token = _csrf(_text(logged_in, f"/servers/{uuid}"))
    form = {"organization": "Renamed", "url": "https://first.example.org", "contact": "C",
            "email": "c@example.org", "enabled": "on", "csrf_token": token}  # fmt: skip
    reply = logged_in.post(f"/servers/{uuid}", data=form, follow_redirects=True)
    assert reply.status_code == 200
    html = reply.get_data(as_text=True)
    assert "Saved." in html
    assert "<h1>Renamed</h1>" in html
    refused = logged_in.post(f"/servers/{uuid}", data={**form, "url": JS_URL})
    assert refused.status_code == 400
    html = refused.get_data(as_text=True)
    assert 'id="url-error"' in html
    assert 'aria-invalid="true"' in html
    with app.app_context():
        assert db.session.scalar(sa.select(Instance.url).where(Instance.organization == "Renamed"))


def test_edit_needs_csrf(logged_in: FlaskClient, fleet) -> None:
    reply = logged_in.post(f"/servers/{fleet['first']}", data={"organization": "x"})
    assert reply.status_code == 400


def test_delete(logged_in: FlaskClient, fleet: dict[str, str], app: Flask) -> None:
    uuid = fleet["second"]
    token = _csrf(_text(logged_in, f"/servers/{uuid}"))
    assert logged_in.post(f"/servers/{uuid}/delete").status_code == 400  # no CSRF token
    # unconfirmed (the button before the page's script ran): a page asks, nothing is deleted
    asked = logged_in.post(f"/servers/{uuid}/delete", data={"csrf_token": token})
    assert asked.status_code == 200
    page = asked.get_data(as_text=True)
    assert "<h1>Delete this server?</h1>" in page
    assert 'name="confirmed" value="1"' in page
    assert logged_in.get(f"/servers/{uuid}").status_code == 200
    reply = logged_in.post(f"/servers/{uuid}/delete", data={"csrf_token": token, "confirmed": "1"})
    assert reply.status_code == 302
    assert logged_in.get(f"/servers/{uuid}").status_code == 404


def test_deleting_by_get_is_not_allowed(logged_in: FlaskClient, fleet) -> None:
    assert logged_in.get(f"/servers/{fleet['second']}/delete").status_code == 405


# --- statistics ---------------------------------------------------------------------------------


def test_statistics(logged_in: FlaskClient, fleet: dict[str, str]) -> None:
    html = _text(logged_in, "/statistics")
    _assert_escaped(html)
    assert 'data-testid="world-map"' in html
    assert "IP Geolocation by DB-IP" in html
    for section in ("Map", "Countries", "Registrations", "Crawled instances", "Version"):
        assert f">{section}</h2>" in html
    assert ">Trend</label>" in html
    assert "Enabled instances" in html
    assert "All instances" in html
    assert "Germany" in html
    # the hostile version reaches the chart as JSON text inside the attribute, escaped
    assert "\\u003c/script\\u003e" in html


def test_statistics_agree_with_the_api(logged_in: FlaskClient, fleet) -> None:
    api = logged_in.get("/api/admin/statistics?status=all").get_json()
    html = _text(logged_in, "/statistics?status=all")
    for country in api["countries"]:
        assert f'<td class="num">{country["count"]}</td>' in html


def test_crawled_instances_as_a_chart_and_its_table(logged_in: FlaskClient, fleet) -> None:
    """The chart and its text alternative come from the same numbers as the trend API's.

    The card's number, its sentence and its chart are one quantity (instances crawled
    successfully per day), never the enabled count beside a chart of something else.
    """
    api = logged_in.get("/api/admin/statistics/trend?field=instances&interval=day").get_json()
    assert api["periods"] == ["2026-01-01", "2026-01-02", "2026-01-03"]
    html = _text(logged_in, "/statistics")
    section = html[html.index('id="active-title"') :]
    section = section[: section.index("</section>")]
    assert 'role="img" aria-label="Crawled instances over time"' in section
    assert "<summary>Data as a table</summary>" in section
    counts = api["series"][0]["counts"]
    for period, count in zip(api["periods"], counts, strict=True):
        assert f'<th scope="row">{period}</th><td>{count}</td>' in section
    sentence = f"{counts[-1]} instances were crawled successfully on {api['periods'][-1]}."
    assert sentence in section
    assert "enabled" not in section


def test_no_statistics_available(logged_in: FlaskClient) -> None:
    assert "No statistics available" in _text(logged_in, "/statistics")


def test_public_statistics_off_by_default(client: FlaskClient) -> None:
    assert client.get("/public/statistics").status_code == 404


def test_public_statistics_show_nothing_personal(make_app, fleet) -> None:
    del fleet
    app = make_app(PUBLIC_STATISTICS=True, CRAWLED_FIELDS_SETTINGS=SETTINGS)
    html = _text(app.test_client(), "/public/statistics")
    assert "<h1>Public statistics</h1>" in html
    assert "Germany" in html
    _assert_escaped(html)
    for personal in ("hostile.example.org", "dup.example.org", "First", "Second", "JS link",
                     "Contact", "@example.org", "52.5", "13.4", "Berlin", "onerror"):  # fmt: skip
        assert personal not in html, personal
    assert "/servers/" not in html
