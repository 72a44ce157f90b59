"""The ``celery -A cephalopod.worker:celery_app`` entry point (as in Flask's Celery example).

The app is built from the settings (``CEPHALOPOD_SETTINGS``...) when Celery asks for it;
``cephalopod runworker`` uses the Celery app of its own Flask app the same way.
"""

from __future__ import annotations

from typing import Any

from cephalopod.app import create_app
from cephalopod.background import CeleryRunner
from cephalopod.celery_app import keep_our_logging
from cephalopod.services import services


def __getattr__(name: str) -> Any:
    """Build the Flask app, and so its Celery app, on first access (not on import)."""
    if name == "celery_app":
        runner = services(create_app()).runner
        if not isinstance(runner, CeleryRunner):
            raise RuntimeError("CELERY_BROKER_URL is not set: there is no Celery app")
        keep_our_logging()  # the app's LOG_FORMAT and LOG_LEVEL, not Celery's own
        return runner.celery
    raise AttributeError(name)
