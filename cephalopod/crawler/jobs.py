"""Crawl jobs: start a crawl of all instances in the background and follow its progress.

With a broker (``CELERY_BROKER_URL``) the crawl fans out into Celery chunk tasks that any
number of workers share; without one, the in-process worker thread of ``cephalopod run``
does it. Either way a request never blocks on a crawl, and two crawls of everything never
run at once: starting one while another is active returns the active job.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask

from cephalopod.background import Runner
from cephalopod.crawler.models import ALL, INSTANCE, CrawlJob, CrawlJobChunk
from cephalopod.crawler.run import CrawlSummary, Progress, count_enabled, crawl
from cephalopod.db import db, utcnow
from cephalopod.instances.models import Instance, InstanceField, Snapshot
from cephalopod.schedule import CRAWL_ALL, CRAWL_INSTANCE

log = logging.getLogger(__name__)

ACTIVE_STATES = ("queued", "running")
#: A job still "active" after this long was lost (a killed worker): it no longer blocks others.
STALE_AFTER = timedelta(hours=12)
jobs = CrawlJob.__table__
chunks = CrawlJobChunk.__table__


def active_job() -> CrawlJob | None:
    """Return the crawl-all job that is queued or running, if any (needs an app context)."""
    return db.session.scalar(
        sa.select(CrawlJob)
        .where(
            CrawlJob.kind == ALL,
            CrawlJob.state.in_(ACTIVE_STATES),
            CrawlJob.created_at > utcnow() - STALE_AFTER,
        )
        .order_by(CrawlJob.created_at.desc())
        .limit(1)
    )


def create_job() -> str | None:
    """Create a queued job and return its id; None when another one is active."""
    if active_job() is not None:
        return None
    job = CrawlJob(id=str(uuid.uuid4()), state="queued", created_at=utcnow())
    db.session.add(job)
    db.session.commit()
    return job.id


def start_crawl_all(runner: Runner) -> str:
    """Start crawling every enabled instance in the background; return the job id.

    When one is queued or running already, return its id instead (needs an app context).
    """
    job_id = create_job()
    if job_id is None:
        existing = active_job()
        if existing is not None:
            return existing.id
        job_id = create_job()  # it ended in between
    if job_id is None:
        raise RuntimeError("could not create a crawl job")
    runner.submit(CRAWL_ALL, job_id=job_id)
    return job_id


def start_crawl_one(runner: Runner, instance: Instance) -> str:
    """Submit a crawl of one instance, as a job of its own; return the job id.

    It does not count as the active crawl of all (they may run side by side).
    """
    job = CrawlJob(
        id=str(uuid.uuid4()),
        kind=INSTANCE,
        instance_id=instance.id,
        state="queued",
        total=1,
        created_at=utcnow(),
    )
    db.session.add(job)
    db.session.commit()
    runner.submit(CRAWL_INSTANCE, str(instance.uuid), job_id=job.id)
    return job.id


def run_crawl_one(app: Flask, job_id: str, instance_id: int) -> CrawlSummary:
    """Crawl one instance in this process, recording the outcome in its job."""
    _set_state(job_id, state="running", started_at=utcnow())
    try:
        summary = crawl_one(app, instance_id)
    except Exception as exc:
        log.exception("Crawl %s of instance %d failed", job_id, instance_id)
        fail_job(job_id, str(exc))
        raise
    done = {"done": summary.total, "ok": summary.ok, "failed": summary.failed}
    _set_state(job_id, state="done", finished_at=utcnow(), **done)
    return summary


def wait_for_job(job_id: str, timeout: float, poll: float = 0.05) -> str:
    """Wait until the job ends or ``timeout`` seconds pass; return its state then."""
    deadline = time.monotonic() + timeout
    while True:
        db.session.rollback()  # a fresh snapshot each time (SQLite keeps one per transaction)
        state = db.session.scalar(sa.select(CrawlJob.state).where(CrawlJob.id == job_id))
        if state not in ACTIVE_STATES or time.monotonic() >= deadline:
            return state or "failed"
        time.sleep(min(poll, max(0.0, deadline - time.monotonic())))
        poll = min(poll * 1.5, 0.5)


def job_error(job_id: str) -> str | None:
    """Return why a job failed."""
    return db.session.scalar(sa.select(CrawlJob.error).where(CrawlJob.id == job_id))


def fail_job(job_id: str, error: str) -> None:
    """End a job as failed, with the reason."""
    _set_state(job_id, state="failed", finished_at=utcnow(), error=error[:500])


def _set_state(job_id: str, **values: Any) -> None:
    with db.engine.begin() as conn:
        conn.execute(sa.update(jobs).where(jobs.c.id == job_id).values(**values))


def run_crawl_all(app: Flask, job_id: str, progress: Progress | None = None) -> CrawlSummary:
    """Crawl every enabled instance in this process, recording progress in the job."""
    with app.app_context():
        total = count_enabled(db.engine)
        _set_state(job_id, state="running", started_at=utcnow(), total=total)
        try:
            summary = crawl(app, job_id=job_id, progress=progress)
        except Exception as exc:
            log.exception("Crawl %s failed", job_id)
            _set_state(job_id, state="failed", finished_at=utcnow(), error=str(exc)[:500])
            raise
        _set_state(job_id, state="done", finished_at=utcnow())
    log.info(
        "Crawl %s done: %d ok, %d failed in %.1f s (%.0f/s)",
        job_id,
        summary.ok,
        summary.failed,
        summary.duration,
        summary.rate,
    )
    return summary


def chunk_totals(conn: sa.Connection, job_id: str) -> tuple[int, int, int, int]:
    """(done, ok, failed, finished chunks) of a job that Celery workers share, from its chunks."""
    c = chunks.c
    finished = sa.case((c.finished, 1), else_=0)
    sums = (sa.func.coalesce(sa.func.sum(col), 0) for col in (c.done, c.ok, c.failed, finished))
    done, ok, failed, count = conn.execute(sa.select(*sums).where(c.job_id == job_id)).one()
    return done, ok, failed, count


def job_status(job_id: str) -> dict[str, Any] | None:
    """Return a job's progress as the admin API shows it, or None for an unknown id."""
    job = db.session.get(CrawlJob, job_id)
    if job is None:
        return None
    done, ok, failed = job.done, job.ok, job.failed
    if job.state == "running" and job.chunks_total:  # Celery: live counts are the chunks'
        done, ok, failed, _finished = chunk_totals(db.session.connection(), job_id)
    return {
        "state": job.state,
        "total": job.total,
        "done": min(done, job.total) if job.total else done,
        "ok": ok,
        "failed": failed,
    }


def crawl_one(app: Flask, instance_id: int) -> CrawlSummary:
    """Crawl one instance now, enabled or not (a person asked for it by name)."""
    return crawl(app, [instance_id])


def prune_history(app: Flask, retention_days: int) -> int:
    """Delete snapshots older than HISTORY_RETENTION_DAYS; return how many went.

    Also drops display values whose instance is gone (they have no foreign key: see
    `InstanceField`), e.g. after an instance was deleted with SQL by hand.
    """
    keep_from = utcnow().date() - timedelta(days=retention_days)
    fields, instances = InstanceField.__table__, Instance.__table__
    orphaned = ~sa.exists().where(instances.c.id == fields.c.instance_id)
    with app.app_context(), db.engine.begin() as conn:
        deleted = conn.execute(sa.delete(Snapshot.__table__).where(Snapshot.day < keep_from))
        orphans = conn.execute(sa.delete(fields).where(orphaned))
    log.info("Pruned %d snapshots older than %s", deleted.rowcount, keep_from)
    if orphans.rowcount:
        log.info("Dropped the display values of %d deleted instances", orphans.rowcount)
    return deleted.rowcount
