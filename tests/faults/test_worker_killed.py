"""A Celery worker killed with SIGKILL in the middle of a crawl: another one finishes it.

Real worker processes (``cephalopod runworker``) on a Redis of the test's own, results in
PostgreSQL, instances served by the fleet simulator. The killed worker's chunks were taken
but never acknowledged (``task_acks_late``); Redis hands them out again once their
visibility timeout has passed (shortened here to seconds), and the chunk rows' delivery
tokens keep the counts exact although some instances were crawled twice.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask

from benchmarks.fleet import ENDPOINTS
from cephalopod.crawler.models import CrawlJob, CrawlJobChunk
from cephalopod.db import db
from cephalopod.schedule import CRAWL_ALL
from cephalopod.services import services
from tests.faults.conftest import assert_crawled_once_each, fleet_urls, seed_instances
from tests.faults.services import (
    PrivateRedis,
    end_process,
    fleet_process,
    start_process,
    wait_until,
    write_settings,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

NUM = 2000
CHUNK = 50
#: Seconds before Redis hands out again what a dead worker took: short, for the test
VISIBILITY = 6


def _chunks(app: Flask) -> list[CrawlJobChunk]:
    with app.app_context():
        db.session.expire_all()
        return list(db.session.scalars(sa.select(CrawlJobChunk)))


def _job(app: Flask) -> CrawlJob | None:
    with app.app_context():
        db.session.expire_all()
        job = db.session.scalar(sa.select(CrawlJob))
        if job is not None:
            db.session.expunge(job)
        return job


def test_a_worker_killed_mid_crawl_loses_nothing(
    postgres_url: str, tmp_path: Path, make_pg_app: Callable[..., Flask], broker: PrivateRedis
) -> None:
    transport = {
        "visibility_timeout": VISIBILITY,
        "unacked_restore_interval": 1,
        "unacked_restore_throttle": 1,
    }
    with fleet_process(latency=0.03) as fleet:
        settings = write_settings(
            tmp_path / "worker.cfg",
            SQLALCHEMY_DATABASE_URI=postgres_url,
            CELERY_BROKER_URL=broker.url,
            CELERY_BROKER_TRANSPORT_OPTIONS=transport,
            CRAWLING_ENDPOINTS=ENDPOINTS,
            CRAWLER_ALLOWED_NETWORKS=["127.0.0.0/8"],
            CRAWLER_CHUNK_SIZE=CHUNK,
            CRAWLER_BATCH_SIZE=10,
            CRAWLER_CONCURRENCY=20,
            SECRET_KEY="worker-test",
        )
        app = make_pg_app(CELERY_BROKER_URL=broker.url, CRAWLING_ENDPOINTS=ENDPOINTS)
        urls = fleet_urls(fleet, NUM)
        seed_instances(app, urls)
        missing = sum("/missing/" in url for url in urls)
        log_a, log_b = tmp_path / "worker-a.log", tmp_path / "worker-b.log"
        worker_a = start_process(["runworker", "2", "--no-beat"], settings, log_a)
        worker_b = None
        try:
            services(app).runner.celery.send_task(CRAWL_ALL)  # type: ignore[attr-defined]

            def mid_crawl() -> list[CrawlJobChunk] | None:
                chunks = _chunks(app)
                finished = [c for c in chunks if c.finished]
                partial = [c for c in chunks if not c.finished and c.done > 0]
                return partial if len(finished) >= 4 and partial else None

            in_flight = wait_until(mid_crawl, 60, "worker A to be in the middle of chunks", 0.02)
            assert end_process(worker_a, signal.SIGKILL) == -signal.SIGKILL
            killed = {(c.first_id, c.delivery) for c in _chunks(app) if not c.finished}
            assert {(c.first_id, c.delivery) for c in in_flight} <= killed

            worker_b = start_process(["runworker", "2", "--no-beat"], settings, log_b)

            def ended() -> CrawlJob | None:
                job = _job(app)
                return job if job is not None and job.state != "running" else None

            job = wait_until(ended, 50, "worker B to finish the crawl", 0.2)
        finally:
            end_process(worker_a, signal.SIGKILL)
            if worker_b is not None:
                end_process(worker_b)
    logs = log_a.read_text() + log_b.read_text()
    chunks_total = -(-NUM // CHUNK)
    assert (job.state, job.chunks_total, job.chunks_done) == ("done", chunks_total, chunks_total), (
        logs
    )
    assert (job.total, job.done, job.ok, job.failed) == (NUM, NUM, NUM - missing, missing)
    # the chunks the killed worker held were delivered again, and that delivery finished them
    final = {c.first_id: c for c in _chunks(app)}
    assert len(final) == chunks_total
    assert all(c.finished and c.done == CHUNK for c in final.values())
    for first_id, delivery in killed:
        assert final[first_id].delivery != delivery
    assert_crawled_once_each(app, ok=NUM - missing, failed=missing)
