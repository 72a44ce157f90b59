"""Fixtures of the fault tests: a private PostgreSQL, many instances, the state a crawl left.

(A private Redis, ``broker``, is a fixture of every test: see tests/conftest.py.)
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from cephalopod.db import db, utcnow
from cephalopod.instances.models import Instance, InstanceField, Snapshot
from cephalopod.instances.urls import url_key
from tests.faults.services import PrivatePostgres, private_postgres


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    """A PostgreSQL cluster of the test's own (to stop and restart)."""
    with private_postgres() as server:
        yield server


def fleet_urls(fleet: str, num: int, missing_every: int = 100) -> list[str]:
    """``num`` instance URLs of the fleet; every ``missing_every``-th answers 404."""
    return [
        f"{fleet}/missing/{n}" if n % missing_every == 0 else f"{fleet}/i/{n}"
        for n in range(1, num + 1)
    ]


def seed_instances(app: Flask, urls: list[str]) -> None:
    """Insert one enabled, never crawled instance per URL (fast: one statement)."""
    now = utcnow()
    rows: list[dict[str, Any]] = [
        {
            "uuid": uuid.uuid4(),
            "url": url,
            "url_key": url_key(url),
            "contact": "C",
            "email": "c@example.org",
            "organization": "O",
            "enabled": True,
            "registered_at": now,
            "updated_at": now,
            "crawl_status": "never",
            "consecutive_failures": 0,
        }
        for url in urls
    ]
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(sa.insert(Instance.__table__), rows)


def assert_crawled_once_each(app: Flask, ok: int, failed: int) -> None:
    """Every instance has a recorded result; history and display values are not duplicated."""
    instances, snapshots = Instance.__table__.c, Snapshot.__table__.c
    fields = InstanceField.__table__.c
    with app.app_context(), db.engine.connect() as conn:
        statuses = dict(
            conn.execute(
                sa.select(instances.crawl_status, sa.func.count()).group_by(instances.crawl_status)
            ).all()
        )
        assert statuses == {"ok": ok, "error": failed}, statuses
        never = conn.scalar(sa.select(sa.func.count()).where(instances.last_crawl_at.is_(None)))
        assert never == 0
        per_day = sa.select(snapshots.instance_id, snapshots.day).group_by(
            snapshots.instance_id, snapshots.day
        )
        assert conn.scalar(sa.select(sa.func.count()).select_from(Snapshot.__table__)) == ok
        assert conn.scalar(sa.select(sa.func.count()).select_from(per_day.subquery())) == ok
        # a complete set of display values per crawled instance, none twice
        counts = conn.execute(
            sa.select(fields.instance_id, fields.field, sa.func.count())
            .group_by(fields.instance_id, fields.field)
            .having(sa.func.count() > 1)
        ).all()
        assert counts == []
        per_instance = conn.execute(
            sa.select(sa.func.count())
            .select_from(InstanceField.__table__)
            .group_by(fields.instance_id)
        ).scalars()
        assert len(set(per_instance)) == 1
        with_values = conn.scalar(sa.select(sa.func.count(sa.distinct(fields.instance_id))))
        assert with_values == ok
