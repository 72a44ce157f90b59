"""Fixtures of the admin API tests: an app with field settings, a token, a small fleet."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from cephalopod.auth import operations as auth_ops
from cephalopod.db import db
from cephalopod.instances.models import InstanceField
from cephalopod.stats.fields import parse_field_settings
from tests.stats.seeding import insert_instances, instance_row

SETTINGS: dict[str, Any] = {
    "version": {"label": "Version", "chart": True},
    "events": {"chart": True, "chart_aggregation": "sum"},
    "cores": {"aggregation": "sum"},
    "secret": None,
}
SECRET = "s3cr3t-value"
T0 = datetime(2026, 1, 10, 8, tzinfo=UTC)

#: n → (organization, url, country, enabled, health, last crawl, crawled data); see FLEET_IDS.
FLEET = {
    1: ("Alpha", "https://alpha.example.org", ("DE", "Germany"), True, "ok", 1,
        {"version": "1.0", "events": 10, "cores": [1, 2], "secret": SECRET}),
    2: ("beta", "https://WWW.alpha.example.org/", ("FR", "France"), True, "ok", 2,
        {"version": "2.0", "events": 2.5, "secret": SECRET}),
    3: ("Gamma", "https://gamma.example.org", ("DE", "Germany"), False, "error", 0,
        {"version": "1.0", "events": "many"}),
    4: ("delta", "https://delta.example.org", (None, None), True, "never", None, None),
    5: ("Epsilon", "https://epsilon.example.org", ("DE", "Germany"), True, "ok", 3,
        {"version": 3, "events": -1, "formula": "=HYPERLINK(1)", "dash": "-5"}),
}  # fmt: skip


@pytest.fixture
def app(make_app) -> Flask:
    """The app, with crawled fields configured (one hidden: "secret")."""
    return make_app(CRAWLED_FIELDS_SETTINGS=SETTINGS)


@pytest.fixture
def registry():
    return parse_field_settings(SETTINGS)


@pytest.fixture
def token(app: Flask, fast_hashing: None) -> str:
    """An API token of the user "admin" (password "admin-password")."""
    with app.app_context():
        auth_ops.create_user("admin", "admin-password")
        return auth_ops.create_token("admin")


@pytest.fixture
def auth(token: str) -> dict[str, str]:
    """The headers of a request authenticated by the token."""
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def api(client: FlaskClient, auth: dict[str, str]):
    """GET an admin API path with the token; returns the response."""

    def call(path: str, method: str = "GET", **kwargs: Any):
        return client.open(path, method=method, headers=auth, **kwargs)

    return call


@pytest.fixture
def instances(app: Flask, registry) -> dict[int, str]:
    """Insert FLEET (plus a stale display value of the hidden field); map n → uuid."""
    rows = []
    for n, (org, url, (code, name), enabled, health, crawl, data) in FLEET.items():
        from cephalopod.instances.urls import url_key

        rows.append(
            instance_row(
                n,
                organization=org,
                url=url,
                url_key=url_key(url),
                email=f"admin{n}@corp{n}.example",
                contact=f"Contact {n}",
                country_code=code,
                country_name=name,
                enabled=enabled,
                crawl_status=health,
                last_crawl_at=None if crawl is None else T0 + timedelta(hours=crawl),
                crawled_data=data,
                registered_at=T0 - timedelta(days=10 - n),
            )
        )
    ids = insert_instances(app, rows, registry)
    with app.app_context(), db.engine.begin() as conn:
        # as if the field was hidden after this value was stored, before any refresh
        conn.execute(
            sa.insert(InstanceField.__table__).values(
                instance_id=ids[0], field="secret", value_text=f'"{SECRET}"'
            )
        )
    return {n: str(row["uuid"]) for n, row in zip(FLEET, rows, strict=True)}


@pytest.fixture
def auth_for(fast_hashing: None):
    """Make a user and token on another app; return its authorization headers."""

    def make(app: Flask) -> dict[str, str]:
        with app.app_context():
            auth_ops.create_user("admin", "admin-password")
            return {"Authorization": f"Bearer {auth_ops.create_token('admin')}"}

    return make
