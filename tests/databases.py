"""Empty databases of their own, for tests that create, drop or migrate the whole schema.

The shared test database keeps its schema for the whole session (see conftest), so a test that
drops tables must not touch it.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import PG_ADMIN_URL, _pg_admin


@contextlib.contextmanager
def empty_database(backend: str, folder: Path) -> Iterator[str]:
    """Yield the SQLAlchemy URL of a new, empty database; drop it afterwards."""
    if backend == "sqlite":
        yield f"sqlite:///{folder / f'empty-{uuid.uuid4().hex[:8]}.db'}"
        return
    name = f"cephalopod_empty_{uuid.uuid4().hex[:12]}"
    with _pg_admin() as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        with _pg_admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def wait_for_lock_waits(conn: sa.Connection, count: int, failure: str) -> None:
    """Wait until ``count`` sessions of conn's PostgreSQL database wait for a lock."""
    waiting = sa.text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )
    for _ in range(200):
        if conn.scalar(waiting) >= count:
            return
        conn.rollback()  # the activity view is read once per transaction
        time.sleep(0.05)
    pytest.fail(failure)
