"""The operations endpoints, outside the API and the web interface:

GET /healthz   200 {"status": "ok", "checks": {...}} or 503 naming the failed parts;
               no login (a load balancer polls it), no personal data
GET /metrics   Prometheus' text format; from an address in METRICS_ALLOWED_NETWORKS
               or with ``Authorization: Bearer <API token>``
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from cephalopod.auth.operations import user_for_token
from cephalopod.errors import json_error
from cephalopod.ops.config import address_allowed
from cephalopod.ops.health import report
from cephalopod.services import services

bp = Blueprint("ops", __name__)

NO_STORE = {"Cache-Control": "no-store"}


@bp.get("/healthz")
def healthz() -> tuple[Response, int, dict[str, str]]:
    """Check the database (and the broker) now."""
    body, status = report(services().health.check())
    return jsonify(body), status, NO_STORE


@bp.get("/metrics")
def metrics() -> Response:
    """Serve the metrics to an allowed address or a bearer of an API token."""
    svc = services()
    if not (address_allowed(request.remote_addr, svc.settings.ops.metrics_networks) or _bearer()):
        response = json_error(
            "Authentication required: an API token (Authorization: Bearer), "
            "or a client address in METRICS_ALLOWED_NETWORKS",
            401,
        )
        response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    body, content_type = svc.metrics.exposition()
    return Response(body, content_type=content_type, headers=NO_STORE)


def _bearer() -> bool:
    """True when the request carries a valid API token."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    return scheme.lower() == "bearer" and bool(token) and user_for_token(token) is not None
