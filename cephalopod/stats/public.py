"""Public statistics: with ``PUBLIC_STATISTICS = True``, the aggregates without login.

    GET /api/statistics   the admin statistics' counts, countries, registrations and charts

Only aggregates leave: counts per country (no coordinates) and the configured charts, whose
categories are display values of crawled fields, never an instance's URL, name or e-mail.
Off by default: the route answers 404 then, as if it did not exist.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request

from cephalopod.errors import ApiError

bp = Blueprint("public_stats", __name__)


@bp.get("/api/statistics")
def public_statistics() -> Response:
    """Return the aggregate statistics when the settings make them public."""
    from cephalopod.admin.api import statistics_reply
    from cephalopod.admin.listing import choice, reject_unknown
    from cephalopod.stats.queries import STATUSES

    if not current_app.config["PUBLIC_STATISTICS"]:
        raise ApiError("Not found", 404)
    reject_unknown(request.args, ("status",))
    status = choice(request.args, "status", STATUSES, "enabled")
    response = jsonify(statistics_reply(status))
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response
