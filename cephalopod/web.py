"""The web stack of the app: what serving requests needs and a command such as ``crawl`` does not.

`cephalopod.app.create_app` sets it up unless asked for an app without it (``web=False``):
the blueprints, the extensions for sessions, logins, CSRF, rate limits and translations, the
error pages and the security headers, whose imports cost a command about half a second.
"""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_babel import format_datetime
from werkzeug.middleware.proxy_fix import ProxyFix

from cephalopod import security
from cephalopod.admin.api import bp as admin_bp
from cephalopod.admin.openapi import bp as openapi_bp
from cephalopod.admin.views import bp as admin_views_bp
from cephalopod.auth.views import bp as auth_bp
from cephalopod.errors import register_error_handlers
from cephalopod.extensions import babel, csrf, limiter, login_manager
from cephalopod.instances.api import bp as instances_bp
from cephalopod.ops import hooks as ops_hooks
from cephalopod.ops.views import bp as ops_bp
from cephalopod.stats.public import bp as public_bp


def init_extensions(app: Flask) -> None:
    """Set up the request-serving extensions and error pages (before the services)."""
    if app.config["USE_PROXY"]:
        # Flask's documented way to add WSGI middleware is to replace this method
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1, x_proto=1, x_host=1)  # type: ignore[method-assign]
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


def init_views(app: Flask) -> None:
    """Register the request hooks, security headers, blueprints and template helpers."""
    ops_hooks.init_app(app)  # first before every request: its timing, request id, log line
    security.init_app(app)  # CSP, nosniff, Referrer-Policy, frame protection on every response
    _register_blueprints(app)
    _register_template_helpers(app)


def _register_blueprints(app: Flask) -> None:
    app.register_blueprint(instances_bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(admin_views_bp)  # the admin web interface
    app.register_blueprint(public_bp)
    app.register_blueprint(openapi_bp)
    app.register_blueprint(ops_bp)  # /healthz, /metrics
    csrf.exempt(instances_bp)
    csrf.exempt(admin_bp)  # checked in its authenticate(), unless a token authenticated it
    csrf.exempt(public_bp)
    csrf.exempt(openapi_bp)


def _register_template_helpers(app: Flask) -> None:
    @app.context_processor
    def inject_globals() -> dict[str, Any]:
        return {"app_name": app.config["APP_NAME"]}

    app.jinja_env.filters["datetime"] = format_datetime
