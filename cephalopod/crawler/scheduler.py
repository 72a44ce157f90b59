"""The embedded scheduler: the same schedule as Celery beat, in a thread of ``cephalopod run``.

One scheduler thread wakes when a periodic job is due and submits its task to the app's
runner (`cephalopod.background`: the embedded worker thread, which runs work one item at a
time, so crawls never overlap in the process). A periodic crawl of all that finds one
running is skipped, with a log line that says so (`cephalopod.crawler.tasks.crawl_all`).
Last run times live in the database (``meta``), so a restart does not re-crawl at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from flask import Flask

from cephalopod.background import Runner
from cephalopod.db import Meta, db, utcnow
from cephalopod.schedule import Periodic
from cephalopod.services import services

log = logging.getLogger(__name__)

MAX_SLEEP = 60.0


def last_run(name: str) -> datetime | None:
    """When the periodic job ``name`` last ran (None: never), in the current app context.

    Read from ``meta``, where the scheduler records each run before it submits the task.
    """
    meta = db.session.get(Meta, f"last_run:{name}")
    return datetime.fromisoformat(meta.value) if meta else None


def next_run(job: Periodic, now: datetime) -> datetime:
    """When the periodic ``job`` is next due (``now`` when it is due already)."""
    return now + timedelta(seconds=job.seconds_until_due(last_run(job.name), now))


def _last_run(app: Flask, name: str) -> datetime | None:
    with app.app_context():
        return last_run(name)


def _record_run(app: Flask, name: str, when: datetime) -> None:
    with app.app_context():
        db.session.merge(Meta(key=f"last_run:{name}", value=when.isoformat()))
        db.session.commit()


def run_periodic(runner: Runner, job: Periodic) -> None:
    """Submit one periodic job's task with its arguments."""
    runner.submit(job.task, *job.args)


def _scheduler_loop(
    app: Flask, runner: Runner, periodic: Sequence[Periodic], stop: threading.Event
) -> None:
    while not stop.is_set():
        wait = MAX_SLEEP
        for job in periodic:
            try:
                now = utcnow()
                due_in = job.seconds_until_due(_last_run(app, job.name), now)
                if due_in <= 0:
                    _record_run(app, job.name, now)
                    log.info("Running periodic job %s (%s)", job.name, job.task)
                    run_periodic(runner, job)
                    due_in = job.seconds_until_due(now, now)
                wait = min(wait, max(due_in, 1.0))
            except Exception:  # the database may be briefly unavailable: try again later
                log.exception("Periodic job %s could not be started", job.name)
        stop.wait(wait)


def start_embedded_scheduler(app: Flask) -> Callable[[float], bool]:
    """Start the scheduler thread; return a function that stops it (and the worker thread).

    The function waits up to its argument's seconds for the work in flight to end (a crawl
    stops at its next batch) and returns whether it did.
    """
    svc = services(app)
    stop = threading.Event()
    thread = threading.Thread(
        target=_scheduler_loop,
        args=(app, svc.runner, svc.settings.schedule, stop),
        name="cephalopod-scheduler",
        daemon=True,
    )
    thread.start()
    log.info("In-process scheduler started (no CELERY_BROKER_URL)")

    def stopper(grace: float = 0.0) -> bool:
        stop.set()
        return svc.runner.stop(grace)

    return stopper
