"""Public statistics: with ``PUBLIC_STATISTICS = True``, the aggregates without login.

    GET /api/statistics   the admin statistics' counts, countries, registrations and charts

Only aggregates leave: counts per country (no coordinates) and the configured charts, whose
categories are display values of crawled fields, never an instance's URL, name or e-mail.
Off by default: the route answers 404 then, as if it did not exist.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from cephalopod import params
from cephalopod.errors import ApiError, json_error
from cephalopod.serialize import reply
from cephalopod.services import services
from cephalopod.stats import queries
from cephalopod.stats.fields import FieldRegistry

bp = Blueprint("public_stats", __name__)


def _registry() -> FieldRegistry:
    """Return the validated CRAWLED_FIELDS_SETTINGS (the one place this module gets it from)."""
    return services().settings.fields


@bp.errorhandler(params.ParameterError)
def _invalid_parameter(exc: params.ParameterError) -> Response:
    """Answer a wrong query parameter with the JSON 400 that names it."""
    return json_error(str(exc), 400, parameter=exc.name)


@bp.get("/api/statistics")
def public_statistics() -> Response:
    """Return the aggregate statistics when the settings make them public."""
    if not current_app.config["PUBLIC_STATISTICS"]:
        raise ApiError("Not found", 404)
    status = params.statistics_status(request.args)
    response = reply(queries.cached_statistics(_registry(), status))
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response
