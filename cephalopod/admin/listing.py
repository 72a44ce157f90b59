"""The instance list of the admin API: its query parameters, its SQL and its JSON items.

Every filter and sort is SQL. Sorting by a crawled field joins that field's stored display
value (``instance_fields``): numbers by ``value_num`` (numerically), then other values by
their JSON text, and instances without a value last in both orders. The page's ids come from
one query; its rows, display values and duplicate marks from three small ones by id.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from werkzeug.datastructures import MultiDict

from cephalopod.db import db
from cephalopod.errors import ApiError
from cephalopod.instances.models import CRAWL_STATUSES, Instance, InstanceField
from cephalopod.stats.fields import FieldRegistry
from cephalopod.stats.queries import STATUSES, known_field, status_filter

instances = Instance.__table__
fields_table = InstanceField.__table__

SORTS = ("organization", "url", "contact", "email", "registered", "last_crawl", "country")
FIELD_SORT = "field:"
ORDERS = ("asc", "desc")
DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 500
MAX_QUERY = 200
LIST_PARAMETERS = (
    "status",
    "q",
    "country",
    "health",
    "duplicates",
    "sort",
    "order",
    "page",
    "per_page",
)
_COUNTRY = re.compile(r"[A-Za-z]{2}")
_TEXT_SORTS = {
    "organization": instances.c.organization,
    "url": instances.c.url,
    "contact": instances.c.contact,
    "email": instances.c.email,
}


def invalid(name: str, reason: str) -> ApiError:
    """Return the 400 error naming the query parameter that is wrong."""
    return ApiError(f"Invalid parameter {name}: {reason}", 400, parameter=name)


@dataclass(frozen=True)
class ListQuery:
    """The validated filters, sort and page of an instance list."""

    status: str = "all"
    q: str = ""
    country: str | None = None
    health: str | None = None
    duplicates: bool = False
    sort: str = "organization"
    field: str | None = None
    order: str = "asc"
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE


def single(args: MultiDict[str, str], name: str) -> str | None:
    """Return a query parameter given at most once (None when absent)."""
    values = args.getlist(name)
    if len(values) > 1:
        raise invalid(name, "given more than once")
    return values[0] if values else None


def choice(args: MultiDict[str, str], name: str, choices: Sequence[str], default: str) -> str:
    """Return a parameter that must be one of ``choices``."""
    value = single(args, name)
    if value is None or value == "":
        return default
    if value not in choices:
        raise invalid(name, f"must be one of {', '.join(choices)}")
    return value


def _integer(args: MultiDict[str, str], name: str, default: int, low: int, high: int) -> int:
    value = single(args, name)
    if value is None or value == "":
        return default
    if not value.isascii() or not value.isdigit() or len(value) > 9:
        raise invalid(name, "must be a whole number")
    number = int(value)
    if not low <= number <= high:
        raise invalid(name, f"must be between {low} and {high}")
    return number


def reject_unknown(args: MultiDict[str, str], known: Iterable[str]) -> None:
    """Refuse query parameters the endpoint does not know (a typo must not pass silently)."""
    for name in args:
        if name not in known:
            raise invalid(name, "unknown parameter")


def parse_list_args(
    args: MultiDict[str, str], registry: FieldRegistry, extra: Sequence[str] = ()
) -> ListQuery:
    """Validate the list's query parameters; raise the 400 naming the first invalid one."""
    reject_unknown(args, (*LIST_PARAMETERS, *extra))
    q = (single(args, "q") or "").strip()
    if len(q) > MAX_QUERY:
        raise invalid("q", f"must be at most {MAX_QUERY} characters")
    country = single(args, "country") or None
    if country is not None:
        if not _COUNTRY.fullmatch(country):
            raise invalid("country", "must be a two-letter ISO 3166 country code")
        country = country.upper()
    duplicates = single(args, "duplicates") or "0"
    if duplicates not in ("0", "1", "true", "false"):
        raise invalid("duplicates", "must be 1 or 0")
    sort = single(args, "sort") or "organization"
    field = None
    if sort.startswith(FIELD_SORT):
        field = sort.removeprefix(FIELD_SORT)
        if not field or not known_field(field, registry):
            raise invalid("sort", f"no visible crawled field is named {field!r}")
    elif sort not in SORTS:
        raise invalid("sort", f"must be one of {', '.join(SORTS)} or field:<name>")
    return ListQuery(
        status=choice(args, "status", STATUSES, "all"),
        q=q,
        country=country,
        health=choice(args, "health", CRAWL_STATUSES, "") or None,
        duplicates=duplicates in ("1", "true"),
        sort="field" if field else sort,
        field=field,
        order=choice(args, "order", ORDERS, "asc"),
        page=_integer(args, "page", 1, 1, 10**9),
        per_page=_integer(args, "per_page", DEFAULT_PER_PAGE, 1, MAX_PER_PAGE),
    )


