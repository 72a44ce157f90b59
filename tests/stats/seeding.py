"""Put instances with crawled data straight into the database, fast, for statistics tests.

Display values are then computed by ``recompute_display_values``, the same code that keeps
them current when the settings change, so these tests also exercise it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask

from cephalopod.db import db
from cephalopod.instances.models import Instance, Snapshot
from cephalopod.stats.fields import FieldRegistry
from cephalopod.stats.refresh import recompute_display_values

BASE = datetime(2026, 1, 1, 12, tzinfo=UTC)


def instance_row(n: int, **values: Any) -> dict[str, Any]:
    """Return a complete instances row number n; keyword arguments override columns."""
    registered = values.pop("registered_at", BASE + timedelta(hours=n))
    row = {
        "uuid": uuid.UUID(int=n, version=4),
        "url": f"https://indico{n}.example.org",
        "url_key": f"indico{n}.example.org",
        "contact": f"Contact {n}",
        "email": f"admin{n}@example.org",
        "organization": f"Organization {n}",
        "enabled": True,
        "registered_at": registered,
        "updated_at": registered,
        "crawled_data": None,
        "crawl_status": "never",
        "consecutive_failures": 0,
        "country_code": None,
        "country_name": None,
    }
    row.update(values)
    if row["crawled_data"] is not None and "crawl_status" not in values:
        row["crawl_status"] = "ok"
    return row


def insert_instances(
    app: Flask, rows: Iterable[Mapping[str, Any]], registry: FieldRegistry
) -> list[int]:
    """Insert instances rows (see instance_row) and compute their display values; return ids."""
    table = Instance.__table__
    with app.app_context():
        with db.engine.begin() as conn:
            ids = [
                conn.execute(sa.insert(table).values(**row)).inserted_primary_key[0] for row in rows
            ]
        recompute_display_values(registry)
    return ids


def fleet(
    app: Flask, data: Iterable[tuple[str | None, Mapping[str, Any] | None]], registry: FieldRegistry
) -> list[int]:
    """Insert an enabled instance per (country name, crawled data); code: the name's start."""
    rows = [
        instance_row(
            n,
            country_name=country,
            country_code=country[:2].upper() if country else None,
            crawled_data=crawled,
        )
        for n, (country, crawled) in enumerate(data, 1)
    ]
    return insert_instances(app, rows, registry)


def add_snapshots(app: Flask, snapshots: Iterable[tuple[int, date, Mapping[str, Any]]]) -> None:
    """Insert (instance id, day, data) snapshots."""
    rows = [{"instance_id": i, "day": day, "data": dict(data)} for i, day, data in snapshots]
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(sa.insert(Snapshot.__table__), rows)
