"""The admin JSON API: what the web interface draws and what scripts read.

    GET    /api/admin/instances                 the list: filters, sort, page
    GET    /api/admin/instances/<uuid>          an item with crawled_data and history
    PATCH  /api/admin/instances/<uuid>          edit url, contact, email, organization, enabled
    DELETE /api/admin/instances/<uuid>          delete it and all crawled data → 204
    POST   /api/admin/instances/<uuid>/crawl    crawl it now → the updated item (200) when the
                                                crawl ends within CRAWL_WAIT_SECONDS, else
                                                202 {"job"} to poll (Location: its progress)
    POST   /api/admin/crawl                     crawl all in the background → 202 {"job"}
    GET    /api/admin/crawl/<job>               the job's progress
    GET    /api/admin/statistics                counts, countries, registrations, charts
    GET    /api/admin/statistics/trend          a field's distribution per period
    GET    /api/admin/export                    the filtered list as CSV or JSON (streamed)
    GET    /api/admin/geolocation               locations available? why not; the data credit
    GET    /api/admin/audit                     the audit log: filters, page (newest first)

Authentication is the session (the web interface) or ``Authorization: Bearer <token>``;
anything else gets the JSON 401. The blueprint is exempt from the global CSRF check and does
its own: writes authenticated by the session cookie must carry ``X-CSRFToken``, writes
authenticated by a token need none (a browser never adds that header on its own).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, Flask, Response, g, jsonify, request, stream_with_context, url_for
from flask_login import current_user, user_loaded_from_request

from cephalopod import params
from cephalopod.admin import export
from cephalopod.audit import queries as audit_queries
from cephalopod.audit.operations import current_actor
from cephalopod.crawler import jobs
from cephalopod.db import db, utcnow
from cephalopod.errors import ApiError, json_error
from cephalopod.extensions import csrf, login_manager
from cephalopod.geo.location import DATA_CREDIT_TEXT, DATA_CREDIT_URL
from cephalopod.instances import operations as ops
from cephalopod.instances import queries as instance_queries
from cephalopod.instances.api import json_body
from cephalopod.instances.models import Instance
from cephalopod.instances.rows import InstanceItem
from cephalopod.instances.schemas import EDITABLE, FieldError, UnexpectedKeysError, validate_update
from cephalopod.serialize import reply
from cephalopod.services import services
from cephalopod.stats import queries
from cephalopod.stats.cache import cached
from cephalopod.stats.fields import FieldRegistry
from cephalopod.stats.trend import trend

bp = Blueprint("admin_api", __name__, url_prefix="/api/admin")

#: How long "crawl now" waits for the crawl before answering 202 with the job to poll.
CRAWL_WAIT_SECONDS = 5.0
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
_VIA_BEARER = "cephalopod_via_bearer"


@user_loaded_from_request.connect
def _mark_token_login(_app: Flask, user: Any = None) -> None:
    """Remember that this request was authenticated by a bearer token, not by a cookie."""
    g.setdefault(_VIA_BEARER, True)


@bp.before_request
def authenticate() -> Response | None:
    """Demand a user; demand the CSRF token on writes that a cookie authenticated."""
    if not current_user.is_authenticated:
        denied: Response = login_manager.unauthorized()  # auth.views.unauthorized's reply
        return denied
    if request.method not in SAFE_METHODS and not g.get(_VIA_BEARER):
        csrf.protect()
    return None


def _registry() -> FieldRegistry:
    """Return the validated CRAWLED_FIELDS_SETTINGS (the one place views get it from)."""
    return services().settings.fields


@bp.errorhandler(params.ParameterError)
def _invalid_parameter(exc: params.ParameterError) -> Response:
    """Answer a wrong query parameter with the JSON 400 that names it."""
    return json_error(str(exc), 400, parameter=exc.name)


def _load(uuid: str) -> Instance:
    instance = ops.get_instance(uuid)
    if instance is None:
        raise ApiError("Instance not found", 404)
    return instance


def _item(instance_id: int) -> InstanceItem:
    item = instance_queries.instance_item(instance_id, _registry())
    if item is None:
        raise ApiError("Instance not found", 404)
    return item


# --- instances ----------------------------------------------------------------------------------


@bp.get("/instances")
def list_instances() -> Response:
    """List instances with filters, sort and paging."""
    registry = _registry()
    query = params.list_query(request.args, registry)
    return reply(instance_queries.list_instances(query, registry))


@bp.get("/instances/<uuid>")
def get_instance(uuid: str) -> Response:
    """Return an instance with its crawled data and history (hidden fields removed)."""
    detail = instance_queries.instance_detail(_load(uuid).id, _registry())
    if detail is None:
        raise ApiError("Instance not found", 404)
    return reply(detail)


@bp.patch("/instances/<uuid>")
def patch_instance(uuid: str) -> Response:
    """Edit an instance, with the validation of the registration protocol."""
    instance = _load(uuid)
    try:
        changes = validate_update(json_body(), allowed=(*EDITABLE, "enabled"))
    except UnexpectedKeysError as exc:
        raise ApiError("Unexpected data", data=exc.data) from None
    except FieldError as exc:
        if exc.empty:
            raise ApiError("Invalid value", field=exc.field, message=exc.message) from None
        raise ApiError(exc.message, field=exc.field) from None
    return reply(_item(ops.update_instance(instance, changes, current_actor()).id))


@bp.delete("/instances/<uuid>")
def delete_instance(uuid: str) -> tuple[str, int]:
    """Delete an instance and everything crawled from it."""
    ops.delete_instance(_load(uuid), current_actor())
    return "", 204


@bp.post("/instances/<uuid>/crawl")
def crawl_instance(uuid: str) -> Response | tuple[Response, int, dict[str, str]]:
    """Crawl one instance now: the item when done within a few seconds, else the job."""
    job_id = jobs.start_crawl_one(services().runner, _load(uuid), current_actor())
    state = jobs.wait_for_job(job_id, CRAWL_WAIT_SECONDS)
    if state == "done":
        db.session.expire_all()
        return reply(_item(_load(uuid).id))
    if state == "failed":
        _load(uuid)  # deleted meanwhile: 404
        raise ApiError(f"The crawl failed: {jobs.job_error(job_id)}", 500)
    location = url_for("admin_api.crawl_status", job=job_id)
    return jsonify({"job": job_id}), 202, {"Location": location}


# --- crawl jobs ---------------------------------------------------------------------------------


@bp.post("/crawl")
def crawl_all() -> tuple[Response, int]:
    """Start crawling every enabled instance in the background."""
    return jsonify({"job": jobs.start_crawl_all(services().runner)}), 202


@bp.get("/crawl/<job>")
def crawl_status(job: str) -> Response:
    """Return a crawl job's progress."""
    status = jobs.job_status(job)
    if status is None:
        raise ApiError("Crawl job not found", 404)
    return jsonify(status)


