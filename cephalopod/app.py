"""Application factory: the extensions in one visible order.

The web stack (`cephalopod.web`: blueprints, logins, CSRF, rate limits, translations) is
left out of an app made with ``web=False``, for commands that serve no request.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask
from flask.json.provider import DefaultJSONProvider
from sqlalchemy import event

import cephalopod.models  # noqa: F401 - every table on the metadata
from cephalopod import settings as settings_mod
from cephalopod.audit.tasks import TASKS as AUDIT_TASKS
from cephalopod.background import create_runner
from cephalopod.crawler.tasks import TASKS as CRAWL_TASKS
from cephalopod.db import (
    check_connections_on_checkout,
    close_sessions_safely,
    db,
    engine_options,
    sqlite_pragmas,
)
from cephalopod.geo.locate import GeoLocator
from cephalopod.notify import tasks as notify_tasks
from cephalopod.ops import logs as ops_logs
from cephalopod.ops import metrics as ops_metrics
from cephalopod.ops.health import Health
from cephalopod.schema import init_migrations
from cephalopod.services import EXTENSION, Services, Settings
from cephalopod.stats.cache import StatsCache, connect_signals
from cephalopod.stats.fields import FieldRegistry

log = logging.getLogger(__name__)

#: Every background task, by name, for both runners.
TASKS = {**CRAWL_TASKS, **notify_tasks.TASKS, **AUDIT_TASKS}

MAX_BODY_BYTES = 64 * 1024


def create_app(
    settings_file: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    web: bool = True,
) -> Flask:
    """Build the app from the settings file (found as documented) plus ``overrides``.

    ``web=False`` builds the database, the services and the signals alone, without what
    serving requests needs (see `cephalopod.web`): the ``crawl`` command starts that much
    sooner (the web stack's imports and Flask-Migrate's Alembic cost it about half a second).
    Flask-Migrate is then set up only when the schema needs Alembic (`cephalopod.schema`).
    """
    folder = settings_mod.instance_path()
    config, registry = settings_mod.load(
        Path(settings_file) if settings_file else None, overrides=overrides
    )
    app = Flask(__name__, instance_path=str(folder), instance_relative_config=False)
    app.config.update(config)
    # Flask's own default is None (no limit), so setdefault would never apply ours
    app.config["MAX_CONTENT_LENGTH"] = config.get("MAX_CONTENT_LENGTH") or MAX_BODY_BYTES
    if not app.config["SQLALCHEMY_DATABASE_URI"]:
        folder.mkdir(parents=True, exist_ok=True)
        app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{folder / 'cephalopod.db'}"
    _init_logging(app.config)  # before the first line logged with the settings known
    settings_mod.ensure_secret_key(app.config, folder)
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        RATELIMIT_STORAGE_URI=app.config["RATELIMIT_STORAGE_URI"],
        RATELIMIT_HEADERS_ENABLED=True,
        # explicit per app: the shared Limiter would otherwise keep a previous app's False
        RATELIMIT_ENABLED=app.config.get("RATELIMIT_ENABLED", True),
        # a rate-limit store that is down (Redis) must not take registrations down with it:
        # limits are then counted in this process's memory until it is back (README)
        RATELIMIT_IN_MEMORY_FALLBACK_ENABLED=app.config.get(
            "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True
        ),
        WTF_CSRF_TIME_LIMIT=None,
        JSON_SORT_KEYS=False,
    )
    if app.config["RATELIMIT_STORAGE_URI"].startswith(("redis://", "rediss://")):
        # a store that does not answer costs each request a second, not a hang
        app.config.setdefault(
            "RATELIMIT_STORAGE_OPTIONS", {"socket_connect_timeout": 1, "socket_timeout": 1}
        )
    if app.config["SSL_CERT"]:
        app.config["SESSION_COOKIE_SECURE"] = True
        app.config["REMEMBER_COOKIE_SECURE"] = True
    app.json = OrderedJSONProvider(app)

    _init_database(app)
    if not web:
        _init_services(app, registry)
        _init_logging(app.config)  # again: the secret key may have just been generated
        _connect_signals()
        return app
    # here, not at the top: an app without the web stack skips its imports (see above)
    from cephalopod import web as web_stack

    init_migrations(app)
    web_stack.init_extensions(app)
    _init_services(app, registry)
    _init_logging(app.config)  # again: the secret key may have just been generated
    web_stack.init_views(app)
    _connect_signals()
    return app


def _connect_signals() -> None:
    """What listens to the instances' changes: the statistics cache, the metrics, the mail."""
    connect_signals()
    ops_metrics.connect_signals()
    notify_tasks.connect_signals()


class OrderedJSONProvider(DefaultJSONProvider):
    """Flask's JSON, keys in the order given: the replies' key order is a contract."""

    sort_keys = False


def _init_services(app: Flask, registry: FieldRegistry) -> None:
    """Build the long-lived objects once; everything else is handed them (`services`)."""
    settings = Settings.from_config(app.config, registry, app.instance_path)
    app.extensions[EXTENSION] = Services(
        settings=settings,
        runner=create_runner(app, TASKS),  # one registry: the crawler's and the mail's
        geolocator=GeoLocator.from_config(settings.crawl.geoip_database, settings.crawl.geoip_dir),
        stats_cache=StatsCache(),
        health=Health.for_app(lambda: db.engine, settings.broker_url),
        metrics=ops_metrics.Metrics.from_environment(),
    )


def _init_logging(config: Mapping[str, Any]) -> None:
    """Configure the root logger from the settings, unless the host process did its own."""
    if ops_logs.configured_by_us():
        secrets = ops_logs.secrets_of(config)
        ops_logs.configure_logging(config["LOG_LEVEL"], config["LOG_FORMAT"], secrets)


def _init_database(app: Flask) -> None:
    uri: str = app.config["SQLALCHEMY_DATABASE_URI"]
    options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    if uri.startswith("postgresql://"):
        # the psycopg (3) driver is the one installed; accept the short form too
        uri = "postgresql+psycopg://" + uri.removeprefix("postgresql://")
        app.config["SQLALCHEMY_DATABASE_URI"] = uri
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = engine_options(uri, options)
    db.init_app(app)
    close_sessions_safely(app)  # after init_app: it runs before Flask-SQLAlchemy's teardown
    with app.app_context():
        if uri.startswith("sqlite"):
            event.listen(db.engine, "connect", sqlite_pragmas)
        else:
            check_connections_on_checkout(db.engine)
