"""Celery: the app, a Flask-aware task base, and beat's schedule from CELERYBEAT_SCHEDULE.

Production layout: PostgreSQL, Redis as broker, N workers (``cephalopod runworker``) on any
machines, and exactly one beat (``cephalopod runworker --beat`` on one of them). The
``celery`` command works too: ``celery -A cephalopod.worker:celery_app worker``.
"""

from __future__ import annotations

from typing import Any

from celery import Celery, Task
from flask import Flask

from cephalopod.schedule import periodic_jobs


def create_celery(app: Flask) -> Celery:
    """Build the Celery app of a Flask app: every task runs inside an app context."""

    class FlaskTask(Task):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery = Celery(app.import_name, task_cls=FlaskTask)
    celery.conf.update(
        broker_url=app.config["CELERY_BROKER_URL"],
        result_backend=app.config.get("CELERY_RESULT_BACKEND"),
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        timezone="UTC",
        beat_schedule={
            job.name: {"task": job.task, "schedule": job.schedule, "args": job.args}
            for job in periodic_jobs(app.config)
        },
    )
    celery.set_default()
    import cephalopod.crawler.tasks  # noqa: F401 - registers the tasks on this app

    celery.flask_app = app  # type: ignore[attr-defined]
    app.extensions["celery"] = celery
    return celery


def celery_for(app: Flask) -> Celery:
    """Return the app's Celery app, created on first use."""
    return app.extensions.get("celery") or create_celery(app)


def __getattr__(name: str) -> Any:
    """``celery -A cephalopod.worker:celery_app``: build the app from the settings on demand."""
    if name == "celery_app":
        from cephalopod.app import create_app

        return celery_for(create_app())
    raise AttributeError(name)