@bp.get("/geolocation")
def geolocation() -> Response:
    """Say whether locations can be known (the UI shows why not) and the data's credit line."""
    locator = services().geolocator
    return jsonify(
        {
            "available": locator.available,
            "reason": locator.unavailable_reason,
            "credit": {"text": DATA_CREDIT_TEXT, "url": DATA_CREDIT_URL},
        }
    )


# --- audit log ----------------------------------------------------------------------------------


@bp.get("/audit")
def audit_log() -> Response:
    """List the audit log's entries, newest first, with filters and paging."""
    return reply(audit_queries.list_entries(params.audit_query(request.args)))


# --- statistics ---------------------------------------------------------------------------------


@bp.get("/statistics")
def statistics() -> Response:
    """Return counts, countries, registrations and the configured charts."""
    status = params.statistics_status(request.args)
    return reply(queries.cached_statistics(_registry(), status))


@bp.get("/statistics/trend")
def statistics_trend() -> Response:
    """Return how a field's distribution (or the active instances) moved per period."""
    registry = _registry()
    query = params.trend_query(request.args, registry)
    key = (registry.fingerprint(), query.name, query.interval, query.status)
    return reply(cached("trend", key, lambda: trend(query.spec, query.interval, query.status)))


# --- export -------------------------------------------------------------------------------------


@bp.get("/export")
def export_instances() -> Response:
    """Stream every instance that matches the list's filters, as CSV or JSON."""
    registry = _registry()
    query = params.list_query(request.args, registry, extra=("format",))
    kind = params.choice(request.args, "format", export.FORMATS, "csv")
    chunks = export.csv_chunks if kind == "csv" else export.json_chunks
    stamp = _stamp(utcnow())
    mimetype = "text/csv; charset=utf-8" if kind == "csv" else "application/json"
    return Response(
        stream_with_context(chunks(query, registry)),
        mimetype=mimetype,
        headers={"Content-Disposition": f'attachment; filename="instances-{stamp}.{kind}"'},
    )


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%d-%H%M%S")
