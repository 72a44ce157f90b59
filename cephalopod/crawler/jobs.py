"""Crawl jobs: start a crawl of all instances in the background and follow its progress.

With a broker (``CELERY_BROKER_URL``) the crawl fans out into Celery chunk tasks that any
number of workers share; without one, the in-process worker thread of ``cephalopod run``
does it. Either way a request never blocks on a crawl, and two crawls of everything never
run at once: starting one while another is active returns the active job.

A job never stays "running" after its process died: the process records itself as the job's
``owner`` and touches its ``heartbeat_at`` every `HEARTBEAT_SECONDS` while it works
(`heartbeat`). A job whose owner is gone from this host, or whose heartbeat is older than
`DEAD_AFTER` (any host), is ended as failed the next time anything looks at it
(`active_job`, `job_status`), so a new crawl can start. A crawl in the embedded thread that
is asked to stop (SIGTERM) stores what it fetched and ends its job as interrupted.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask

from cephalopod.audit import operations as audit
from cephalopod.audit.operations import Actor
from cephalopod.background import QueueUnavailableError, Runner
from cephalopod.crawler.models import ALL, INSTANCE, CrawlJob, CrawlJobChunk
from cephalopod.crawler.run import CrawlSummary, Progress, count_enabled, crawl
from cephalopod.crawler.store import BatchOutcome
from cephalopod.db import UNAVAILABLE, db, retrying, utcnow
from cephalopod.instances.models import Instance, InstanceField, Snapshot
from cephalopod.schedule import CRAWL_ALL, CRAWL_INSTANCE
from cephalopod.services import services

log = logging.getLogger(__name__)

ACTIVE_STATES = ("queued", "running")
#: A job still "active" after this long was lost whatever its heartbeat says (a queued job
#: whose message the broker lost has none): it no longer blocks others.
STALE_AFTER = timedelta(hours=12)
#: How often a process working on a job touches its heartbeat.
HEARTBEAT_SECONDS = 5.0
#: A running job whose heartbeat is older than this has no living process: it is dead.
DEAD_AFTER = timedelta(seconds=60)
#: What a job interrupted by its process's shutdown says (and counts: what was stored).
INTERRUPTED = "interrupted: the process running it was asked to stop"
jobs = CrawlJob.__table__
chunks = CrawlJobChunk.__table__

_tokens: dict[int, str] = {}


class CrawlInterruptedError(Exception):
    """The process is shutting down: the crawl stops after the batches already fetched."""


def process_owner() -> str:
    """``host:pid:token`` of this process (the token tells it from an earlier one of that pid)."""
    token = _tokens.setdefault(os.getpid(), secrets.token_hex(4))
    return f"{socket.gethostname()}:{os.getpid()}:{token}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def owner_is_gone(owner: str | None) -> bool:
    """Tell whether ``owner`` is a process of this host that no longer exists.

    A process of another host cannot be asked: its jobs die by their heartbeat alone.
    """
    if not owner:
        return False
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return owner != process_owner()  # an earlier process that had our pid
    return not _pid_alive(pid)


def death_of(job: CrawlJob) -> str | None:
    """Why an active job is dead (its process is gone or silent), or None while it lives."""
    if job.state not in ACTIVE_STATES:
        return None
    now = utcnow()
    if job.created_at < now - STALE_AFTER:
        return f"still {job.state} after {STALE_AFTER}: lost"
    if owner_is_gone(job.owner):
        return f"the process running it ({job.owner}) is gone"
    beat = job.heartbeat_at
    if job.state == "running" and beat is not None and beat < now - DEAD_AFTER:
        seconds = int((now - beat).total_seconds())
        return f"no process has worked on it for {seconds} s (killed?)"
    return None


def end_if_dead(job: CrawlJob) -> bool:
    """End a dead job as failed, saying why (needs an app context); True if it was dead."""
    reason = death_of(job)
    if reason is None:
        return False
    log.warning("Crawl job %s is dead: %s; it is ended as failed", job.id, reason)
    c = jobs.c
    with db.engine.begin() as conn:
        conn.execute(
            sa.update(jobs)
            .where(c.id == job.id, c.state.in_(ACTIVE_STATES))
            .values(state="failed", finished_at=utcnow(), error=f"dead: {reason}"[:500])
        )
    db.session.expire(job)
    return True


def active_job() -> CrawlJob | None:
    """Return the crawl-all job that is queued or running, if any (needs an app context).

    Dead ones found on the way are ended (`end_if_dead`): they no longer count.
    """
    candidates = db.session.scalars(
        sa.select(CrawlJob)
        .where(CrawlJob.kind == ALL, CrawlJob.state.in_(ACTIVE_STATES))
        .order_by(CrawlJob.created_at.desc())
    ).all()
    alive = [job for job in candidates if not end_if_dead(job)]
    return alive[0] if alive else None


def create_job(owner: str | None = None) -> str | None:
    """Create a queued job and return its id; None when another one is active.

    ``owner``: the process that will run it (the embedded thread's); None when it goes to
    a broker, where any worker may take it later.
    """
    if active_job() is not None:
        return None
    now = utcnow()
    job = CrawlJob(id=str(uuid.uuid4()), state="queued", created_at=now, owner=owner)
    job.heartbeat_at = now if owner else None
    db.session.add(job)
    db.session.commit()
    return job.id


def _owner_for(runner: Runner) -> str | None:
    return None if runner.distributed else process_owner()


def _submit(runner: Runner, job_id: str, task: str, *args: Any) -> None:
    """Submit a job's task; if the queue cannot take it, end the job as not started."""
    try:
        runner.submit(task, *args, job_id=job_id)
    except QueueUnavailableError as exc:
        fail_job(job_id, f"not started: {exc}")
        raise


@contextmanager
def heartbeat(job_id: str, owner: str | None = None) -> Iterator[None]:
    """Touch the job's heartbeat (and claim it for ``owner``) while the block runs.

    A thread of its own: the crawl may wait long for slow instances between two batches.
    Beats that fail (the database restarting) are tried again at the next tick.
    """
    engine = db.engine
    claim = {"owner": owner} if owner else {}

    def beat(**values: Any) -> None:
        with engine.begin() as conn:
            conn.execute(
                sa.update(jobs).where(jobs.c.id == job_id).values(heartbeat_at=utcnow(), **values)
            )

    retrying(beat, what=f"crawl job {job_id}")(**claim)
    done = threading.Event()

    def loop() -> None:
        while not done.wait(HEARTBEAT_SECONDS):
            try:
                beat()
            except UNAVAILABLE as exc:
                log.warning("Heartbeat of crawl job %s failed: %s", job_id, exc)

    thread = threading.Thread(target=loop, name=f"heartbeat-{job_id[:8]}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(5)


def start_crawl_all(runner: Runner) -> str:
    """Start crawling every enabled instance in the background; return the job id.

    When one is queued or running already, return its id instead (needs an app context).
    """
    owner = _owner_for(runner)
    job_id = create_job(owner)
    if job_id is None:
        existing = active_job()
        if existing is not None:
            return existing.id
        job_id = create_job(owner)  # it ended in between
    if job_id is None:
        raise RuntimeError("could not create a crawl job")
    _submit(runner, job_id, CRAWL_ALL)
    return job_id


def start_crawl_one(runner: Runner, instance: Instance, actor: Actor | None = None) -> str:
    """Submit a crawl of one instance, as a job of its own; return the job id.

    It does not count as the active crawl of all (they may run side by side). Recorded in
    the audit log (a ``crawl`` by ``actor``) with the job, in its transaction.
    """
    now = utcnow()
    owner = _owner_for(runner)
    job = CrawlJob(
        id=str(uuid.uuid4()),
        kind=INSTANCE,
        instance_id=instance.id,
        state="queued",
        total=1,
        created_at=now,
        owner=owner,
        heartbeat_at=now if owner else None,
    )
    db.session.add(job)
    audit.record("crawl", actor, instance=instance, at=now)
    db.session.commit()
    _submit(runner, job.id, CRAWL_INSTANCE, str(instance.uuid))
    return job.id


def run_crawl_one(app: Flask, job_id: str, instance_id: int) -> CrawlSummary:
    """Crawl one instance in this process, recording the outcome in its job."""
    _set_state(job_id, state="running", started_at=utcnow(), owner=process_owner())
    try:
        with heartbeat(job_id):
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


def fail_jobs_of(owner: str, error: str) -> int:
    """End the active jobs of process ``owner`` as failed (it is stopping); return how many."""
    c = jobs.c
    with db.engine.begin() as conn:
        ended = conn.execute(
            sa.update(jobs)
            .where(c.owner == owner, c.state.in_(ACTIVE_STATES))
            .values(state="failed", finished_at=utcnow(), error=error[:500])
        )
    return ended.rowcount


def _set_state(job_id: str, **values: Any) -> None:
    def write() -> None:
        with db.engine.begin() as conn:
            conn.execute(sa.update(jobs).where(jobs.c.id == job_id).values(**values))

    # a job's state must land even across a database restart, or the job would look alive
    retrying(write, what=f"crawl job {job_id}")()


def _stoppable(progress: Progress | None, stopping: threading.Event) -> Progress:
    """Progress that ends the crawl when its runner is asked to stop (between batches)."""

    def update(done: int, outcome: BatchOutcome) -> None:
        if progress is not None:
            progress(done, outcome)
        if stopping.is_set():
            raise CrawlInterruptedError(INTERRUPTED)

    return update


def run_crawl_all(app: Flask, job_id: str, progress: Progress | None = None) -> CrawlSummary:
    """Crawl every enabled instance in this process, recording progress in the job.

    Interrupted (its runner's ``stopping``), the crawl stops after the batches already handed
    to the writer are stored; the job ends failed with `INTERRUPTED`, its counts exact.
    """
    with app.app_context():
        total = retrying(count_enabled, what="counting instances")(db.engine)
        owner = process_owner()
        _set_state(job_id, state="running", started_at=utcnow(), total=total, owner=owner)
        try:
            stopping = services(app).runner.stopping
            summary = crawl(
                app,
                job_id=job_id,
                progress=_stoppable(progress, stopping),
                alongside=heartbeat(job_id),  # once its writer has forked: see crawl
            )
        except CrawlInterruptedError:
            log.warning("Crawl %s interrupted: the process is stopping", job_id)
            fail_job(job_id, INTERRUPTED)
            raise
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
    if end_if_dead(job):
        db.session.refresh(job)
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
