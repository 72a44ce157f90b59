"""GET /healthz: the database (SQLite, PostgreSQL) and the broker (Redis), up and down."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from cephalopod.app import create_app
from cephalopod.db import db, engine_options
from cephalopod.ops import health
from tests.conftest import TEST_SETTINGS

REDIS = "redis://127.0.0.1:6379/15"


def free_port() -> int:
    """A loopback TCP port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_healthy_database_answers_200(
    client: Any, make_instance: Callable[..., Any], db_url: str
) -> None:
    make_instance(organization="Secret Org", email="private@example.org")
    response = client.get("/healthz")  # no login
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert list(body["checks"]) == ["database"]  # no broker configured
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["database"]["seconds"] >= 0
    assert response.headers["Cache-Control"] == "no-store"
    text = response.get_data(as_text=True)
    for private in ("Secret Org", "private@example.org", "indico", db_url.split("@")[0]):
        assert private not in text


def test_health_runs_one_trivial_statement(app: Flask) -> None:
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    with app.app_context():
        engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        assert app.test_client().get("/healthz").status_code == 200
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    # no count of instances, no join: cheap enough to poll every few seconds
    assert [s for s in statements if not s.upper().startswith(("PRAGMA", "SET"))] == ["SELECT 1"]


@pytest.mark.postgres
def test_database_down_answers_503_naming_it(instance_dir: Path) -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing"
    app = create_app(overrides={**TEST_SETTINGS, "SQLALCHEMY_DATABASE_URI": url})
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "fail"
    assert body["failed"] == ["database"]
    assert body["checks"]["database"]["status"] == "fail"
    assert body["checks"]["database"]["error"] == "OperationalError"
    assert str(url.rsplit(":", 1)[1].split("/")[0]) not in response.get_data(as_text=True)


@pytest.mark.postgres
def test_database_that_never_answers_gives_503_quickly(
    instance_dir: Path, silent_port: int
) -> None:
    # a PostgreSQL address that accepts the connection and then says nothing (a frozen server)
    url = f"postgresql+psycopg://postgres@127.0.0.1:{silent_port}/nothing"
    app = create_app(overrides={**TEST_SETTINGS, "SQLALCHEMY_DATABASE_URI": url})
    client = app.test_client()
    start = time.monotonic()
    response = client.get("/healthz")
    elapsed = time.monotonic() - start
    assert response.status_code == 503
    assert response.get_json()["failed"] == ["database"]
    assert response.get_json()["checks"]["database"]["error"] == "TimeoutError"
    assert health.DATABASE_TIMEOUT <= elapsed < health.DATABASE_TIMEOUT + 1.5
    # polls while that connect still hangs fail at once, and start no thread of their own
    for _ in range(5):
        start = time.monotonic()
        assert client.get("/healthz").status_code == 503
        assert time.monotonic() - start < 0.5
    probes = [t for t in threading.enumerate() if t.name == "cephalopod-health-database"]
    assert len(probes) == 1


def test_the_database_connect_timeout_stays_with_other_connect_args() -> None:
    # the driver's own timeout ends a hung connect (and so the health probe's thread)
    url = "postgresql+psycopg://postgres@127.0.0.1/db"
    assert engine_options(url)["connect_args"] == {"connect_timeout": 5}
    options = engine_options(url, {"connect_args": {"application_name": "hub"}})
    assert options["connect_args"] == {"connect_timeout": 5, "application_name": "hub"}
    assert engine_options(url, {"connect_args": {"connect_timeout": 2}})["connect_args"] == {
        "connect_timeout": 2
    }


def test_concurrent_polls_share_one_probe() -> None:
    calls: list[float] = []
    release = threading.Event()

    def slow() -> None:
        calls.append(time.monotonic())
        release.wait(5)

    bounded = health.Bounded("test", slow, timeout=3)
    results: list[bool] = []

    def poll() -> None:
        results.append(health.run_check("test", bounded).ok)

    pollers = [threading.Thread(target=poll) for _ in range(4)]
    for poller in pollers:
        poller.start()
    time.sleep(0.2)
    release.set()
    for poller in pollers:
        poller.join(5)
    assert results == [True] * 4
    assert len(calls) == 1  # one probe answered every poll under way
    assert health.run_check("test", bounded).ok
    assert len(calls) == 2  # a poll after it ended probes again


