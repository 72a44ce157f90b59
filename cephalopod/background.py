"""Background work, one call: ``runner.submit(task_name, **kwargs)``.

Two implementations, chosen once in ``create_app``: `CeleryRunner` (``CELERY_BROKER_URL``
set: ``send_task`` to the workers) and `ThreadRunner` (the embedded worker thread of
``cephalopod run``). Both look the name up in the same task registry (`TaskRegistry`: task
name → function of the app and keyword arguments, see `cephalopod.crawler.tasks`), so domain
code names work and never knows where it runs.

When the process is asked to stop (SIGTERM to ``cephalopod run``), `ThreadRunner.stop` sets
the runner's ``stopping``: a crawl running in its thread checks it between batches, stores
what it has fetched and ends its job as interrupted, within the grace period. A submit the
broker cannot take raises `QueueUnavailableError` (the API answers 503).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from flask import Flask

if TYPE_CHECKING:  # Celery is imported only when a broker is configured
    from celery import Celery

log = logging.getLogger(__name__)

#: A task: called with the app and the keyword arguments it was submitted with.
Task = Callable[..., Any]
TaskRegistry = Mapping[str, Task]


class QueueUnavailableError(Exception):
    """The broker did not take the task (down, unreachable): nothing was submitted."""


class Runner(Protocol):
    """Where background work runs."""

    #: True when submitted work is shared by many worker processes (a crawl fans out)
    distributed: bool
    #: Set when the runner is stopping: long work (a crawl) ends early, at a safe point
    stopping: threading.Event

    def submit(self, task: str, *args: Any, **kwargs: Any) -> None:
        """Run the named task with these arguments, later, elsewhere."""

    def submit_later(self, delay: float, task: str, *args: Any, **kwargs: Any) -> None:
        """Like `submit`, not before ``delay`` seconds (a retry's backoff)."""

    def stop(self, grace: float = 0.0) -> bool:
        """Stop taking work; wait up to ``grace`` seconds for work in flight; True if none is."""


class ThreadRunner:
    """One daemon thread running submitted tasks one after another (crawls never overlap)."""

    distributed = False

    def __init__(self, app: Flask, tasks: TaskRegistry) -> None:
        self._app = app
        self._tasks = tasks
        self._queue: queue.Queue[tuple[Task, tuple[Any, ...], dict[str, Any]] | None] = (
            queue.Queue()
        )
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        #: the keyword arguments of the tasks `stop` dropped (their jobs end as not run)
        self.dropped: list[dict[str, Any]] = []
        self.stopping = threading.Event()
        #: the `submit_later` timers not fired yet, with their tasks: `stop` cancels them
        self._timers: dict[threading.Timer, tuple[Task, tuple[Any, ...], dict[str, Any]]] = {}

    def submit(self, task: str, *args: Any, **kwargs: Any) -> None:
        """Queue the task; the thread starts on first use. Once stopped, it is dropped."""
        func = self._tasks[task]  # an unknown name fails here, in the caller
        with self._lock:
            if self.stopping.is_set():
                # the thread would start again after the process's shutdown, on an app
                # whose engine is disposed (a mail retry's timer fired on a dying process)
                self._drop([(func, args, kwargs)])
                return
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="cephalopod-worker", daemon=True
                )
                self._thread.start()
        self._queue.put((func, args, kwargs))

    def submit_later(self, delay: float, task: str, *args: Any, **kwargs: Any) -> None:
        """Queue the task after ``delay`` seconds; meanwhile the thread goes on with others."""
        item = (self._tasks[task], args, kwargs)  # an unknown name fails here, in the caller

        def fire() -> None:
            with self._lock:
                self._timers.pop(timer, None)
            self.submit(task, *args, **kwargs)

        timer = threading.Timer(delay, fire)
        timer.daemon = True
        with self._lock:
            if self.stopping.is_set():
                self._drop([item])
                return
            self._timers[timer] = item
        timer.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            func, args, kwargs = item
            try:
                with self._app.app_context():
                    func(self._app, *args, **kwargs)
            except Exception:
                log.exception("Background work %s failed", getattr(func, "__name__", func))
            finally:
                self._queue.task_done()

    def join(self, timeout: float | None = None) -> bool:
        """Wait until the queue is empty (for tests and shutdown); True when it is."""
        done = threading.Event()

        def wait_for_the_queue() -> None:
            self._queue.join()
            done.set()

        threading.Thread(target=wait_for_the_queue, daemon=True).start()
        return done.wait(timeout)

    def stop(self, grace: float = 0.0) -> bool:
        """End the thread: tasks not started (queued, or waiting for their delay) and any
        submitted from now on are dropped, the current one is asked to stop.

        Returns whether the thread ended within ``grace`` seconds (a crawl stops at its next
        batch; one stuck on slow instances may need longer, and is then left behind).
        """
        self.stopping.set()
        with self._lock:
            dropped: list[tuple[Task, tuple[Any, ...], dict[str, Any]]] = []
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    dropped.append(item)
                self._queue.task_done()
            for timer, item in self._timers.items():
                timer.cancel()
                dropped.append(item)
            self._timers.clear()
            self._queue.put(None)
            thread = self._thread
            self._drop(dropped)
        if thread is None:
            return True
        thread.join(grace)
        return not thread.is_alive()

    def _drop(self, items: Sequence[tuple[Task, tuple[Any, ...], dict[str, Any]]]) -> None:
        """Log the tasks that will not run; keep their keyword arguments in `dropped`."""
        for func, _args, kwargs in items:
            log.info("Not started, the process stops: %s %s", func.__name__, kwargs)
        self.dropped += [kwargs for _func, _args, kwargs in items]


class CeleryRunner:
    """Tasks sent to Celery workers by name."""

    distributed = True

    def __init__(self, celery: Celery, broker_errors: Sequence[type[BaseException]]) -> None:
        self.celery = celery
        self._broker_errors = tuple(broker_errors)
        #: never set: a worker's warm shutdown lets its tasks finish (Celery's own)
        self.stopping = threading.Event()

    def submit(self, task: str, *args: Any, **kwargs: Any) -> None:
        """Send the task to the broker; `QueueUnavailableError` when it cannot take it."""
        try:
            self.celery.send_task(task, args=args, kwargs=kwargs)
        except self._broker_errors as exc:
            raise QueueUnavailableError(f"the broker did not take {task}: {exc}") from exc

    def submit_later(self, delay: float, task: str, *args: Any, **kwargs: Any) -> None:
        """Send the task for a worker to run ``delay`` seconds from now."""
        try:
            self.celery.send_task(task, args=args, kwargs=kwargs, countdown=delay)
        except self._broker_errors as exc:
            raise QueueUnavailableError(f"the broker did not take {task}: {exc}") from exc

    def stop(self, grace: float = 0.0) -> bool:
        """Nothing runs here."""
        return True


def create_runner(app: Flask, tasks: TaskRegistry) -> Runner:
    """Return the runner the settings ask for: Celery with a broker, else the thread."""
    if not app.config.get("CELERY_BROKER_URL"):
        return ThreadRunner(app, tasks)
    # here and not at the top: Celery costs a fifth of a second to import, for nothing
    # in every command and process without a broker
    from cephalopod.celery_app import BROKER_ERRORS, create_celery

    return CeleryRunner(create_celery(app, tasks), BROKER_ERRORS)
