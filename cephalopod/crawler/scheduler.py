"""The embedded scheduler: the same schedule as Celery beat, in threads of ``cephalopod run``.

One worker thread runs background work one item at a time (so crawls never overlap in the
process); one scheduler thread wakes when a periodic job is due and hands it over. Last run
times live in the database (``meta``), so a restart does not re-crawl at once.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import Flask

from cephalopod.db import db, utcnow
from cephalopod.instances.models import Meta
from cephalopod.schedule import CRAWL_ALL, PRUNE_HISTORY, Periodic, periodic_jobs

log = logging.getLogger(__name__)

MAX_SLEEP = 60.0


class EmbeddedWorker:
    """A daemon thread running submitted callables one after another."""

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[Callable[..., Any], tuple[Any, ...]] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, func: Callable[..., Any], *args: Any) -> None:
        """Queue ``func(*args)``; the thread starts on first use."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="cephalopod-worker", daemon=True
                )
                self._thread.start()
        self._queue.put((func, args))

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            func, args = item
            try:
                func(*args)
            except Exception:
                log.exception("Background work %s failed", getattr(func, "__name__", func))
            finally:
                self._queue.task_done()

    def join(self, timeout: float | None = None) -> bool:
        """Wait until the queue is empty (for tests and shutdown); True when it is."""
        done = threading.Event()
        threading.Thread(target=lambda: (self._queue.join(), done.set()), daemon=True).start()
        return done.wait(timeout)

    def stop(self) -> None:
        """Let the thread end after the current item."""
        self._queue.put(None)


def embedded_worker(app: Flask) -> EmbeddedWorker:
    """Return the app's background worker, created on first use."""
    worker = app.extensions.get("cephalopod.worker")
    if worker is None:
        worker = app.extensions.setdefault("cephalopod.worker", EmbeddedWorker())
    return worker


def _last_run(app: Flask, name: str) -> datetime | None:
    with app.app_context():
        meta = db.session.get(Meta, f"last_run:{name}")
        return datetime.fromisoformat(meta.value) if meta else None


def _record_run(app: Flask, name: str, when: datetime) -> None:
    with app.app_context():
        db.session.merge(Meta(key=f"last_run:{name}", value=when.isoformat()))
        db.session.commit()


def run_periodic(app: Flask, job: Periodic) -> None:
    """Start one periodic job (crawls go to the worker thread, never twice at once)."""
    from cephalopod.crawler.jobs import active_job, prune_history, start_crawl_all

    if job.task == CRAWL_ALL:
        with app.app_context():
            running = active_job()
        if running is not None:
            log.info(
                "Periodic job %s skipped: the crawl %s (%s since %s) is still running",
                job.name,
                running.id,
                running.state,
                running.started_at or running.created_at,
            )
            return
        start_crawl_all(app)
    elif job.task == PRUNE_HISTORY:
        embedded_worker(app).submit(prune_history, app)
    else:
        log.warning("Periodic job %s: task %s runs only under Celery", job.name, job.task)


def _scheduler_loop(app: Flask, stop: threading.Event) -> None:
    periodic = periodic_jobs(app.config)
    while not stop.is_set():
        wait = MAX_SLEEP
        for job in periodic:
            try:
                now = utcnow()
                due_in = job.seconds_until_due(_last_run(app, job.name), now)
                if due_in <= 0:
                    _record_run(app, job.name, now)
                    log.info("Running periodic job %s (%s)", job.name, job.task)
                    run_periodic(app, job)
                    due_in = job.seconds_until_due(now, now)
                wait = min(wait, max(due_in, 1.0))
            except Exception:  # the database may be briefly unavailable: try again later
                log.exception("Periodic job %s could not be started", job.name)
        stop.wait(wait)


def start_embedded_scheduler(app: Flask) -> Callable[[], None]:
    """Start the scheduler thread; return a function that stops it."""
    stop = threading.Event()
    thread = threading.Thread(
        target=_scheduler_loop, args=(app, stop), name="cephalopod-scheduler", daemon=True
    )
    thread.start()
    log.info("In-process scheduler started (no CELERY_BROKER_URL)")

    def stopper() -> None:
        stop.set()
        embedded_worker(app).stop()

    return stopper
