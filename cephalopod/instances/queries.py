"""Reads of instances: the server list (filters, sort, page), an item, its detail and history,
and the registration protocol's summary of one record.

Every filter and sort is SQL. Sorting by a crawled field joins that field's stored display
value (``instance_fields``): numbers by ``value_num`` (numerically), then other values by
their JSON text, and instances without a value last in both orders. The page's ids come from
one query; its rows (with their duplicate mark) and display values from two small ones by id.
The functions return typed rows (``instances.rows``) and take what they need as arguments.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from cephalopod.audit.queries import instance_entries
from cephalopod.db import db
from cephalopod.instances.models import CRAWL_STATUSES, Instance, InstanceField, Snapshot
from cephalopod.instances.operations import parse_uuid
from cephalopod.instances.rows import (
    HistoryEntry,
    InstanceCounts,
    InstanceDetail,
    InstanceItem,
    InstancePage,
    InstanceSummary,
)
from cephalopod.instances.urls import is_local_address
from cephalopod.stats.fields import FieldRegistry
from cephalopod.stats.queries import status_filter

instances = Instance.__table__
fields_table = InstanceField.__table__
snapshots = Snapshot.__table__

SORTS = ("organization", "url", "contact", "email", "registered", "last_crawl", "country")
ORDERS = ("asc", "desc")
DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 500
HISTORY_DAYS = 90
_TEXT_SORTS = {
    "organization": instances.c.organization,
    "url": instances.c.url,
    "contact": instances.c.contact,
    "email": instances.c.email,
}


@dataclass(frozen=True)
class ListQuery:
    """The validated filters, sort and page of an instance list (see ``params.list_query``)."""

    status: str = "all"
    q: str = ""
    country: str | None = None
    health: str | None = None
    #: the last crawl's error, word for word (Home links each common error to its servers)
    error: str | None = None
    duplicates: bool = False
    sort: str = "organization"
    field: str | None = None
    order: str = "asc"
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE


# --- duplicates: one definition, in SQL ---------------------------------------------------------


def duplicate_keys() -> sa.Select[Any]:
    """Select the url_keys that more than one instance shares."""
    return sa.select(instances.c.url_key).group_by(instances.c.url_key).having(sa.func.count() > 1)


def _earliest_probe() -> sa.ScalarSelect[Any]:
    other = instances.alias("earliest")
    return (
        sa.select(other.c.uuid)
        .where(other.c.url_key == instances.c.url_key)
        .order_by(other.c.registered_at, other.c.id)
        .limit(1)
        .scalar_subquery()
    )


def earliest_registered() -> sa.ColumnElement[Any]:
    """A column: the uuid of the earliest registered instance with this row's url_key.

    The row's own uuid when no earlier instance shares its key (``duplicate_of`` turns that
    into None). One probe of the ``url_key`` index per row: for a page of rows.
    """
    return _earliest_probe().label("earliest")


def earliest_if_duplicate() -> sa.ColumnElement[Any]:
    """``earliest_registered`` for reads of many rows: NULL where no other row shares the key.

    The shared keys are found once (``duplicate_keys``: one grouped pass over the url_key
    index, kept by the database as a hashed set), so only duplicates probe the index; the
    same ``duplicate_of`` follows, since a key nobody shares has no earlier instance.
    """
    shared = instances.c.url_key.in_(duplicate_keys())
    return sa.case((shared, _earliest_probe()), else_=sa.null()).label("earliest")


def duplicate_of(uuid: Any, earliest: Any) -> Any:
    """Return the instance this one duplicates (``earliest_registered``'s value), or None."""
    return None if earliest is None or earliest == uuid else earliest


# --- the list's SQL -----------------------------------------------------------------------------


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
    if query.error is not None:
        clauses.append(instances.c.crawl_status == "error")
        clauses.append(instances.c.crawl_error == query.error)
    if query.duplicates:
        clauses.append(instances.c.url_key.in_(duplicate_keys()))
    return clauses


def _directed(expression: sa.ColumnElement[Any], order: str) -> sa.ColumnElement[Any]:
    return expression.desc() if order == "desc" else expression.asc()


def _missing_last(is_missing: sa.ColumnElement[bool]) -> sa.ColumnElement[Any]:
    return sa.case((is_missing, 1), else_=0).asc()


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


def count_matching(query: ListQuery) -> int:
    """Count the instances that match the filters."""
    select = sa.select(sa.func.count()).select_from(instances).where(*filters(query))
    return db.session.scalar(select) or 0


def instance_counts() -> InstanceCounts:
    """Count the installed base in one grouped query (registered, active, per crawl health).

    One pass over the (crawl_status, enabled) index alone, at most six groups, instead of
    a count per number; each number is ``count_matching`` of the list filter it links to.
    """
    group = (instances.c.crawl_status, instances.c.enabled)
    select = sa.select(*group, sa.func.count()).group_by(*group)
    registered = active = 0
    health = dict.fromkeys(CRAWL_STATUSES, 0)
    for status, enabled, count in db.session.execute(select):
        registered += count
        active += count if enabled else 0
        health[status] = health.get(status, 0) + count
    return InstanceCounts(
        registered=registered,
        active=active,
        ok=health["ok"],
        error=health["error"],
        never=health["never"],
    )


def page_ids(query: ListQuery) -> list[int]:
    """Return the ids of the requested page, in order."""
    select = ordered(sa.select(instances.c.id).where(*filters(query)), query)
    select = select.limit(query.per_page).offset((query.page - 1) * query.per_page)
    return list(db.session.scalars(select))


# --- rows ---------------------------------------------------------------------------------------


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


def item_fields(row: Any, stored: Mapping[str, Any], registry: FieldRegistry) -> dict[str, Any]:
    """Every visible crawled field, with its display value or None (not displayable)."""
    names = set(stored)
    if isinstance(row.crawled_data, Mapping):
        names.update(name for name in row.crawled_data if not registry.is_hidden(name))
    return {name: stored.get(name) for name in sorted(names)}


def _item(row: Any, fields: dict[str, Any]) -> InstanceItem:
    """Build the item of a row that has the instances columns and ``earliest``."""
    return InstanceItem(
        uuid=row.uuid,
        url=row.url,
        organization=row.organization,
        contact=row.contact,
        email=row.email,
        enabled=bool(row.enabled),
        registered=row.registered_at,
        last_crawl=row.last_crawl_at,
        last_success=row.last_success_at,
        crawl_status=row.crawl_status,
        crawl_error=row.crawl_error,
        consecutive_failures=row.consecutive_failures,
        country_code=row.country_code,
        country_name=row.country_name,
        latitude=row.latitude,
        longitude=row.longitude,
        duplicate_of=duplicate_of(row.uuid, row.earliest),
        local_address=is_local_address(row.url),
        fields=fields,
    )


def items(ids: Sequence[int], registry: FieldRegistry) -> list[InstanceItem]:
    """Return the items of the instances with these ids, in this order."""
    if not ids:
        return []
    select = sa.select(instances, earliest_registered()).where(instances.c.id.in_(ids))
    rows = {row.id: row for row in db.session.execute(select)}
    stored = display_values(ids, registry)
    return [_item(rows[i], item_fields(rows[i], stored[i], registry)) for i in ids if i in rows]


def list_instances(query: ListQuery, registry: FieldRegistry) -> InstancePage:
    """Return the list's page: the number of matching instances and the page's items."""
    return InstancePage(
        total=count_matching(query),
        page=query.page,
        per_page=query.per_page,
        items=items(page_ids(query), registry),
    )


def instance_item(instance_id: int, registry: FieldRegistry) -> InstanceItem | None:
    """Return one instance's item (None when it does not exist)."""
    found = items([instance_id], registry)
    return found[0] if found else None


def history(instance_id: int, registry: FieldRegistry) -> list[HistoryEntry]:
    """Return the instance's daily snapshots, newest first, at most ``HISTORY_DAYS``."""
    select = (
        sa.select(snapshots.c.day, snapshots.c.data)
        .where(snapshots.c.instance_id == instance_id)
        .order_by(snapshots.c.day.desc())
        .limit(HISTORY_DAYS)
    )
    return [
        HistoryEntry(date=day, data=registry.visible(data or {}))
        for day, data in db.session.execute(select)
    ]


def instance_detail(instance_id: int, registry: FieldRegistry) -> InstanceDetail | None:
    """Return an instance with its raw crawled data and its history (hidden fields removed)."""
    select = sa.select(instances, earliest_registered()).where(instances.c.id == instance_id)
    row = db.session.execute(select).first()
    if row is None:
        return None
    item = _item(
        row, item_fields(row, display_values([instance_id], registry)[instance_id], registry)
    )
    data = row.crawled_data
    return InstanceDetail(
        **{name: getattr(item, name) for name in InstanceItem.__struct_fields__},
        crawled_data=registry.visible(data) if isinstance(data, dict) else None,
        history=history(instance_id, registry),
        audit=instance_entries(row.uuid),
    )


_SUMMARY = sa.select(
    instances.c.uuid,
    instances.c.enabled,
    instances.c.url,
    instances.c.contact,
    instances.c.email,
    instances.c.organization,
    instances.c.registered_at.label("registered"),
).where(instances.c.uuid == sa.bindparam("uuid"))  # built once: no statement per request


def instance_summary(value: str) -> InstanceSummary | None:
    """The protocol's summary of the instance with this UUID (given as text), or None.

    The most frequent request of an installed base, so it costs one round trip: the seven
    columns it shows (not the crawled data), on a connection of its own in autocommit (no
    BEGIN, no ROLLBACK).
    """
    parsed = parse_uuid(value)
    if parsed is None:
        return None
    connection = db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    with connection:
        row = connection.execute(_SUMMARY, {"uuid": parsed}).one_or_none()
    return None if row is None else InstanceSummary(**row._mapping)
