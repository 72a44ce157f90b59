"""Fixtures shared by every test: real databases (SQLite and PostgreSQL), apps, clients.

Each test gets a fresh app on a database whose schema was created once per session; the
tables are emptied after the test. PostgreSQL tests use a database of their own, created
from the server in ``CEPHALOPOD_TEST_POSTGRES`` (default: the local ``test`` database) and
dropped at the end.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher, profiles
from flask import Flask
from flask.testing import FlaskClient

from cephalopod.app import create_app
from cephalopod.auth import operations as auth_ops
from cephalopod.db import db
from cephalopod.services import services

if TYPE_CHECKING:  # the fault tests' helpers, imported by the fixture that uses them
    from tests.faults.services import PrivateRedis

PG_ADMIN_URL = os.environ.get(
    "CEPHALOPOD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)
BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(autouse=True)
def no_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse name look-ups in tests: a DNS query would leave the machine.

    IP literals and ``localhost`` (answered from /etc/hosts) still resolve; a test that
    needs real names runs inside a loopback-only network namespace instead.
    """
    if os.environ.get("CEPHALOPOD_IN_NETNS") == "1":
        return  # inside a loopback-only namespace, where no query can leave anyway
    real = socket.getaddrinfo

    def loopback_only(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name is None or name == "localhost":
            return real(host, *args, **kwargs)
        try:
            ipaddress.ip_address(str(name).split("%", 1)[0])
        except ValueError:
            raise socket.gaierror(socket.EAI_NONAME, f"DNS is off in tests: {name}") from None
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", loopback_only)


def _pg_admin() -> psycopg.Connection:
    return psycopg.connect(PG_ADMIN_URL, autocommit=True)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database of this test session (per xdist worker), dropped afterwards."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"cephalopod_test_{worker}_{uuid.uuid4().hex[:8]}"
    try:
        with _pg_admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:  # pragma: no cover - a machine without the server
        pytest.fail(f"PostgreSQL is needed at {PG_ADMIN_URL}: {exc}")
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    yield f"{base}/{name}"
    with _pg_admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A SQLite database file of this test session."""
    return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'cephalopod.db'}"


@pytest.fixture(scope="session", params=BACKENDS)
def db_url(request: pytest.FixtureRequest) -> str:
    """Each test that uses the database runs on SQLite and on PostgreSQL."""
    if request.param == "postgresql":
        request.applymarker(pytest.mark.postgres)
        return request.getfixturevalue("postgres_url")
    return request.getfixturevalue("sqlite_url")


_schema_ready: set[str] = set()


@pytest.fixture
def fast_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hash with argon2's cheapest (still Argon2id) parameters: the real ones cost ~0.2 s each.

    For every test that makes users; tests/auth/test_passwords.py checks the real parameters.
    """
    monkeypatch.setattr(auth_ops, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))


@pytest.fixture
def instance_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An instance folder of the test, and no settings file picked up from the machine."""
    folder = tmp_path / "instance"
    folder.mkdir()
    empty = tmp_path / "empty-settings.cfg"
    empty.write_text("# no settings: built-in defaults\n")
    monkeypatch.setenv("CEPHALOPOD_INSTANCE_PATH", str(folder))
    monkeypatch.setenv("CEPHALOPOD_SETTINGS", str(empty))
    return folder


TEST_SETTINGS: dict[str, Any] = {
    "SECRET_KEY": "test-secret-key",
    "TESTING": True,
    "CRAWLER_ALLOWED_NETWORKS": ["127.0.0.0/8"],
}


@contextlib.contextmanager
def _app_factory(db_url: str) -> Iterator[Callable[..., Flask]]:
    apps: list[Flask] = []

    def factory(**overrides: Any) -> Flask:
        app = create_app(
            overrides={**TEST_SETTINGS, "SQLALCHEMY_DATABASE_URI": db_url, **overrides}
        )
        with app.app_context():
            if db_url not in _schema_ready:
                from cephalopod.schema import drop_schema, ensure_schema

                drop_schema()
                ensure_schema()
                _schema_ready.add(db_url)
        apps.append(app)
        return app

    yield factory
    for app in apps:
        # first its background work: a task (a mail's retry, its timer due later) running
        # after the engine's disposal would open a connection that nobody closes
        services(app).runner.stop(grace=5)
    for app in apps:
        with app.app_context():
            db.session.remove()
            if app is apps[0]:
                _empty_tables()
            db.engine.dispose()


@pytest.fixture
def make_app(db_url: str, instance_dir: Path) -> Iterator[Callable[..., Flask]]:
    """Build apps on the test's database with setting overrides; tables emptied afterwards."""
    with _app_factory(db_url) as factory:
        yield factory