@pytest.mark.redis
def test_real_redis_broker_answers_200(make_app: Callable[..., Flask]) -> None:
    app = make_app(CELERY_BROKER_URL=REDIS)
    response = app.test_client().get("/healthz")
    assert response.status_code == 200, response.get_json()
    checks = response.get_json()["checks"]
    assert checks["database"]["status"] == "ok"
    assert checks["broker"]["status"] == "ok"


def test_broker_where_nothing_listens_answers_503_naming_it(
    make_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    app = make_app(CELERY_BROKER_URL=f"redis://:broker-password@127.0.0.1:{port}/0")
    client = app.test_client()
    with caplog.at_level("WARNING", logger=health.__name__):
        for _ in range(3):
            response = client.get("/healthz")
            assert response.status_code == 503
    body = response.get_json()
    assert body["failed"] == ["broker"]
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["broker"] == {
        "status": "fail",
        "error": "ConnectionError",
        "seconds": body["checks"]["broker"]["seconds"],
    }
    text = response.get_data(as_text=True)
    assert str(port) not in text
    assert "broker-password" not in text
    # logged once when it starts failing, not at every poll
    failing = [r for r in caplog.records if "fails" in r.getMessage()]
    assert len(failing) == 1
    assert "broker" in failing[0].getMessage()


def test_hung_broker_gives_up_after_the_timeout(
    make_app: Callable[..., Flask], silent_port: int
) -> None:
    app = make_app(CELERY_BROKER_URL=f"redis://127.0.0.1:{silent_port}/0")
    start = time.monotonic()
    response = app.test_client().get("/healthz")
    elapsed = time.monotonic() - start
    assert response.status_code == 503
    assert response.get_json()["checks"]["broker"]["error"] == "TimeoutError"
    assert health.BROKER_TIMEOUT <= elapsed < health.BROKER_TIMEOUT + 3


@pytest.mark.redis
def test_failure_and_recovery_are_logged_once_each(caplog: pytest.LogCaptureFixture) -> None:
    real = health.broker_probe(REDIS)
    down = health.broker_probe(f"redis://127.0.0.1:{free_port()}/0")
    answers = iter([down, down, real, real, down])
    checker = health.Health({"broker": lambda: next(answers)()})
    with caplog.at_level("WARNING", logger=health.__name__):
        assert [checker.check()[0].ok for _ in range(5)] == [False, False, True, True, False]
    messages = [r.getMessage() for r in caplog.records]
    assert [m.split(":")[1].strip() for m in messages] == [
        "the broker fails",
        "the broker answers again",
        "the broker fails",
    ]
    assert "Connection refused" in messages[0]  # the whole reason, in the log only


def test_another_broker_kind_is_checked_with_kombu(make_app: Callable[..., Flask]) -> None:
    # kombu's in-memory transport: the code path of RabbitMQ and the other brokers
    app = make_app(CELERY_BROKER_URL="memory://")
    response = app.test_client().get("/healthz")
    assert response.status_code == 200
    assert response.get_json()["checks"]["broker"]["status"] == "ok"


def test_report_shape() -> None:
    ok = health.Check("database", True, 0.001)
    bad = health.Check("broker", False, 0.5, "TimeoutError", "Timeout connecting to 10.0.0.1")
    assert health.report([ok]) == (
        {"status": "ok", "checks": {"database": {"status": "ok", "seconds": 0.001}}},
        200,
    )
    body, status = health.report([ok, bad])
    assert status == 503
    assert body["failed"] == ["broker"]
    assert body["checks"]["broker"] == {"status": "fail", "error": "TimeoutError", "seconds": 0.5}
    assert "10.0.0.1" not in str(body)
