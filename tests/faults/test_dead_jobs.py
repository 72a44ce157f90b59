"""When a crawl job is dead: its owner is gone from this host, or its heartbeat is old."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask

from benchmarks.fleet import free_port
from cephalopod.background import QueueUnavailableError
from cephalopod.crawler import jobs
from cephalopod.crawler.models import CrawlJob
from cephalopod.db import db, utcnow
from cephalopod.services import services


def _add(**values: object) -> str:
    now = utcnow()
    job = CrawlJob(
        id=f"job-{time.monotonic_ns()}", created_at=now, **{"state": "running", **values}
    )
    db.session.add(job)
    db.session.commit()
    return job.id


def _state(job_id: str) -> tuple[str, str | None]:
    db.session.expire_all()
    job = db.session.get(CrawlJob, job_id)
    assert job is not None
    return job.state, job.error


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_job_of_a_live_process_is_active(app_ctx: Flask) -> None:
    job_id = _add(owner=jobs.process_owner(), heartbeat_at=utcnow())
    assert jobs.active_job() is not None
    assert jobs.job_status(job_id)["state"] == "running"  # type: ignore[index]


def test_a_job_whose_process_is_gone_is_ended(app_ctx: Flask) -> None:
    host = jobs.process_owner().split(":")[0]
    gone = _add(owner=f"{host}:{_dead_pid()}:abcd", heartbeat_at=utcnow())
    assert jobs.active_job() is None
    state, error = _state(gone)
    assert state == "failed"
    assert error is not None
    assert "is gone" in error
    assert jobs.create_job() is not None  # the next crawl may start


def test_an_earlier_process_with_our_pid_is_not_us(app_ctx: Flask) -> None:
    host, pid, _token = jobs.process_owner().split(":")
    earlier = _add(owner=f"{host}:{pid}:0000", heartbeat_at=utcnow())
    assert jobs.job_status(earlier)["state"] == "failed"  # type: ignore[index]


def test_a_silent_job_of_another_host_dies_by_its_heartbeat(app_ctx: Flask) -> None:
    fresh = _add(owner="elsewhere:1:x", heartbeat_at=utcnow() - jobs.DEAD_AFTER / 2)
    assert jobs.job_status(fresh)["state"] == "running"  # type: ignore[index]
    silent = _add(
        owner="elsewhere:2:y", heartbeat_at=utcnow() - jobs.DEAD_AFTER - timedelta(seconds=1)
    )
    assert jobs.job_status(silent)["state"] == "failed"  # type: ignore[index]
    assert "no process has worked on it" in (_state(silent)[1] or "")


def test_a_queued_job_waits_for_a_worker_until_it_is_stale(app_ctx: Flask) -> None:
    waiting = _add(state="queued")  # in the broker: no owner, no heartbeat
    db.session.execute(
        sa.update(CrawlJob)
        .where(CrawlJob.id == waiting)
        .values(created_at=utcnow() - timedelta(hours=1))
    )
    db.session.commit()
    active = jobs.active_job()
    assert active is not None
    assert active.id == waiting
    db.session.execute(
        sa.update(CrawlJob)
        .where(CrawlJob.id == waiting)
        .values(created_at=utcnow() - jobs.STALE_AFTER - timedelta(minutes=1))
    )
    db.session.commit()
    assert jobs.active_job() is None
    assert _state(waiting)[0] == "failed"


def test_the_heartbeat_is_touched_while_work_runs(
    app_ctx: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobs, "HEARTBEAT_SECONDS", 0.05)
    job_id = _add(state="running")
    with jobs.heartbeat(job_id, owner="me:1:z"):
        first = db.session.scalar(sa.select(CrawlJob.heartbeat_at).where(CrawlJob.id == job_id))
        time.sleep(0.3)
        db.session.rollback()
        later = db.session.scalar(sa.select(CrawlJob.heartbeat_at).where(CrawlJob.id == job_id))
    assert first is not None
    assert later is not None
    assert later > first
    assert db.session.scalar(sa.select(CrawlJob.owner).where(CrawlJob.id == job_id)) == "me:1:z"


def test_a_crawl_the_broker_cannot_take_is_ended_and_blocks_nothing(
    make_app: Callable[..., Flask], make_instance: Callable[..., object]
) -> None:
    app = make_app(CELERY_BROKER_URL=f"redis://127.0.0.1:{free_port()}/0")  # nothing listens
    with app.app_context():
        runner = services(app).runner
        with pytest.raises(QueueUnavailableError):
            jobs.start_crawl_all(runner)
        job = db.session.scalar(sa.select(CrawlJob))
        assert job is not None
        assert job.state == "failed"
        assert (job.error or "").startswith("not started: the broker did not take")
        assert jobs.active_job() is None
