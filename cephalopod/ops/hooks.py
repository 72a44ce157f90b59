"""What the app does around every request for its operators: time, count and log it.

The first ``before_request`` of the app (ahead of the rate limiter and the blueprints'
own), so that every answered request is counted and logged, refused ones included, each
with its request id (``X-Request-ID``: the client's or the proxy's when sane, else a new
one, sent back on the reply) and, on the routes of one instance, the instance's uuid.
"""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, g, request

from cephalopod.instances.operations import instance_registered, parse_uuid
from cephalopod.ops import logs
from cephalopod.services import services

log = logging.getLogger(__name__)
access_log = logging.getLogger("cephalopod.access")

_STARTED = "cephalopod_started"
#: Endpoints polled every few seconds: their access lines are DEBUG, not INFO.
QUIET_ENDPOINTS = frozenset({"ops.healthz", "ops.metrics", "static"})


def init_app(app: Flask) -> None:
    """Register the request hooks, ahead of every other ``before_request``."""
    app.before_request_funcs.setdefault(None, []).insert(0, _start)
    app.after_request(_finish)
    instance_registered.connect(_on_registered, weak=False)


def _start() -> None:
    setattr(g, _STARTED, time.perf_counter())
    g.request_id = logs.request_id_from(request.headers.get(logs.REQUEST_ID_HEADER))
    fields = {"request_id": g.request_id}
    view_uuid = (request.view_args or {}).get("uuid")
    if isinstance(view_uuid, str) and (parsed := parse_uuid(view_uuid)) is not None:
        fields["instance_uuid"] = str(parsed)
    logs.bind(**fields)


def _on_registered(instance: object, **_extra: object) -> None:
    """The rest of a registration's lines name the instance it created."""
    logs.bind(instance_uuid=str(getattr(instance, "uuid", "")))


def _finish(response: Response) -> Response:
    seconds = time.perf_counter() - g.get(_STARTED, time.perf_counter())
    endpoint = request.url_rule.endpoint if request.url_rule is not None else None
    if "request_id" in g:
        response.headers[logs.REQUEST_ID_HEADER] = g.request_id
    try:
        services().metrics.http.observe(endpoint, request.method, response.status_code, seconds)
    except Exception:  # counting must never cost a reply
        log.exception("Could not count the request in the metrics")
    access_log.log(
        logging.DEBUG if endpoint in QUIET_ENDPOINTS else logging.INFO,
        "%s %s %s %.1f ms",
        request.method,
        request.path,
        response.status_code,
        seconds * 1000,
        extra={
            "method": request.method,
            "path": request.path,
            "endpoint": endpoint,
            "status": response.status_code,
            "duration_ms": round(seconds * 1000, 2),
            "client": request.remote_addr,
        },
    )
    return response
