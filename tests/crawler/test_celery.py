"""crawl_all through a real Celery worker on a real Redis broker, results in PostgreSQL.

The broker is a Redis of the test's own (the ``broker`` fixture): a numbered database of the
machine's Redis would be shared with any other pytest process running at the same time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from benchmarks.fleet import ENDPOINTS
from cephalopod.crawler.models import CrawlJob
from cephalopod.db import db
from cephalopod.instances.models import Instance
from cephalopod.instances.operations import register_instance
from cephalopod.schedule import CRAWL_ALL, PRUNE_AUDIT, PRUNE_HISTORY
from cephalopod.services import services
from tests.faults.services import PrivateRedis

#: Only configured, never connected to (no task is sent): see test_beat_schedule...
UNUSED_BROKER = "redis://127.0.0.1:1/0"


def _celery(app: Flask) -> Any:
    return services(app).runner.celery  # type: ignore[attr-defined]


def test_beat_schedule_comes_from_the_settings(make_app: Callable[..., Flask]) -> None:
    app = make_app(
        CELERY_BROKER_URL=UNUSED_BROKER,
        CELERYBEAT_SCHEDULE={"nightly": {"task": CRAWL_ALL, "schedule": timedelta(hours=6)}},
    )
    schedule = _celery(app).conf.beat_schedule
    assert schedule["nightly"]["task"] == CRAWL_ALL
    assert schedule["nightly"]["schedule"] == timedelta(hours=6)
    assert schedule["prune-history"]["task"] == PRUNE_HISTORY
    assert schedule["prune-audit"]["task"] == PRUNE_AUDIT
    assert PRUNE_AUDIT in _celery(app).tasks
    assert {CRAWL_ALL, "cephalopod.crawler.crawl_chunk"} <= set(_celery(app).tasks)


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.slow
def test_crawl_all_through_a_real_worker(
    postgres_url: str,
    tmp_path: Path,
    make_pg_app: Callable[..., Flask],
    fleet: str,
    broker: PrivateRedis,
) -> None:
    settings = tmp_path / "worker.cfg"
    settings.write_text(
        f"SQLALCHEMY_DATABASE_URI = {postgres_url!r}\n"
        f"CELERY_BROKER_URL = {broker.url!r}\n"
        f"CRAWLING_ENDPOINTS = {ENDPOINTS!r}\n"
        "CRAWLER_ALLOWED_NETWORKS = ['127.0.0.0/8']\n"
        "SECRET_KEY = 'worker-test'\n"
        "CRAWLER_CHUNK_SIZE = 5\n"
    )
    app = make_pg_app(CELERY_BROKER_URL=broker.url, CRAWLING_ENDPOINTS=ENDPOINTS)
    with app.app_context():
        for url in [f"{fleet}/i/{n}" for n in range(12)] + [f"{fleet}/missing"]:
            register_instance({"url": url, "contact": "C", "email": "c@example.org",
                               "organization": "O"})  # fmt: skip
    env = {**os.environ, "CEPHALOPOD_SETTINGS": str(settings)}
    worker = subprocess.Popen(
        [sys.executable, "-m", "cephalopod", "runworker", "2", "--no-beat"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        _celery(app).send_task(CRAWL_ALL)  # what beat sends; the worker does the rest
        deadline = time.monotonic() + 60
        job = None
        with app.app_context():
            while time.monotonic() < deadline:
                db.session.expire_all()
                job = db.session.scalar(sa.select(CrawlJob))
                if job is not None and job.state == "done":
                    break
                time.sleep(0.2)
            assert job is not None, "the worker never started the crawl"
            assert (job.state, job.chunks_total, job.chunks_done) == ("done", 3, 3)
            assert (job.total, job.done, job.ok, job.failed) == (13, 13, 12, 1)
            statuses = db.session.scalars(sa.select(Instance.crawl_status)).all()
            assert sorted(statuses) == ["error"] + ["ok"] * 12
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            output, _ = worker.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            output, _ = worker.communicate()
    assert "cephalopod.crawler.crawl_chunk" in output, output
