"""What the app does around every request for the operators: time it and count it.

The first ``before_request`` of the app (before the rate limiter and the blueprints' own),
so that every answered request is counted, refused ones included.
"""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, g, request

from cephalopod.services import services

log = logging.getLogger(__name__)

_STARTED = "cephalopod_started"


def init_app(app: Flask) -> None:
    """Register the request hooks, ahead of every other ``before_request``."""
    app.before_request_funcs.setdefault(None, []).insert(0, _start)
    app.after_request(_finish)


def _start() -> None:
    setattr(g, _STARTED, time.perf_counter())


def _finish(response: Response) -> Response:
    seconds = time.perf_counter() - g.get(_STARTED, time.perf_counter())
    endpoint = request.url_rule.endpoint if request.url_rule is not None else None
    try:
        services().metrics.http.observe(endpoint, request.method, response.status_code, seconds)
    except Exception:  # counting must never cost a reply
        log.exception("Could not count the request in the metrics")
    return response
