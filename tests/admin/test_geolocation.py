"""GET /api/admin/geolocation: why locations are unknown, and the credit the data requires."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from flask import Flask

from tests.geo.mmdb import LOOPBACK_RECORDS, build_test_mmdb

CREDIT = {"text": "IP Geolocation by DB-IP", "url": "https://db-ip.com"}


def _get(app: Flask, token: str) -> dict:
    reply = app.test_client().get(
        "/api/admin/geolocation", headers={"Authorization": f"Bearer {token}"}
    )
    assert reply.status_code == 200
    return reply.json


def test_without_data_the_reason_says_what_to_run(app: Flask, token: str) -> None:
    body = _get(app, token)
    assert set(body) == {"available", "reason", "credit"}
    assert body["available"] is False
    assert "cephalopod geoip update" in body["reason"]
    assert body["credit"] == CREDIT


def test_with_data_it_is_available(
    make_app: Callable[..., Flask], token: str, tmp_path: Path
) -> None:
    path = build_test_mmdb(tmp_path / "geo.mmdb", LOOPBACK_RECORDS)
    body = _get(make_app(GEOIP_DATABASE=str(path)), token)
    assert (body["available"], body["reason"], body["credit"]) == (True, None, CREDIT)


def test_needs_authentication(app: Flask) -> None:
    reply = app.test_client().get("/api/admin/geolocation")
    assert reply.status_code == 401
    assert reply.json["error"]
