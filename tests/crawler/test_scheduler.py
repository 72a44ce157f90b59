"""The in-process scheduler: runs the configured schedule, remembers runs across restarts."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from benchmarks.fleet import ENDPOINTS
from cephalopod.background import ThreadRunner
from cephalopod.crawler import jobs
from cephalopod.crawler.models import CrawlJob
from cephalopod.crawler.scheduler import _record_run, last_run, next_run, start_embedded_scheduler
from cephalopod.db import Meta, db
from cephalopod.instances.models import Instance
from cephalopod.schedule import CRAWL_ALL, Periodic
from cephalopod.services import services


def _wait(predicate: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_scheduled_crawl_runs_and_is_remembered(
    make_app: Callable[..., Flask], make_instance: Callable[..., Any], fleet: str
) -> None:
    schedule = {"often": {"task": CRAWL_ALL, "schedule": timedelta(hours=1)}}
    app = make_app(CRAWLING_ENDPOINTS=ENDPOINTS, CELERYBEAT_SCHEDULE=schedule)
    inst = make_instance(url=f"{fleet}/i/2")

    def crawled() -> bool:
        with app.app_context():
            return db.session.get(Instance, inst.id).crawl_status == "ok"

    stop = start_embedded_scheduler(app)
    try:
        assert _wait(crawled), "the scheduled crawl did not happen"
        assert services(app).runner.join(30)  # type: ignore[attr-defined]
    finally:
        stop()
    with app.app_context():
        assert db.session.get(Meta, "last_run:often") is not None
        assert db.session.get(Meta, "last_run:prune-history") is not None
        assert db.session.get(Meta, "last_run:prune-audit") is not None
        jobs_before = db.session.scalar(sa.select(sa.func.count()).select_from(CrawlJob))
    assert jobs_before == 1

    # a restart within the hour does not crawl again: the last run is in the database
    restarted = make_app(CRAWLING_ENDPOINTS=ENDPOINTS, CELERYBEAT_SCHEDULE=schedule)
    stop = start_embedded_scheduler(restarted)
    time.sleep(1.0)
    stop()
    with restarted.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(CrawlJob)) == 1


def test_worker_runs_items_in_order_and_survives_errors(app: Flask) -> None:
    seen: list[int] = []

    def boom(_app: Flask) -> None:
        raise RuntimeError("boom")

    worker = ThreadRunner(app, {"append": lambda _app, n: seen.append(n), "boom": boom})
    worker.submit("append", 1)
    worker.submit("boom")
    worker.submit("append", n=2)
    assert worker.join(10)
    assert seen == [1, 2]
    worker.stop()


def test_a_scheduled_crawl_that_finds_one_running_is_skipped_and_says_why(
    make_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    schedule = {"often": {"task": CRAWL_ALL, "schedule": timedelta(hours=1)}}
    app = make_app(CRAWLING_ENDPOINTS=ENDPOINTS, CELERYBEAT_SCHEDULE=schedule)
    with app.app_context():
        running = jobs.create_job()  # as "cephalopod crawl" in another process does
    caplog.set_level(logging.INFO, logger="cephalopod.crawler.tasks")
    stop = start_embedded_scheduler(app)
    try:
        assert _wait(lambda: "periodic crawl is skipped" in caplog.text)
        assert services(app).runner.join(30)  # type: ignore[attr-defined]
    finally:
        stop()
    assert f"already running (job {running})" in caplog.text
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(CrawlJob)) == 1
        assert db.session.get(CrawlJob, running).state == "queued"  # untouched


def test_last_and_next_run_read_what_the_scheduler_recorded(app: Flask) -> None:
    daily = Periodic("daily", CRAWL_ALL, timedelta(days=1))
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    with app.app_context():
        assert last_run("daily") is None
        assert next_run(daily, now) == now  # never ran: due at once
    _record_run(app, "daily", now - timedelta(hours=5))
    with app.app_context():
        assert last_run("daily") == now - timedelta(hours=5)
        assert last_run("other") is None
        assert next_run(daily, now) == now + timedelta(hours=19)
        assert next_run(daily, now + timedelta(days=2)) == now + timedelta(days=2)  # overdue
