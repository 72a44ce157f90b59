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

Authentication is the session (the web interface) or ``Authorization: Bearer <token>``;
anything else gets the JSON 401. The blueprint is exempt from the global CSRF check and does
its own: writes authenticated by the session cookie must carry ``X-CSRFToken``, writes
authenticated by a token need none (a browser never adds that header on its own).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Flask, Response, g, jsonify, request, stream_with_context, url_for
from flask_login import current_user, user_loaded_from_request

from cephalopod.admin import export, listing
from cephalopod.admin.listing import choice, invalid, reject_unknown, single
from cephalopod.crawler import jobs
from cephalopod.db import db, utcnow
from cephalopod.errors import ApiError
from cephalopod.extensions import csrf, login_manager
from cephalopod.geo.location import DATA_CREDIT_TEXT, DATA_CREDIT_URL
from cephalopod.instances import operations as ops
from cephalopod.instances.api import json_body
from cephalopod.instances.models import Instance, Snapshot
from cephalopod.instances.schemas import EDITABLE, FieldError, UnexpectedKeysError, validate_update
from cephalopod.services import services
from cephalopod.stats import queries
from cephalopod.stats.cache import cached
from cephalopod.stats.trend import INSTANCES, INTERVALS, trend

bp = Blueprint("admin_api", __name__, url_prefix="/api/admin")

HISTORY_DAYS = 90
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
        return login_manager.unauthorized()
    if request.method not in SAFE_METHODS and not g.get(_VIA_BEARER):
        csrf.protect()
    return None


def _load(uuid: str) -> Instance:
    instance = ops.get_instance(uuid)
    if instance is None:
        raise ApiError("Instance not found", 404)
    return instance


def _detail_item(instance: Instance) -> dict[str, Any]:
    registry = queries.field_registry()
    stored = listing.display_values([instance.id], registry)[instance.id]
    first = listing.duplicates_of([instance.url_key])
    fields = listing.item_fields(instance, stored, registry)
    return listing.item(instance, fields, listing.duplicate_of(instance, first))


# --- instances ----------------------------------------------------------------------------------


@bp.get("/instances")
def list_instances() -> Response:
    """List instances with filters, sort and paging."""
    registry = queries.field_registry()
    query = listing.parse_list_args(request.args, registry)
    return jsonify(listing.list_page(query, registry))


@bp.get("/instances/<uuid>")
def get_instance(uuid: str) -> Response:
    """Return an instance with its crawled data and history (hidden fields removed)."""
    instance = _load(uuid)
    registry = queries.field_registry()
    history = db.session.execute(
        sa.select(Snapshot.day, Snapshot.data)
        .where(Snapshot.instance_id == instance.id)
        .order_by(Snapshot.day.desc())
        .limit(HISTORY_DAYS)
    )
    data = instance.crawled_data
    return jsonify(
        {
            **_detail_item(instance),
            "crawled_data": registry.visible(data) if isinstance(data, dict) else None,
            "history": [
                {"date": day.isoformat(), "data": registry.visible(snapshot or {})}
                for day, snapshot in history
            ],
        }
    )


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
    return jsonify(_detail_item(ops.update_instance(instance, changes)))


@bp.delete("/instances/<uuid>")
def delete_instance(uuid: str) -> tuple[str, int]:
    """Delete an instance and everything crawled from it."""
    ops.delete_instance(_load(uuid))
    return "", 204


@bp.post("/instances/<uuid>/crawl")
def crawl_instance(uuid: str) -> Response | tuple[Response, int, dict[str, str]]:
    """Crawl one instance now: the item when done within a few seconds, else the job."""
    job_id = jobs.start_crawl_one(services().runner, _load(uuid))
    state = jobs.wait_for_job(job_id, CRAWL_WAIT_SECONDS)
    if state == "done":
        db.session.expire_all()
        return jsonify(_detail_item(_load(uuid)))
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


# --- statistics ---------------------------------------------------------------------------------


def statistics_reply(status: str) -> dict[str, Any]:
    """Return the statistics of ``status``, cached until the data or the settings change."""
    registry = queries.field_registry()
    return cached(
        "statistics",
        (registry.fingerprint(), status),
        lambda: queries.statistics(registry, status),
    )


@bp.get("/statistics")
def statistics() -> Response:
    """Return counts, countries, registrations and the configured charts."""
    reject_unknown(request.args, ("status",))
    status = choice(request.args, "status", queries.STATUSES, "enabled")
    return jsonify(statistics_reply(status))


@bp.get("/statistics/trend")
def statistics_trend() -> Response:
    """Return how a field's distribution (or the active instances) moved per period."""
    reject_unknown(request.args, ("field", "interval", "status"))
    registry = queries.field_registry()
    name = single(request.args, "field")
    if not name:
        raise invalid("field", f"is required: a crawled field's name or {INSTANCES!r}")
    if name != INSTANCES and not queries.known_field(name, registry):
        raise invalid("field", f"no visible crawled field is named {name!r}")
    interval = choice(request.args, "interval", INTERVALS, "month")
    status = choice(request.args, "status", queries.STATUSES, "enabled")
    spec = None if name == INSTANCES else registry.spec(name)
    key = (registry.fingerprint(), name, interval, status)
    return jsonify(cached("trend", key, lambda: trend(spec, interval, status)))


# --- export -------------------------------------------------------------------------------------


@bp.get("/export")
def export_instances() -> Response:
    """Stream every instance that matches the list's filters, as CSV or JSON."""
    registry = queries.field_registry()
    query = listing.parse_list_args(request.args, registry, extra=("format",))
    kind = choice(request.args, "format", export.FORMATS, "csv")
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
