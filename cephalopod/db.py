"""Declarative base, the shared column types, the Flask-SQLAlchemy handle, and `Meta`.

`Meta` is the one table of no domain: small facts about the database itself.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import sqlalchemy as sa
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(sa.TypeDecorator[datetime]):
    """A timestamp stored as UTC and always returned timezone-aware (SQLite forgets zones)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


#: JSON everywhere, JSONB on PostgreSQL (smaller, indexable).
JSONType = sa.JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    """Return the current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


intpk = Annotated[int, mapped_column(primary_key=True)]
str255 = Annotated[str, mapped_column(sa.String(255))]
timestamp = Annotated[datetime, mapped_column(UTCDateTime())]

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base of every model; constraint names are deterministic so migrations stay portable."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

    if TYPE_CHECKING:
        # every model maps one Table (none maps a join or a select): Core statements take it
        __table__: ClassVar[sa.Table]


db = SQLAlchemy(model_class=Base)

if TYPE_CHECKING:
    # db.Model is a class Flask-SQLAlchemy builds at run time (Base's body under its bind-key,
    # table-name and query mixins), and mypy cannot subclass an attribute (python/mypy#8603):
    # the models are checked against Base, whose declarative API that class keeps.
    Model = Base
else:
    Model = db.Model


class Meta(Model):
    """Small key/value facts about the database (field settings' fingerprint, data version...)."""

    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    value: Mapped[str] = mapped_column(sa.Text())

    def __repr__(self) -> str:
        return f"<Meta {self.key}>"


def sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """Make the embedded SQLite database safe for a web server and a crawler at once."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