# --- SQL ----------------------------------------------------------------------------------------


def duplicate_keys() -> sa.Select[Any]:
    """Select the url_keys that more than one instance shares."""
    return sa.select(instances.c.url_key).group_by(instances.c.url_key).having(sa.func.count() > 1)


def filters(query: ListQuery) -> list[sa.ColumnElement[bool]]:
    """Return the WHERE clauses of the list's filters."""
    clauses: list[sa.ColumnElement[bool]] = []
    if query.status != "all":
        clauses.append(status_filter(query.status))
    if query.q:
        columns = (
            instances.c.organization,
            instances.c.url,
            instances.c.contact,
            instances.c.email,
        )
        clauses.append(sa.or_(*(c.icontains(query.q, autoescape=True) for c in columns)))
    if query.country:
        clauses.append(instances.c.country_code == query.country)
    if query.health:
        clauses.append(instances.c.crawl_status == query.health)
    if query.duplicates:
        clauses.append(instances.c.url_key.in_(duplicate_keys()))
    return clauses


def _directed(expression: sa.ColumnElement[Any], order: str) -> sa.ColumnElement[Any]:
    return expression.desc() if order == "desc" else expression.asc()


def ordered(select: sa.Select[Any], query: ListQuery) -> sa.Select[Any]:
    """Add the sort (and the join it needs) to a select over ``instances``."""
    keys: list[sa.ColumnElement[Any]] = []
    if query.sort == "field":
        value = fields_table.alias("sort_field")
        select = select.outerjoin(
            value, sa.and_(value.c.instance_id == instances.c.id, value.c.field == query.field)
        )
        keys = [
            _missing_last(value.c.value_text.is_(None)),
            _directed(value.c.value_num.is_(None), query.order),  # numbers before other values
            _directed(value.c.value_num, query.order),
            _directed(value.c.value_text, query.order),
        ]
    elif query.sort in _TEXT_SORTS:
        column = _TEXT_SORTS[query.sort]
        keys = [_directed(sa.func.lower(column), query.order), _directed(column, query.order)]
    elif query.sort == "registered":
        keys = [_directed(instances.c.registered_at, query.order)]
    elif query.sort == "last_crawl":
        column = instances.c.last_crawl_at
        keys = [_missing_last(column.is_(None)), _directed(column, query.order)]
    elif query.sort == "country":
        name = sa.func.nullif(instances.c.country_name, "")
        keys = [
            _missing_last(name.is_(None)),
            _directed(sa.func.lower(name), query.order),
            _directed(instances.c.country_code, query.order),
        ]
    return select.order_by(*keys, _directed(instances.c.id, query.order))


def _missing_last(is_missing: sa.ColumnElement[bool]) -> sa.ColumnElement[Any]:
    return sa.case((is_missing, 1), else_=0).asc()


def count_matching(query: ListQuery) -> int:
    """Count the instances that match the filters."""
    select = sa.select(sa.func.count()).select_from(instances).where(*filters(query))
    return db.session.scalar(select) or 0


def page_ids(query: ListQuery) -> list[int]:
    """Return the ids of the requested page, in order."""
    select = ordered(sa.select(instances.c.id).where(*filters(query)), query)
    select = select.limit(query.per_page).offset((query.page - 1) * query.per_page)
    return list(db.session.scalars(select))


# --- items --------------------------------------------------------------------------------------


