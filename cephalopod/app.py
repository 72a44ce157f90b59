"""Application factory: the extensions in one visible order."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask
from flask.json.provider import DefaultJSONProvider
from flask_babel import format_datetime
from sqlalchemy import event
from werkzeug.middleware.proxy_fix import ProxyFix

import cephalopod.models  # noqa: F401 - every table on the metadata
from cephalopod import security
from cephalopod import settings as settings_mod
from cephalopod.admin.api import bp as admin_bp
from cephalopod.admin.openapi import bp as openapi_bp
from cephalopod.admin.views import bp as admin_views_bp
from cephalopod.auth.views import bp as auth_bp
from cephalopod.background import create_runner
from cephalopod.crawler.tasks import TASKS
from cephalopod.db import (
    check_connections_on_checkout,
    close_sessions_safely,
    db,
    engine_options,
    sqlite_pragmas,
)
from cephalopod.errors import register_error_handlers
from cephalopod.extensions import babel, csrf, limiter, login_manager, migrate
from cephalopod.geo.locate import GeoLocator
from cephalopod.instances.api import bp as instances_bp
from cephalopod.schema import MIGRATIONS_DIR
from cephalopod.services import EXTENSION, Services, Settings
from cephalopod.stats.cache import StatsCache, connect_signals
from cephalopod.stats.fields import FieldRegistry
from cephalopod.stats.public import bp as public_bp

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024


def create_app(
    settings_file: str | Path | None = None, overrides: Mapping[str, Any] | None = None
) -> Flask:
    """Build the app from the settings file (found as documented) plus ``overrides``."""
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
    if app.config["USE_PROXY"]:
        # Flask's documented way to add WSGI middleware is to replace this method
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)  # type: ignore[method-assign]

    _init_database(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR), render_as_batch=True)
    babel.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)
    # its before_request hook checks application-wide limits, and there are none: each
    # limit is a decorator that its view's wrapper checks. Measured: 14 % of a request.
    hooks = app.before_request_funcs.get(None, [])
    if not app.config.get("RATELIMIT_DEFAULT") and not app.config.get("RATELIMIT_APPLICATION"):
        hooks[:] = [hook for hook in hooks if hook != limiter._check_request_limit]
    login_manager.init_app(app)
    register_error_handlers(app)
    _init_services(app, registry)
    security.init_app(app)  # CSP, nosniff, Referrer-Policy, frame protection on every response
    _register_blueprints(app)
    _register_template_helpers(app)
    connect_signals()
    return app


class OrderedJSONProvider(DefaultJSONProvider):
    """Flask's JSON, keys in the order given: the replies' key order is a contract."""

    sort_keys = False


def _init_services(app: Flask, registry: FieldRegistry) -> None:
    """Build the long-lived objects once; everything else is handed them (`services`)."""
    settings = Settings.from_config(app.config, registry, app.instance_path)
    app.extensions[EXTENSION] = Services(
        settings=settings,
        runner=create_runner(app, TASKS),
        geolocator=GeoLocator.from_config(settings.crawl.geoip_database, settings.crawl.geoip_dir),
        stats_cache=StatsCache(),
    )


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


def _register_blueprints(app: Flask) -> None:
    app.register_blueprint(instances_bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(admin_views_bp)  # the admin web interface
    app.register_blueprint(public_bp)
    app.register_blueprint(openapi_bp)
    csrf.exempt(instances_bp)
    csrf.exempt(admin_bp)  # checked in its authenticate(), unless a token authenticated it
    csrf.exempt(public_bp)
    csrf.exempt(openapi_bp)


def _register_template_helpers(app: Flask) -> None:
    @app.context_processor
    def inject_globals() -> dict[str, Any]:
        return {"app_name": app.config["APP_NAME"]}

    app.jinja_env.filters["datetime"] = format_datetime
