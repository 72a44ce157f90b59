"""The one JSON error shape of ``/api/*``: ``{"error": "<human message>", ...}``.

Every 4xx and 5xx under ``/api/`` goes through here, so no client ever sees an HTML page
or a stack trace. Pages outside the API get a small HTML error page instead. A part that is
down answers 503 with ``Retry-After``, not 500: the database (restarting, unreachable) or the
task queue (the broker, for "crawl all" and "crawl now").
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from flask import Flask, Response, g, jsonify, render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError

from cephalopod.background import QueueUnavailableError
from cephalopod.db import UNAVAILABLE, db, is_unavailable
from cephalopod.extensions import login_manager

log = logging.getLogger(__name__)

API_PREFIXES = ("/api/", "/instance/")
#: The prefixes without their slash (``POST /instance`` is a registration too).
API_ROOTS = ("/api", "/instance")


class ApiError(Exception):
    """An error a view raises to answer with ``status`` and the JSON ``error`` shape."""

    def __init__(self, message: str, /, status: int = 400, **extra: Any) -> None:
        # ``message`` is positional-only so that ``extra`` may carry a ``message`` field too
        super().__init__(message)
        self.message = message
        self.status = status
        self.extra = extra


def json_error(message: str, /, status: int, **extra: Any) -> Response:
    """Build the JSON error response every API error uses."""
    response = jsonify({"error": message, **extra})
    response.status_code = status
    return response


def is_api_request() -> bool:
    """Tell whether the current request belongs to a JSON API (and must get JSON errors)."""
    # not a bare startswith("/instance"): pages such as /instances/... are HTML
    return request.path.startswith(API_PREFIXES) or request.path in API_ROOTS


_MESSAGES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    413: "Request body too large (the limit is 64 KiB)",
    415: "Unsupported media type",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}
#: Seconds a client is told to wait when a part is down (a restart takes a few).
RETRY_AFTER = 5
DATABASE_DOWN = "The database is unavailable; try again shortly"
QUEUE_DOWN = "The task queue is unavailable; nothing was started, try again shortly"


def _handle_http(exc: HTTPException) -> Response | tuple[str, int]:
    status = exc.code or 500
    if is_api_request():
        message = _MESSAGES.get(status, exc.name)
        if status == 429:
            message = f"Too many requests: limit is {exc.description}"
        elif status in (400, 404) and exc.description and exc.description != type(exc).description:
            message = exc.description
        response = json_error(message, status)
        if status == 405 and hasattr(exc, "valid_methods") and exc.valid_methods:
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        headers = exc.get_headers()
        for name, value in headers:
            if name.lower() in ("retry-after", "www-authenticate", "allow"):
                response.headers[name] = value
        return response
    return render_template(
        "error.html", status=status, title=_MESSAGES.get(status, exc.name)
    ), status


def _handle_api_error(exc: ApiError) -> Response:
    return json_error(exc.message, exc.status, **exc.extra)


def _unavailable(message: str) -> Response | tuple[str, int]:
    if is_api_request():
        response = json_error(message, 503)
    else:
        html = render_template("error.html", status=503, title=_MESSAGES[503], message=message)
        response = Response(html, 503, mimetype="text/html")
    response.headers["Retry-After"] = str(RETRY_AFTER)
    return response


def _handle_database_error(exc: Exception) -> Response | tuple[str, int]:
    if not is_unavailable(exc):
        return _handle_unexpected(exc)
    # one line, no traceback: an outage sends every request here, and the cause is outside
    cause = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    log.warning("%s %s: database unavailable: %s", request.method, request.path, cause[:1])
    with contextlib.suppress(*UNAVAILABLE):
        db.session.rollback()  # the session's connection is gone
    # the page's navigation asks who is logged in: not the database again, it is down
    g._login_user = login_manager.anonymous_user()
    return _unavailable(DATABASE_DOWN)


def _handle_queue_down(exc: QueueUnavailableError) -> Response | tuple[str, int]:
    log.warning("%s %s: %s", request.method, request.path, exc)
    return _unavailable(QUEUE_DOWN)


def _handle_unexpected(exc: Exception) -> Response | tuple[str, int]:
    log.exception("Unhandled error on %s %s", request.method, request.path)
    return _handle_http(InternalServerError())


def register_error_handlers(app: Flask) -> None:
    """Answer every error in the shape the request's audience expects."""
    app.register_error_handler(ApiError, _handle_api_error)
    for error in UNAVAILABLE:
        app.register_error_handler(error, _handle_database_error)
    app.register_error_handler(QueueUnavailableError, _handle_queue_down)
    app.register_error_handler(HTTPException, _handle_http)
    app.register_error_handler(Exception, _handle_unexpected)