def iso(moment: datetime | None) -> str | None:
    """Format a UTC timestamp as the API does (ISO 8601 with Z)."""
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def display_values(ids: Sequence[int], registry: FieldRegistry) -> dict[int, dict[str, Any]]:
    """Return each instance's visible display values by field name.

    The database folds an instance's values into one JSON object (the stored texts are JSON),
    so a page costs one row and one C-speed decode per instance, not one row per value.
    """
    values: dict[int, dict[str, Any]] = {i: {} for i in ids}
    if not ids:
        return values
    hidden = registry.hidden
    pairs = (fields_table.c.field, fields_table.c.value_text)
    if db.engine.dialect.name == "postgresql":
        folded = sa.func.json_object_agg(pairs[0], sa.cast(pairs[1], postgresql.JSON))
    else:
        folded = sa.func.json_group_object(pairs[0], sa.func.json(pairs[1]))
    select = (
        sa.select(fields_table.c.instance_id, sa.type_coerce(folded, sa.JSON))
        .where(fields_table.c.instance_id.in_(ids))
        .group_by(fields_table.c.instance_id)
    )
    for instance_id, data in db.session.execute(select):
        if hidden:
            data = {name: value for name, value in data.items() if name not in hidden}
        values[instance_id] = data
    return values


def earliest_duplicate() -> sa.ColumnElement[Any]:
    """A column: the uuid of the earliest instance sharing this row's url_key, if any shares it.

    Equal to the row's own uuid for that earliest instance (``duplicate_of`` then is null).
    """
    other = instances.alias("earliest")
    earliest = (
        sa.select(other.c.uuid)
        .where(other.c.url_key == instances.c.url_key)
        .order_by(other.c.registered_at, other.c.id)
        .limit(1)
        .scalar_subquery()
    )
    return sa.case((instances.c.url_key.in_(duplicate_keys()), earliest), else_=None)


def duplicates_of(keys: Iterable[str]) -> dict[str, tuple[int, str]]:
    """Map each url_key to its earliest registered instance (id, uuid)."""
    unique = sorted(set(keys))
    first: dict[str, tuple[int, str]] = {}
    for start in range(0, len(unique), 500):
        select = (
            sa.select(instances.c.url_key, instances.c.id, instances.c.uuid)
            .where(instances.c.url_key.in_(unique[start : start + 500]))
            .order_by(instances.c.registered_at.desc(), instances.c.id.desc())
        )
        for key, instance_id, uuid in db.session.execute(select):
            first[key] = (instance_id, str(uuid))  # the last written is the earliest
    return first


def duplicate_of(row: Any, first: Mapping[str, tuple[int, str]]) -> str | None:
    """Return the uuid of the instance this one duplicates, or None."""
    earliest = first.get(row.url_key)
    return None if earliest is None or earliest[0] == row.id else earliest[1]


def item(row: Any, fields: Mapping[str, Any], duplicate: str | None) -> dict[str, Any]:
    """Serialize one instance of the list (``row`` has the instances columns)."""
    return {
        "uuid": str(row.uuid),
        "url": row.url,
        "organization": row.organization,
        "contact": row.contact,
        "email": row.email,
        "enabled": bool(row.enabled),
        "registered": iso(row.registered_at),
        "last_crawl": iso(row.last_crawl_at),
        "last_success": iso(row.last_success_at),
        "crawl_status": row.crawl_status,
        "crawl_error": row.crawl_error,
        "consecutive_failures": row.consecutive_failures,
        "country_code": row.country_code,
        "country_name": row.country_name,
        "latitude": row.latitude,
        "longitude": row.longitude,
        "duplicate_of": duplicate,
        "fields": dict(fields),
    }


def item_fields(row: Any, stored: Mapping[str, Any], registry: FieldRegistry) -> dict[str, Any]:
    """Every visible crawled field, with its display value or null (not displayable)."""
    names = set(stored)
    if isinstance(row.crawled_data, Mapping):
        names.update(name for name in row.crawled_data if not registry.is_hidden(name))
    return {name: stored.get(name) for name in sorted(names)}


def items(ids: Sequence[int], registry: FieldRegistry) -> list[dict[str, Any]]:
    """Serialize the instances with these ids, in this order."""
    if not ids:
        return []
    rows = {
        row.id: row for row in db.session.execute(instances.select().where(instances.c.id.in_(ids)))
    }
    stored = display_values(ids, registry)
    first = duplicates_of(row.url_key for row in rows.values())
    return [
        item(rows[i], item_fields(rows[i], stored[i], registry), duplicate_of(rows[i], first))
        for i in ids
        if i in rows
    ]


def list_page(query: ListQuery, registry: FieldRegistry) -> dict[str, Any]:
    """Return the list's reply: total, page, per_page and the page's items."""
    return {
        "total": count_matching(query),
        "page": query.page,
        "per_page": query.per_page,
        "items": items(page_ids(query), registry),
    }
