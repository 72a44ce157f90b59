"""Background work, one call: ``runner.submit(task_name, **kwargs)``.

Two implementations, chosen once in ``create_app``: `CeleryRunner` (``CELERY_BROKER_URL``
set: ``send_task`` to the workers) and `ThreadRunner` (the embedded worker thread of
``cephalopod run``). Both look the name up in the same task registry (`TaskRegistry`: task
name → function of the app and keyword arguments, see `cephalopod.crawler.tasks`), so domain
code names work and never knows where it runs.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from flask import Flask

if TYPE_CHECKING:  # Celery is imported only when a broker is configured
    from celery import Celery

log = logging.getLogger(__name__)

#: A task: called with the app and the keyword arguments it was submitted with.
Task = Callable[..., Any]
TaskRegistry = Mapping[str, Task]


class Runner(Protocol):
    """Where background work runs."""

    #: True when submitted work is shared by many worker processes (a crawl fans out)
    distributed: bool

    def submit(self, task: str, *args: Any, **kwargs: Any) -> None:
        """Run the named task with these arguments, later, elsewhere."""

    def stop(self) -> None:
        """Stop taking work (the embedded thread ends after its current task)."""


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

    def submit(self, task: str, *args: Any, **kwargs: Any) -> None:
        """Queue the task; the thread starts on first use."""
        func = self._tasks[task]  # an unknown name fails here, in the caller
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="cephalopod-worker", daemon=True
                )
                self._thread.start()
        self._queue.put((func, args, kwargs))

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

    def stop(self) -> None:
        """Let the thread end after the current task."""
        self._queue.put(None)


class CeleryRunner:
    """Tasks sent to Celery workers by name."""

    distributed = True

    def __init__(self, celery: Celery) -> None:
        self.celery = celery

    def submit(self, task: str, *args: Any, **kwargs: Any) -> None:
        """Send the task to the broker."""
        self.celery.send_task(task, args=args, kwargs=kwargs)

    def stop(self) -> None:
        """Nothing runs here."""


def create_runner(app: Flask, tasks: TaskRegistry) -> Runner:
    """Return the runner the settings ask for: Celery with a broker, else the thread."""
    if not app.config.get("CELERY_BROKER_URL"):
        return ThreadRunner(app, tasks)
    # here and not at the top: Celery costs a fifth of a second to import, for nothing
    # in every command and process without a broker
    from cephalopod.celery_app import create_celery

    return CeleryRunner(create_celery(app, tasks))
