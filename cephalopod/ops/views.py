"""The operations endpoints, outside the API and the web interface:

GET /healthz   200 {"status": "ok", "checks": {...}} or 503 naming the failed parts;
               no login (a load balancer polls it), no personal data
GET /metrics   Prometheus' text format; from an address in METRICS_ALLOWED_NETWORKS
               or with ``Authorization: Bearer <API token>``
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from cephalopod.ops.health import report
from cephalopod.services import services

bp = Blueprint("ops", __name__)

NO_STORE = {"Cache-Control": "no-store"}


@bp.get("/healthz")
def healthz() -> tuple[Response, int, dict[str, str]]:
    """Check the database (and the broker) now."""
    body, status = report(services().health.check())
    return jsonify(body), status, NO_STORE
