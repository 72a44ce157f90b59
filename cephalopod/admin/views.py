"""The admin web interface: server-rendered pages over the admin API's read functions.

    GET  /                          Home: the installed base at a glance
    GET  /servers                   Servers: filters, sort, page (the API's list parameters)
    GET  /servers/<uuid>            Server detail with the edit form, history and map
    POST /servers/<uuid>            save the edit form (validated like PATCH /api/admin/...)
    POST /servers/<uuid>/delete     delete it (the page's dialog confirms first)
    POST /servers/<uuid>/crawl      crawl it now (the no-script fallback of "Crawl now")
    POST /crawl                     crawl all in the background (fallback of "Crawl all")
    GET  /statistics                Statistics: map, countries, registrations, charts
    GET  /public/statistics         the aggregates without login, with PUBLIC_STATISTICS

Views parse the request, call the read functions of the adapter section below (the same the
admin JSON API calls, so a page and ``GET /api/admin/...`` never disagree) and render. The
scripts in ``static/js/`` only draw maps and charts and call the JSON API for the crawls.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import format_datetime, get_timezone
from flask_login import login_required
from markupsafe import Markup
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from cephalopod import params
from cephalopod.audit import queries as audit_queries
from cephalopod.audit.operations import current_actor
from cephalopod.crawler import jobs
from cephalopod.crawler.models import CrawlJob
from cephalopod.crawler.scheduler import next_run
from cephalopod.db import db
from cephalopod.errors import ApiError
from cephalopod.geo.location import DATA_CREDIT_TEXT, DATA_CREDIT_URL
from cephalopod.instances import operations as ops
from cephalopod.instances import queries as instance_queries
from cephalopod.instances.models import Instance
from cephalopod.instances.schemas import EDITABLE, FieldError, UnexpectedKeysError, validate_update
from cephalopod.params import ParameterError
from cephalopod.schedule import CRAWL_ALL, periodic_jobs
from cephalopod.serialize import builtins
from cephalopod.services import services
from cephalopod.stats import queries as stats_queries
from cephalopod.stats.aggregate import CountryEntry, join_display
from cephalopod.stats.cache import cached
from cephalopod.stats.queries import status_filter
from cephalopod.stats.trend import INSTANCES, trend
from cephalopod.stats.values import display_columns

log = logging.getLogger(__name__)
bp = Blueprint("admin", __name__)

# --- the read and write functions shared with the admin JSON API ---------------------------------
# Every view below calls only these, so that a page and GET /api/admin/... always agree.


def field_registry() -> Any:
    """The validated CRAWLED_FIELDS_SETTINGS, parsed once in create_app."""
    return services().settings.fields


def parse_list(args: MultiDict[str, str], extra: tuple[str, ...] = ()) -> Any:
    """Validate the list's query parameters (raises ParameterError naming the parameter)."""
    return params.list_query(args, field_registry(), extra=extra)


def latest_servers(count: int) -> list[dict[str, Any]]:
    """The latest registrations: the list's first items sorted by registration, newest first.

    Without the list's total, which Home does not show (a count over every instance).
    """
    query = instance_queries.ListQuery(sort="registered", order="desc", per_page=count)
    ids = instance_queries.page_ids(query)
    items: list[dict[str, Any]] = builtins(instance_queries.items(ids, field_registry()))
    return items


def list_page(query: Any) -> dict[str, Any]:
    """The page of servers, exactly as ``GET /api/admin/instances`` answers it."""
    page: dict[str, Any] = builtins(instance_queries.list_instances(query, field_registry()))
    return page


def instance_counts() -> Any:
    """Registered, active and per-health counts: each the total of its list filter."""
    return instance_queries.instance_counts()


def list_countries() -> list[CountryEntry]:
    """Each country with its number of servers of any status: the list's country filter.

    The statistics' own count per country (as in ``GET /api/admin/statistics?status=all``),
    without computing all the statistics each time a crawl has changed the data.
    """
    return stats_queries.countries("all")


def field_names() -> list[str]:
    """The visible crawled fields that some instance reports (the list's extra columns)."""
    return stats_queries.stored_field_names(field_registry())


