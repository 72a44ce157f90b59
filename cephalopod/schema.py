"""Creating, upgrading and dropping the schema (Alembic keeps the history).

Most starts find the database at the newest revision. `HEAD_REVISION` says which that is
without Alembic, whose import and loading of the migration scripts cost a command about a
fifth of a second; Alembic runs only when the database is elsewhere (or has no history). A
test compares `HEAD_REVISION` with Alembic's own head, so a new migration cannot leave it
behind.
"""

from __future__ import annotations

import logging
from pathlib import Path

import sqlalchemy as sa
from flask import Flask, current_app

from cephalopod.db import db
from cephalopod.services import services
from cephalopod.stats.refresh import refresh_display_values_if_stale

log = logging.getLogger(__name__)

#: Alembic's scripts: the schema's history, applied by `ensure_schema`.
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
#: The revision of the newest migration in MIGRATIONS_DIR (the single head): change it with
#: each new migration; tests/test_migrations.py fails until it matches.
HEAD_REVISION = "c5a8e1f3b7d2"
VERSION_TABLE = "alembic_version"


def init_migrations(app: Flask) -> None:
    """Set Flask-Migrate up on the app (its commands find the migrations through it), once."""
    if "migrate" in app.extensions:
        return
    # here, not at the top: Flask-Migrate imports Alembic, which a database at head never needs
    from cephalopod.extensions import migrate

    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR), render_as_batch=True)


def table_names() -> set[str]:
    """Return the tables present in the database."""
    return set(sa.inspect(db.engine).get_table_names())


def database_revisions() -> set[str] | None:
    """Return the revisions the database records, or None when it has no migration history."""
    with db.engine.connect() as conn:
        if not sa.inspect(conn).has_table(VERSION_TABLE):
            return None
        return set(conn.scalars(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")))  # noqa: S608


def at_head() -> bool:
    """Whether the database is at the newest revision (Alembic would have nothing to do)."""
    return database_revisions() == {HEAD_REVISION}


def create_schema() -> None:
    """Create every table; on a database without history, stamp the newest migration."""
    # here, not at the top: see init_migrations
    from flask_migrate import stamp

    init_migrations(current_app)
    had_history = VERSION_TABLE in table_names()
    db.create_all()
    if not had_history:
        stamp()


def drop_schema() -> None:
    """Drop every table, the migration history included."""
    db.drop_all()
    with db.engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {VERSION_TABLE}"))


def ensure_schema() -> None:
    """Bring the database to the newest schema, whatever state it is in."""
    # here, not at the top: see init_migrations
    from flask_migrate import stamp, upgrade

    init_migrations(current_app)
    tables = table_names()
    if VERSION_TABLE not in tables and "instances" in tables:
        # created without history (e.g. by an old ``db create``): record it, then upgrade
        log.warning("Database has tables but no migration history; stamping the first revision")
        stamp(revision=_first_revision())
    upgrade()


def _first_revision() -> str:
    """Return the revision that created the tables (stamping "base" would create them again)."""
    # here, not at the top: see init_migrations
    from alembic.script import ScriptDirectory

    (first,) = ScriptDirectory(str(MIGRATIONS_DIR)).get_bases()
    return first


def prepare_database() -> None:
    """Upgrade the schema if need be, then recompute display values if the field settings
    changed."""
    if not at_head():
        ensure_schema()
    refresh_display_values_if_stale(db.engine, services().settings.fields)
