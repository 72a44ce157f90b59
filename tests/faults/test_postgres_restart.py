"""PostgreSQL restarted during a crawl and during API traffic (a cluster of the test's own).

Requests while the server is down answer 503 with the JSON error shape, never 500; the
first ones after it is back succeed (the pool tests its connections before use); nothing is
half-written. The crawl's batches wait for the server and are stored whole once it is back.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa
from flask import Flask

from benchmarks.fleet import ENDPOINTS, free_port
from cephalopod.app import create_app
from cephalopod.crawler.models import CrawlJob
from cephalopod.db import db
from cephalopod.errors import DATABASE_DOWN
from cephalopod.instances.models import Instance
from cephalopod.schema import ensure_schema
from tests.conftest import TEST_SETTINGS
from tests.faults.conftest import assert_crawled_once_each, fleet_urls, seed_instances
from tests.faults.services import (
    PrivatePostgres,
    create_token,
    end_process,
    fleet_process,
    start_server,
    wait_until,
    write_settings,
)

pytestmark = pytest.mark.slow

OUTAGE_SECONDS = 3.0


@pytest.fixture
def pg_app(private_pg: PrivatePostgres, instance_dir: Path) -> Iterator[Flask]:
    """The app on the private cluster, with its schema."""
    app = create_app(
        overrides={
            **TEST_SETTINGS,
            "SQLALCHEMY_DATABASE_URI": private_pg.url,
            "CRAWLING_ENDPOINTS": ENDPOINTS,
        }
    )
    with app.app_context():
        ensure_schema()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _settings(path: Path, pg: PrivatePostgres, **extra: object) -> Path:
    return write_settings(
        path,
        SQLALCHEMY_DATABASE_URI=pg.url,
        SECRET_KEY="fault-test",
        CRAWLER_ALLOWED_NETWORKS=["127.0.0.0/8"],
        CELERYBEAT_SCHEDULE={},  # no crawl at start: the test says when
        **extra,
    )


def _job(app: Flask) -> CrawlJob | None:
    try:
        with app.app_context():
            db.session.expire_all()
            job = db.session.scalar(sa.select(CrawlJob))
            if job is not None:
                db.session.expunge(job)
            return job
    except sa.exc.OperationalError:  # the test's own look during the outage
        return None
    finally:
        with app.app_context():
            db.session.remove()


def test_a_crawl_survives_a_database_restart(
    pg_app: Flask, private_pg: PrivatePostgres, tmp_path: Path
) -> None:
    num = 2000
    with fleet_process(latency=0.05) as fleet:
        urls = fleet_urls(fleet, num)
        missing = sum("/missing/" in url for url in urls)
        seed_instances(pg_app, urls)
        settings = _settings(
            tmp_path / "crawl.cfg",
            private_pg,
            CRAWLING_ENDPOINTS=ENDPOINTS,
            CRAWLER_CONCURRENCY=50,
            CRAWLER_BATCH_SIZE=50,
        )
        command = subprocess.Popen(
            [sys.executable, "-m", "cephalopod", "crawl"],
            env={"CEPHALOPOD_SETTINGS": str(settings), "PATH": "/usr/bin:/bin"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            wait_until(
                lambda: (job := _job(pg_app)) is not None and 200 <= job.done < num // 2,
                60,
                "the crawl to store its first batches",
                0.05,
            )
            private_pg.stop()
            time.sleep(OUTAGE_SECONDS)  # the fetches go on; the batches wait
            private_pg.start()
            output, _ = command.communicate(timeout=90)
        finally:
            if command.poll() is None:
                command.kill()
                command.communicate()
    assert command.returncode == 0, output
    assert "database unavailable" in output  # it did meet the outage, and retried
    assert f"Crawled {num} instance(s)" in output, output
    job = _job(pg_app)
    assert job is not None
    assert (job.state, job.total, job.done, job.ok, job.failed) == (
        "done",
        num,
        num,
        num - missing,
        missing,
    ), output
    assert_crawled_once_each(pg_app, ok=num - missing, failed=missing)


@dataclass
class Reply:
    started: float
    method: str
    route: str
    status: int
    body: object
    retry_after: str | None
    url: str | None = None  # a registration's


def _traffic(base: str, token: str, stop: threading.Event, replies: list[Reply]) -> None:
    """Register, read and edit its own record, and list as an admin, until told to stop."""
    session = requests.Session()
    admin = {"Authorization": f"Bearer {token}"}
    mine: str | None = None
    while not stop.is_set():
        calls: list[tuple[str, str, str, dict[str, object]]] = []
        url = f"http://127.0.0.1:9/{uuid.uuid4().hex}"
        registration = {"url": url, "contact": "C", "email": "c@example.org", "organization": "O"}
        calls.append(("POST", "/api/instance/", "/api/instance/", {"json": registration}))
        if mine:
            calls.append(("GET", f"/api/instance/{mine}", "/api/instance/<uuid>", {}))
            patch = {"contact": f"C {time.monotonic()}"}
            calls.append(
                ("PATCH", f"/api/instance/{mine}", "/api/instance/<uuid>", {"json": patch})
            )
        calls.append(
            ("GET", "/api/admin/instances?per_page=5", "/api/admin/instances", {"headers": admin})
        )
        for method, path, route, kwargs in calls:
            started = time.monotonic()
            response = session.request(method, base + path, timeout=30, **kwargs)  # type: ignore[arg-type]
            try:
                body: object = response.json()
            except ValueError:
                body = response.text
            reply = Reply(started, method, route, response.status_code, body,
                          response.headers.get("Retry-After"))  # fmt: skip
            if method == "POST":
                reply.url = url
                if response.status_code == 201:
                    mine = body["uuid"]  # type: ignore[index]
            replies.append(reply)


def test_api_traffic_across_a_database_restart(
    pg_app: Flask, private_pg: PrivatePostgres, tmp_path: Path
) -> None:
    settings = _settings(
        tmp_path / "server.cfg", private_pg, REGISTRATION_RATE_LIMIT="100000 per hour"
    )
    log = tmp_path / "server.log"
    token = create_token(settings, log)
    port = free_port()
    server = start_server(settings, log, port)
    replies: list[Reply] = []
    stop = threading.Event()
    threads = [
        threading.Thread(target=_traffic, args=(f"http://127.0.0.1:{port}", token, stop, replies))
        for _ in range(4)
    ]
    try:
        for thread in threads:
            thread.start()
        time.sleep(1.5)
        down = time.monotonic()
        private_pg.stop()
        time.sleep(OUTAGE_SECONDS)
        private_pg.start()
        back = time.monotonic()
        time.sleep(2.0)
    finally:
        stop.set()
        for thread in threads:
            thread.join(30)
        code = end_process(server)
    text = log.read_text()
    assert code == 0, text
    statuses = {reply.status for reply in replies}
    assert statuses <= {200, 201, 503}, [r for r in replies if r.status not in (200, 201, 503)]
    unavailable = [reply for reply in replies if reply.status == 503]
    assert unavailable, "no request met the outage"
    for reply in unavailable:
        assert reply.body == {"error": DATABASE_DOWN}, reply
        # 5 s; on a registration Flask-Limiter raises it to its own window's reset
        assert reply.retry_after is not None
        assert int(reply.retry_after) >= 5
        assert down - 1 <= reply.started <= back, reply  # only while the server was down
    after = [reply for reply in replies if reply.started > back]
    assert len(after) > 10
    assert all(reply.status in (200, 201) for reply in after), after  # reconnected at once
    before = [reply for reply in replies if reply.started < down - 1]
    assert before
    assert all(reply.status in (200, 201) for reply in before)
    assert any(reply.method == "POST" for reply in unavailable)
    # nothing half-written: each acknowledged registration is stored whole, and the only
    # others stored are ones whose reply was the 503 (a COMMIT the outage cut may have landed)
    accepted = {r.url: r.body["uuid"] for r in replies if r.status == 201}  # type: ignore[index]
    refused = {r.url for r in replies if r.method == "POST" and r.status == 503}
    with pg_app.app_context():
        stored = {
            row.url: str(row.uuid)
            for row in db.session.execute(sa.select(Instance.url, Instance.uuid, Instance.email))
            if row.email == "c@example.org"
        }
    assert {url: stored.get(url) for url in accepted} == accepted
    assert set(stored) <= set(accepted) | refused