def server_detail(uuid: str) -> dict[str, Any] | None:
    """One server exactly as ``GET /api/admin/instances/<uuid>`` answers it, or None."""
    instance = ops.get_instance(uuid)
    if instance is None:
        return None
    detail = instance_queries.instance_detail(instance.id, field_registry())
    if detail is None:
        return None
    return {**builtins(detail), "city": instance.city}


def update_server(uuid: str, changes: Mapping[str, Any]) -> None:
    """Validate and save an edit (raises FieldError like the API's PATCH)."""

    instance = ops.get_instance(uuid)
    if instance is None:
        abort(404)
    changes = validate_update(changes, allowed=(*EDITABLE, "enabled"))
    ops.update_instance(instance, changes, current_actor())


def delete_server(uuid: str) -> None:
    """Delete a server and everything crawled from it."""

    instance = ops.get_instance(uuid)
    if instance is None:
        abort(404)
    ops.delete_instance(instance, current_actor())


def crawl_server(uuid: str) -> None:
    """Crawl one server now (as POST /api/admin/instances/<uuid>/crawl)."""

    instance = ops.get_instance(uuid)
    if instance is None:
        abort(404)
    jobs.start_crawl_one(services().runner, instance, current_actor())


def start_crawl_all() -> str:
    """Start crawling everything in the background (as POST /api/admin/crawl)."""

    return jobs.start_crawl_all(services().runner)


def active_job_id() -> str | None:
    """The running crawl-all job, so that the progress bar survives a reload."""

    job = jobs.active_job()
    return job.id if job is not None else None


def statistics(status: str) -> dict[str, Any]:
    """The statistics as ``GET /api/admin/statistics?status=`` answers them (cached)."""
    numbers: dict[str, Any] = builtins(stats_queries.cached_statistics(field_registry(), status))
    return numbers


def active_history(status: str) -> dict[str, Any]:
    """Active instances per day, as the trend API answers ``field=instances&interval=day``.

    The same cache entry as the API's: the page draws the chart and its table from it.
    """
    key = (field_registry().fingerprint(), INSTANCES, "day", status)
    history: dict[str, Any] = builtins(cached("trend", key, lambda: trend(None, "day", status)))
    return history


def statistics_status(args: MultiDict[str, str]) -> str:
    """Validate the statistics' ``status`` parameter."""
    return params.statistics_status(args)


def crawl_overview() -> dict[str, Any]:
    """When the last crawl-all ran, the next due, and the latest crawl's commonest errors."""

    last = db.session.scalar(sa.select(CrawlJob).order_by(CrawlJob.created_at.desc()).limit(1))
    now = datetime.now(UTC)
    due: datetime | None = None
    for job in periodic_jobs(current_app.config):
        if job.task == CRAWL_ALL:
            try:
                moment = next_run(job, now)
            except Exception:  # an odd schedule object: say nothing rather than fail the page
                log.warning("Cannot tell when %s is due", job.name, exc_info=True)
                continue
            due = moment if due is None else min(due, moment)
    errors = db.session.execute(
        sa.select(Instance.crawl_error, sa.func.count())
        .where(Instance.crawl_status == "error")
        .group_by(Instance.crawl_error)
        .order_by(sa.func.count().desc(), Instance.crawl_error)
        .limit(10)
    ).all()
    return {
        "last_job": last,
        "next_due": due,
        "errors": [
            {"reason": reason or "Unknown error", "error": reason, "count": n}
            for reason, n in errors
        ],
    }


def geolocation_status() -> tuple[bool, str | None]:
    """Whether locations can be known, and why not."""

    locator = services().geolocator
    return locator.available, locator.unavailable_reason


# --- template helpers -----------------------------------------------------------------------------

