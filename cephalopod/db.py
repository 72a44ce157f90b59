"""Declarative base, the shared column types, the Flask-SQLAlchemy handle, `Meta`, and how
the app talks to a database that may go away (engine options, 503-worthy errors, retries).

`Meta` is the one table of no domain: small facts about the database itself.
"""

from __future__ import annotations

import contextlib
import logging
import select
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, ParamSpec, TypeVar

import sqlalchemy as sa
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

#: The exceptions among which `is_unavailable` finds a database that is down.
UNAVAILABLE = (sa.exc.DBAPIError, sa.exc.TimeoutError)
#: How long background work (the crawl's batches, its job rows) retries a database that is
#: unavailable before it gives up: a restart or a fail-over takes seconds, not minutes.
RETRY_SECONDS = 60.0


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


def engine_options(uri: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The engine options of a database URL: the settings' own, then our defaults.

    PostgreSQL: ``connect_timeout`` bounds the wait for a server that does not answer at all
    (a request then gets its 503 in seconds, not after the kernel's TCP timeout); pooled
    connections are tested before use by `check_connections_on_checkout`, so the first
    request after a server restart reconnects instead of failing on a dead socket.
    """
    result = dict(options or {})
    defaults = {"timeout": 30} if uri.startswith("sqlite") else {"connect_timeout": 5}
    # merged: connect_args of the settings' own (an application_name...) keep the timeout
    result["connect_args"] = {**defaults, **(result.get("connect_args") or {})}
    return result


def check_connections_on_checkout(engine: sa.Engine) -> None:
    """Test each pooled PostgreSQL connection before it is handed out, without a round trip.

    SQLAlchemy's ``pool_pre_ping`` sends a query on every checkout: a round trip and, measured,
    a quarter of the CPU of a request that reads one row. A connection the server closed
    (a restart, a crash, an administrator) has something to read while it idles in the pool
    (the server's farewell, or the end of the stream): that is checked instead, with a
    ``poll`` of its socket, and such a connection is replaced before use. A server that
    vanished without closing anything (a lost host) is found by the first query instead:
    that request answers 503 and SQLAlchemy replaces the whole pool.
    ``SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}`` still turns the query on.
    """
    if engine.dialect.name != "postgresql" or engine.pool._pre_ping:
        return

    def checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        if _looks_closed(dbapi_connection):
            raise sa.exc.DisconnectionError("the server closed this pooled connection")

    sa.event.listen(engine, "checkout", checkout)


def _looks_closed(connection: Any) -> bool:
    if connection.closed:
        return True
    try:
        poller = select.poll()
        poller.register(connection.fileno(), select.POLLIN | select.POLLERR | select.POLLHUP)
        return bool(poller.poll(0))  # an idle connection has nothing to say
    except (OSError, ValueError):
        return True


def is_unavailable(exc: BaseException) -> bool:
    """Tell whether ``exc`` says the database is down, restarting, unreachable or overloaded.

    Then the transaction did not happen (or, if the connection died during its COMMIT, may
    have), and the same work may be tried again once the server answers. PostgreSQL's
    operational errors are all of that kind (connection lost, server shutting down, query
    cancelled, deadlock); SQLite's also cover mistakes ("no such table"), of which only a
    locked or busy database is. A full connection pool (`sa.exc.TimeoutError`) is overload.
    """
    if isinstance(exc, sa.exc.TimeoutError):
        return True
    if not isinstance(exc, sa.exc.DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    if not isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError):
        return False
    if isinstance(exc.orig, sqlite3.Error):
        return any(word in str(exc.orig) for word in ("locked", "busy"))
    return True


def close_sessions_safely(app: Any) -> None:
    """End each request's session without failing the request when the database went away.

    Flask-SQLAlchemy ends the session after the response is built, with a ROLLBACK; on a
    connection the server closed meanwhile (a restart) that raised, and the server turned the
    finished response into an empty 500. This runs first (teardowns run in reverse order) and
    invalidates such a connection instead of rolling it back.
    """

    def close(_exc: BaseException | None) -> None:
        try:
            db.session.remove()
        except UNAVAILABLE as exc:
            if not is_unavailable(exc):
                raise
            log.warning("closing the session: database unavailable (%s)", _first_line(exc))
            with contextlib.suppress(*UNAVAILABLE):
                db.session.registry().invalidate()
            db.session.registry.clear()

    app.teardown_appcontext(close)


def retrying(
    func: Callable[P, R], *, seconds: float = RETRY_SECONDS, what: str = "database work"
) -> Callable[P, R]:
    """Wrap ``func`` (one whole transaction) to retry it while the database is unavailable.

    Only for work that may run twice: each call must be one transaction that either
    happened or did not. Backs off from 0.1 s to 2 s; after ``seconds`` the error goes up.
    """

    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        deadline = time.monotonic() + seconds
        pause = 0.1
        while True:
            try:
                return func(*args, **kwargs)
            except UNAVAILABLE as exc:
                if not is_unavailable(exc) or time.monotonic() + pause > deadline:
                    raise
                log.warning("%s: database unavailable (%s); retrying", what, _first_line(exc))
                time.sleep(pause)
                pause = min(pause * 2, 2.0)

    return run


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
