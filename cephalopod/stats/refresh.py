"""Keep the stored display values in step with CRAWLED_FIELDS_SETTINGS.

``instance_fields`` holds each visible field's display value, computed with the settings of
the time it was stored. The fingerprint of the settings used is kept in ``meta``; when the
configured settings hash differently (a field hidden, an aggregation changed), every
instance's values are computed again from its ``crawled_data``, a page of instances at a
time (keyset pagination, one transaction per page), so memory stays flat at any size.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, scoped_session

from cephalopod.db import Meta, db
from cephalopod.instances.models import Instance, InstanceField
from cephalopod.services import services
from cephalopod.stats.cache import touch_data_version
from cephalopod.stats.fields import FieldRegistry
from cephalopod.stats.values import display_rows

log = logging.getLogger(__name__)

FINGERPRINT = "fields_fingerprint"
PAGE = 1000

instances = Instance.__table__
fields_table = InstanceField.__table__
meta = Meta.__table__
Progress = Callable[[int], None]


def stored_fingerprint(conn: Connection) -> str | None:
    """Return the fingerprint of the settings the stored display values were computed with."""
    return conn.execute(sa.select(meta.c.value).where(meta.c.key == FINGERPRINT)).scalar()


def _store_fingerprint(conn: Connection, value: str) -> None:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    insert = dialect.insert(meta).values(key=FINGERPRINT, value=value)
    conn.execute(insert.on_conflict_do_update(index_elements=[meta.c.key], set_={"value": value}))


def recompute_display_values(
    registry: FieldRegistry, engine: Engine | None = None, progress: Progress | None = None
) -> int:
    """Recompute every instance's display values; return how many instances were processed.

    Uses the current app's engine unless one is given; each page of instances is replaced in
    its own transaction, and the fingerprint is stored at the end.
    """
    engine = engine or db.engine
    done = 0
    last_id = 0
    while True:
        with engine.begin() as conn:
            page = conn.execute(
                sa.select(instances.c.id, instances.c.crawled_data)
                .where(instances.c.id > last_id)
                .order_by(instances.c.id)
                .limit(PAGE)
                # held until the commit: an instance deleted meanwhile leaves no values behind
                # (SQLite has no row locks; its single writer refuses a stale read instead)
                .with_for_update()
            ).all()
            if not page:
                break
            ids = [row.id for row in page]
            rows: list[dict[str, Any]] = []
            for row in page:
                if isinstance(row.crawled_data, dict):
                    rows.extend(display_rows(row.id, registry.visible(row.crawled_data), registry))
            conn.execute(sa.delete(fields_table).where(fields_table.c.instance_id.in_(ids)))
            if rows:
                conn.execute(sa.insert(fields_table), rows)
            touch_data_version(conn)
        done += len(page)
        last_id = ids[-1]
        if progress is not None:
            progress(done)
    with engine.begin() as conn:
        _store_fingerprint(conn, registry.fingerprint())
        touch_data_version(conn)
    log.info("Recomputed the display values of %d instances", done)
    return done


def refresh_display_values_if_stale(
    app_or_session: Flask | Session | scoped_session[Session] | Engine,
    registry: FieldRegistry | None = None,
) -> int:
    """Recompute the display values when the settings changed since they were stored.

    Returns the number of instances recomputed (0 when they were current). Accepts the app
    (its engine and, without ``registry``, its settings), a session or an engine.
    """
    if isinstance(app_or_session, Flask):
        with app_or_session.app_context():
            if registry is None:
                registry = services(app_or_session).settings.fields
            return refresh_display_values_if_stale(db.engine, registry)
    if registry is None:
        raise TypeError("registry is required unless an app is given")
    if isinstance(app_or_session, (Session, scoped_session)):
        bind = app_or_session.get_bind()
        engine = bind if isinstance(bind, Engine) else bind.engine
    else:
        engine = app_or_session
    with engine.connect() as conn:
        current = stored_fingerprint(conn)
    if current == registry.fingerprint():
        return 0
    if current is None:
        log.info("Computing display values with the field settings (first start)")
    else:
        log.info("Field settings changed since the display values were stored: recomputing")
    return recompute_display_values(registry, engine)
