"""The WSGI entry point for a pre-forking server: ``gunicorn cephalopod.wsgi:app``.

Each worker process builds its own app (do not ``--preload``: a database pool must not be
shared across a fork). The settings come from ``CEPHALOPOD_SETTINGS`` as for every command.
Under several processes, keep the rate-limit counters in Redis (``RATELIMIT_STORAGE_URI``)
and crawl with Celery workers (``CELERY_BROKER_URL``): the embedded scheduler runs in
``cephalopod run`` only.
"""

from __future__ import annotations

from cephalopod.app import create_app

app = create_app()
