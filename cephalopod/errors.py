"""The one JSON error shape of ``/api/*``: ``{"error": "<human message>", ...}``.

Every 4xx and 5xx under ``/api/`` goes through here, so no client ever sees an HTML page
or a stack trace. Pages outside the API get a small HTML error page instead.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify, render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError

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
}


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


def _handle_unexpected(exc: Exception) -> Response | tuple[str, int]:
    log.exception("Unhandled error on %s %s", request.method, request.path)
    return _handle_http(InternalServerError())


def register_error_handlers(app: Flask) -> None:
    """Answer every error in the shape the request's audience expects."""
    app.register_error_handler(ApiError, _handle_api_error)
    app.register_error_handler(HTTPException, _handle_http)
    app.register_error_handler(Exception, _handle_unexpected)
