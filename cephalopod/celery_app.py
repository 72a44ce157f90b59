"""Celery: the app of a Flask app, a Flask-aware task base, beat's schedule, the tasks.

Production layout (README, "Production guide"; deploy/systemd): PostgreSQL, Redis as broker,
N workers (``celery --app cephalopod.worker:celery_app worker``, or ``cephalopod runworker
--no-beat``) on any machines, and exactly one beat (``celery ... beat``). The
tasks are the ones of the shared registry (`cephalopod.background`), by the same names.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import kombu.exceptions
import redis.exceptions
from celery import Celery, Task
from celery.signals import setup_logging
from flask import Flask

from cephalopod.schedule import periodic_jobs

if TYPE_CHECKING:  # a type only: background imports this module when a broker is set
    from cephalopod.background import TaskRegistry

#: What sending a task raises when the broker is down or unreachable (after kombu's retries).
BROKER_ERRORS: tuple[type[BaseException], ...] = (
    kombu.exceptions.OperationalError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    ConnectionError,
    TimeoutError,
)
#: Redis transport defaults: a broker that does not answer fails a send in seconds, so a
#: request asking for a crawl gets its 503 instead of hanging.
TRANSPORT_DEFAULTS = {"socket_connect_timeout": 3}
#: Sending retries briefly (a broker restarting), then gives up.
PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5, "interval_max": 1}


class FlaskCelery(Celery[Task[Any, Any]]):
    """A Celery app that knows its Flask app (``flask_app``, say in a worker's shell)."""

    flask_app: Flask


def create_celery(app: Flask, tasks: TaskRegistry) -> FlaskCelery:
    """Build the Celery app of a Flask app: every task runs inside an app context."""

    class FlaskTask(Task[Any, Any]):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery = FlaskCelery(app.import_name, task_cls=FlaskTask, set_as_current=False)
    celery.conf.update(
        broker_url=app.config["CELERY_BROKER_URL"],
        result_backend=app.config.get("CELERY_RESULT_BACKEND"),
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            **TRANSPORT_DEFAULTS,
            **(app.config.get("CELERY_BROKER_TRANSPORT_OPTIONS") or {}),
        },
        task_publish_retry_policy=PUBLISH_RETRY,
        timezone="UTC",
        beat_schedule={
            job.name: {"task": job.task, "schedule": job.schedule, "args": job.args}
            for job in periodic_jobs(app.config)
        },
    )
    for name, func in tasks.items():
        celery.task(name=name, shared=False)(_bind(app, func))
    celery.flask_app = app
    return celery


def _bind(app: Flask, func: Any) -> Any:
    def run(*args: Any, **kwargs: Any) -> Any:
        return func(app, *args, **kwargs)

    run.__name__ = run.__qualname__ = func.__name__
    run.__doc__ = func.__doc__
    return run


def keep_our_logging(level: str | None = None) -> None:
    """Keep the root logger as the app configured it (LOG_FORMAT) in a worker.

    Celery configures logging itself unless something answers its ``setup_logging``
    signal; answering it leaves the app's handler in place, at ``level`` when given.
    """

    def configured(**_kwargs: Any) -> None:
        if level:
            logging.getLogger().setLevel(level)

    setup_logging.connect(configured, weak=False, dispatch_uid="cephalopod-logging")