@pytest.fixture
def make_pg_app(postgres_url: str, instance_dir: Path) -> Iterator[Callable[..., Flask]]:
    """Like make_app, on PostgreSQL only: for tests that need the server (several processes)."""
    with _app_factory(postgres_url) as factory:
        yield factory


def _empty_tables() -> None:
    with db.engine.begin() as conn:
        for table in reversed(db.metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    """The app with test settings."""
    return make_app()


@pytest.fixture
def app_ctx(app: Flask) -> Iterator[Flask]:
    """The app, with an application context pushed (for operations and queries)."""
    with app.app_context():
        yield app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """Flask's test client of the app."""
    return app.test_client()


@pytest.fixture
def make_instance(app: Flask) -> Callable[..., Any]:
    """Register an instance through the operations layer; keyword arguments override fields."""
    from cephalopod.instances import operations as ops
    from cephalopod.instances.models import Instance

    counter = iter(range(1, 1_000_000))

    def factory(**overrides: Any) -> Instance:
        n = next(counter)
        data = {
            "url": f"https://indico{n}.example.org",
            "contact": f"Contact {n}",
            "email": f"admin{n}@example.org",
            "organization": f"Organization {n}",
        }
        extra = {k: overrides.pop(k) for k in list(overrides) if k not in data}
        data.update(overrides)
        with app.app_context():
            instance = ops.register_instance(data)
            for name, value in extra.items():
                setattr(instance, name, value)
            db.session.commit()
            db.session.refresh(instance)
            db.session.expunge(instance)
        return instance

    return factory


def count_rows(app: Flask, table: str) -> int:
    """Return the number of rows of ``table`` (for assertions that nothing was stored)."""
    with app.app_context():
        return db.session.scalar(sa.text(f"SELECT count(*) FROM {table}"))  # noqa: S608


@pytest.fixture
def make_fleet() -> Iterator[Callable[[str], str]]:
    """Start fleets of fake instances (benchmarks.fleet) on loopback hosts; returns base URLs."""
    import asyncio
    import threading

    from aiohttp import web

    from benchmarks.fleet import fleet_app

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    runners: list[web.AppRunner] = []

    async def start(host: str) -> int:
        runner = web.AppRunner(fleet_app(), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, 0).start()
        runners.append(runner)
        return runner.addresses[0][1]

    def factory(host: str = "127.0.0.1") -> str:
        port = asyncio.run_coroutine_threadsafe(start(host), loop).result(10)
        return f"http://{host}:{port}"

    yield factory

    async def stop() -> None:
        for runner in runners:
            await runner.cleanup()

    asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


@pytest.fixture
def fleet(make_fleet: Callable[[str], str]) -> str:
    """A fleet of fake instances on 127.0.0.1; its base URL."""
    return make_fleet("127.0.0.1")


@pytest.fixture
def broker() -> Iterator[PrivateRedis]:
    """A Redis of the test's own (`PrivateRedis`): no other test or pytest process shares it.

    The machine's Redis has 16 numbered databases for everyone; two pytest processes (two
    worktrees, CI jobs) using the same number would eat each other's Celery messages.
    """
    from tests.faults.services import private_redis

    with private_redis() as server:
        yield server


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers (a hung broker)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join(5)
    for conn in accepted:
        conn.close()
    server.close()
