"""Creating, upgrading and dropping the schema (Alembic keeps the history)."""

from __future__ import annotations

import logging
from pathlib import Path

import sqlalchemy as sa
from alembic.script import ScriptDirectory
from flask_migrate import stamp, upgrade

from cephalopod.db import db
from cephalopod.services import services
from cephalopod.stats.refresh import refresh_display_values_if_stale

log = logging.getLogger(__name__)

#: Alembic's scripts: the schema's history, applied by `ensure_schema`.
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def table_names() -> set[str]:
    """Return the tables present in the database."""
    return set(sa.inspect(db.engine).get_table_names())


def create_schema() -> None:
    """Create every table; on a database without history, stamp the newest migration."""
    had_history = "alembic_version" in table_names()
    db.create_all()
    if not had_history:
        stamp()


def drop_schema() -> None:
    """Drop every table, the migration history included."""
    db.drop_all()
    with db.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))


def ensure_schema() -> None:
    """Bring the database to the newest schema, whatever state it is in."""
    tables = table_names()
    if "alembic_version" not in tables and "instances" in tables:
        # created without history (e.g. by an old ``db create``): record it, then upgrade
        log.warning("Database has tables but no migration history; stamping the first revision")
        stamp(revision=_first_revision())
    upgrade()


def _first_revision() -> str:
    """Return the revision that created the tables (stamping "base" would create them again)."""
    (first,) = ScriptDirectory(str(MIGRATIONS_DIR)).get_bases()
    return first


def prepare_database() -> None:
    """Upgrade the schema, then recompute display values if the field settings changed."""
    ensure_schema()
    refresh_display_values_if_stale(db.engine, services().settings.fields)
