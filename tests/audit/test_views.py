"""The server detail page shows the instance's own audit log: newest first, escaped."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from cephalopod.auth import operations as auth_ops
from cephalopod.security import CSP
from cephalopod.stats.fields import parse_field_settings
from tests.audit.conftest import BODY
from tests.stats.seeding import insert_instances, instance_row

XSS = "<img src=x onerror=alert(1)>"


def _rows(html: str) -> list[str]:
    table = html.split('data-testid="audit-log"', 1)[1].split("</table>", 1)[0]
    return re.findall(r"<tr data-action=\"(\w+)\">", table)


def test_the_detail_page_shows_who_changed_what(make_app: Any, fast_hashing: None) -> None:
    app: Flask = make_app(BABEL_DEFAULT_TIMEZONE="Europe/Zurich", USE_PROXY=True)
    with app.app_context():
        auth_ops.create_user("admin", "admin-password")
        token = auth_ops.create_token("admin")
    client: FlaskClient = app.test_client()
    forwarded = {"X-Forwarded-For": "203.0.113.9"}
    made = client.post("/api/instance/", json=BODY, headers=forwarded).json["uuid"]
    other = client.post("/api/instance/", json={**BODY, "url": "https://other.example"}).json
    client.patch(f"/api/instance/{made}", json={"organization": XSS, "contact": f"C {XSS}"})
    client.patch(
        f"/api/admin/instances/{made}",
        json={"enabled": False},
        headers={"Authorization": f"Bearer {token}"},
    )
    client.patch(f"/api/instance/{other['uuid']}", json={"contact": "Not this one"})

    page = client.get("/login")
    csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text)
    assert csrf
    data = {"username": "admin", "password": "admin-password", "csrf_token": csrf.group(1)}
    assert client.post("/login", data=data).status_code == 302
    response = client.get(f"/servers/{made}")
    assert response.status_code == 200
    assert response.headers["Content-Security-Policy"] == CSP
    html = response.text
    assert _rows(html) == ["disable", "update", "register"]  # its own, newest first
    assert "Not this one" not in html
    section = html.split('id="audit-title"', 1)[1].split("</section>", 1)[0]
    assert XSS not in html  # strangers' strings are text
    assert "&lt;img src=x onerror=alert(1)&gt;" in section
    assert "<strong>Organization</strong>:\n            Example Lab → &lt;img" in section
    assert "<strong>Contact</strong>:\n            Ann Admin → C &lt;img" in section
    assert "<strong>E-mail</strong>:\n            ann@example.org" in section  # registered
    assert "<strong>Enabled</strong>:\n            yes → no" in section
    assert "The instance itself" in section
    assert "from 203.0.113.9" in section
    assert "admin (API token " in section
    assert section.count("Europe/Zurich") == 3  # every time in the configured zone
    assert re.search(r'<time datetime="\d{4}-\d\d-\d\dT[\d:.]+Z">', section)


def test_a_server_without_entries_says_so(app: Flask, logged_in: FlaskClient) -> None:
    row = instance_row(1)  # inserted as a crawl or an import would, without the operations
    insert_instances(app, [row], parse_field_settings({}))
    html = logged_in.get(f"/servers/{row['uuid']}").text
    assert "Nothing recorded yet." in html
    assert 'data-testid="audit-log"' not in html