SAFE_SCHEMES = ("http://", "https://")
AUDIT_ACTIONS = {
    "register": "Registered",
    "update": "Edited",
    "enable": "Enabled",
    "disable": "Disabled",
    "delete": "Deleted",
    "crawl": "Crawl now",
    "login": "Logged in",
    "login_failed": "Log-in failed",
    "token_create": "Token created",
    "token_revoke": "Token revoked",
}
AUDIT_FIELDS = {
    "url": "URL",
    "contact": "Contact",
    "email": "E-mail",
    "organization": "Organization",
    "enabled": "Enabled",
}
#: Up to this many crawled fields are all shown by default; beyond, the charted ones.
DEFAULT_COLUMNS = 6
HEALTH = {"ok": "OK", "error": "Failing", "never": "Never crawled"}
STATUS_CHOICES = (("enabled", "Enabled"), ("disabled", "Disabled"), ("all", "Both"))
HEALTH_CHOICES = (("", "Any"), ("ok", "OK"), ("error", "Failing"), ("never", "Never crawled"))


def _as_datetime(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


@bp.app_template_filter("when")
def when(value: Any, empty: str = "never") -> Markup:
    """A ``<time>`` in BABEL_DEFAULT_TIMEZONE and locale, with the timezone named."""
    moment = _as_datetime(value)
    if moment is None:
        return Markup('<span class="muted">{}</span>').format(empty)
    text = format_datetime(moment, "medium")
    zone = str(get_timezone())
    return Markup('<time datetime="{}">{} {}</time>').format(
        moment.astimezone(UTC).isoformat().replace("+00:00", "Z"), text, zone
    )


@bp.app_template_filter("audit_actor")
def audit_actor(entry: Mapping[str, Any]) -> str:
    """Who made an audit entry, in words (text: the template escapes it)."""
    kind, name = entry.get("actor_kind"), entry.get("actor")
    if kind == "instance":
        return "The instance itself"
    if kind == "token":
        return f"{name} (API token {entry.get('token_id')})"
    if kind == "cli":
        return f"Command line ({name})" if name else "Command line"
    if kind == "anonymous":
        return f"Not logged in ({name})" if name else "Not logged in"
    if kind == "system":
        return "The hub itself"
    return str(name or kind)


@bp.app_template_filter("safe_url")
def safe_url(value: Any) -> str | None:
    """The URL if it may be a link (http or https), else None: shown as text then."""
    text = str(value or "")
    return text if text.lower().startswith(SAFE_SCHEMES) else None


@bp.app_template_filter("zip_rows")
def zip_rows(first: Any, *others: Any) -> list[tuple[Any, ...]]:
    """Rows of a data table from its columns."""
    return list(zip(list(first), *others, strict=False))


@bp.app_context_processor
def inject() -> dict[str, Any]:
    """What every admin template may use."""
    return {
        "credit": {"text": DATA_CREDIT_TEXT, "url": DATA_CREDIT_URL},
        "health_names": HEALTH,
        "public_statistics": current_app.config.get("PUBLIC_STATISTICS", False),
        "audit_actions": AUDIT_ACTIONS,
        "audit_fields": AUDIT_FIELDS,
        "audit_recent": audit_queries.RECENT,
    }


def _bad_request(exc: ApiError | ParameterError) -> tuple[str, int]:
    message = exc.message if isinstance(exc, ApiError) else str(exc)
    return render_template("error.html", status=400, title="Bad request", message=message), 400


# --- pages --------------------------------------------------------------------------------------


@bp.get("/")
@login_required
def home() -> str:
    """Show the installed base at a glance."""
    counts = instance_counts()
    latest = latest_servers(5)
    return render_template(
        "admin/home.html",
        counts=counts,
        latest=latest,
        crawl=crawl_overview(),
        job_id=active_job_id(),
    )


def _list_url(args: Mapping[str, str], **changes: Any) -> str:
    """The list's URL with some parameters changed (None removes one); page back to 1."""
    merged = {k: v for k, v in args.items() if v not in ("", None)}
    merged.pop("page", None)
    for key, value in changes.items():
        if value is None or value == "":
            merged.pop(key, None)
        else:
            merged[key] = str(value)
    query = urlencode(merged)
    return url_for("admin.servers") + ("?" + query if query else "")


@bp.get("/servers")
@login_required
def servers() -> str | tuple[str, int]:
    """List the servers: filters, sort and page from the URL, rendered on the server."""
    args = MultiDict(request.args)
    columns_arg = args.pop("columns", None)
    try:
        query = parse_list(args)
    except (ApiError, ParameterError) as exc:
        return _bad_request(exc)
    registry = field_registry()
    names = field_names()
    labels = {name: registry.spec(name).label for name in names}
    if columns_arg is not None:
        chosen = [n for n in columns_arg.split(",") if n in labels]
    elif len(names) <= DEFAULT_COLUMNS:
        chosen = names  # few fields: show them all
    else:
        charted = [s.name for s in registry.charted() if s.name in labels]
        chosen = charted or names[:DEFAULT_COLUMNS]
    page = list_page(query)
    pages = max(1, -(-page["total"] // query.per_page))
    plain = dict(request.args.items())
    sort_key = f"field:{query.field}" if query.sort == "field" else query.sort

    def sort_url(key: str) -> str:
        order = "desc" if key == sort_key and query.order == "asc" else "asc"
        return _list_url(plain, sort=key, order=order)

    def page_url(number: int) -> str:
        return _list_url(plain) + ("&" if "?" in _list_url(plain) else "?") + f"page={number}"

    export_args: dict[str, Any] = {  # url_for's own keywords (_external...) are not str
        k: v for k, v in plain.items() if k not in ("page", "per_page", "columns")
    }
    return render_template(
        "admin/servers.html",
        query=query,
        page=page,
        pages=pages,
        sort_key=sort_key,
        sort_url=sort_url,
        page_url=page_url,
        list_url=lambda **c: _list_url(plain, **c),
        fields=[(n, labels[n]) for n in names],
        chosen=chosen,
        countries=list_countries(),
        status_choices=STATUS_CHOICES,
        health_choices=HEALTH_CHOICES,
        export_url=url_for("admin_api.export_instances", **export_args),
        job_id=active_job_id(),
    )


def _history_charts(item: Mapping[str, Any], registry: Any) -> list[dict[str, Any]]:
    """Each field's history, oldest first, as the list and the charts show it (its display
    value): a small line chart where that is a number (a count, or a list summed), and for a
    charted field whose value is text (a version) the days it changed, as a table."""
    history = list(reversed(item["history"]))
    charted = {spec.name for spec in registry.charted()}
    series: dict[str, list[tuple[Any, str | None, float | None]]] = {}
    for snapshot in history:
        for name, raw in snapshot["data"].items():
            if registry.is_hidden(name):
                continue
            text, number = display_columns(raw, registry, name)
            series.setdefault(name, []).append((snapshot["date"], text, number))
    charts = []
    for name in sorted(series):
        label = registry.spec(name).label
        numbers = [  # the display value itself: an int stays an int (2, not 2.0)
            (day, join_display(text, number))
            for day, text, number in series[name]
            if number is not None
        ]
        if numbers:
            points = [{"date": day, "value": value} for day, value in numbers]
            charts.append({"field": name, "label": label, "kind": "line", "points": points,
                           "rows": numbers})  # fmt: skip
        elif name in charted:
            changes: list[tuple[Any, str]] = []
            for day, text, _number in series[name]:
                value = join_display(text)
                if value is None:
                    continue
                shown = value if isinstance(value, str) else json.dumps(value)
                if not changes or changes[-1][1] != shown:
                    changes.append((day, shown))
            if changes:
                charts.append({"field": name, "label": label, "kind": "changes", "rows": changes})
    return charts


@bp.route("/servers/<uuid>", methods=["GET", "POST"])
@login_required
def server(uuid: str) -> str | Response | tuple[str, int]:
    """Show a server; on POST save its edit form and show it again."""

    errors: dict[str, str] = {}
    values: dict[str, Any] | None = None
    if request.method == "POST":
        values = {
            name: request.form.get(name, "") for name in ("organization", "url", "contact", "email")
        }
        values["enabled"] = request.form.get("enabled") == "on"
        try:
            update_server(uuid, values)
        except FieldError as exc:
            errors[exc.field] = exc.message
        except UnexpectedKeysError:
            errors["form"] = "Unexpected data"
        else:
            flash("Saved.", "success")
            return redirect(url_for("admin.server", uuid=uuid))
    item = server_detail(uuid)
    if item is None:
        abort(404)
    registry = field_registry()
    available, reason = geolocation_status()
    map_data = None
    if item["latitude"] is not None and item["longitude"] is not None:
        map_data = {
            "markers": [
                {
                    "name": item["organization"],
                    "coords": [item["latitude"], item["longitude"]],
                }
            ],
            "regions": {item["country_code"]: 1} if item["country_code"] else {},
        }
    html = render_template(
        "admin/server.html",
        item=item,
        form=values or item,
        errors=errors,
        labels={name: registry.spec(name).label for name in item["fields"]},
        history=_history_charts(item, registry),
        map_data=map_data,
        geo_available=available,
        geo_reason=reason,
    )
    return (html, 400) if errors else html


@bp.post("/servers/<uuid>/delete")
@login_required
def delete(uuid: str) -> Response | str:
    """Delete a server once confirmed, then go back to the list.

    Unconfirmed (the list's button before its script has run, or without scripts), the
    answer is a page asking to confirm: a click never deletes without its confirmation.
    """
    if request.form.get("confirmed") != "1":
        instance = ops.get_instance(uuid)
        if instance is None:
            abort(404)
        return render_template("admin/delete.html", instance=instance)
    delete_server(uuid)
    flash("The server was deleted.", "success")
    return redirect(url_for("admin.servers"))


@bp.post("/servers/<uuid>/crawl")
@login_required
def crawl_now(uuid: str) -> Response:
    """Crawl a server now (without script), then show it."""
    crawl_server(uuid)
    flash("A crawl of this server started in the background.", "info")
    return redirect(url_for("admin.server", uuid=uuid))


@bp.post("/crawl")
@login_required
def crawl_all() -> Response:
    """Start a crawl of everything (without script), then go back."""
    start_crawl_all()
    flash("Crawling all enabled servers in the background.", "info")
    return redirect(url_for("admin.servers"))


def _statistics_page(status: str, public: bool) -> str:
    stats = statistics(status)
    map_data = {
        "regions": {c["code"]: c["count"] for c in stats["countries"] if c.get("code")},
        "names": {c["code"]: c["name"] for c in stats["countries"] if c.get("code")},
        "markers": [] if public else _markers(status),
    }
    return render_template(
        "admin/statistics.html",
        stats=stats,
        status=status,
        public=public,
        map_data=map_data,
        active=active_history(status),
        has_data=bool(stats["instances"]),
    )


def _markers(status: str) -> list[dict[str, Any]]:
    """One marker per located server (name, coordinates, its detail page), capped."""

    rows = db.session.execute(
        sa.select(Instance.uuid, Instance.organization, Instance.latitude, Instance.longitude)
        .where(
            Instance.latitude.is_not(None),
            Instance.longitude.is_not(None),
            status_filter(status),
        )
        .limit(MAX_MARKERS)
    )
    return [
        {
            "name": org,
            "coords": [lat, lon],
            "url": url_for("admin.server", uuid=str(uuid)),
        }
        for uuid, org, lat, lon in rows
    ]


#: Beyond this many markers the world map is a blur and the page heavy: the choropleth tells.
MAX_MARKERS = 2000


@bp.get("/statistics")
@login_required
def statistics_page() -> str | tuple[str, int]:
    """Show the statistics: world map, countries, registrations and the configured charts."""
    try:
        status = statistics_status(request.args)
    except (ApiError, ParameterError) as exc:
        return _bad_request(exc)
    return _statistics_page(status, public=False)


@bp.get("/public/statistics")
def public_statistics() -> str | tuple[str, int]:
    """The aggregates without login, when PUBLIC_STATISTICS is on (404 otherwise)."""
    if not current_app.config.get("PUBLIC_STATISTICS"):
        abort(404)
    try:
        status = statistics_status(request.args)
    except (ApiError, ParameterError) as exc:
        return _bad_request(exc)
    return _statistics_page(status, public=True)
