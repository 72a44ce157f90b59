"""The statistics, computed in the database over ``instances`` ⨝ ``instance_fields``.

Each function agrees with the reference in ``stats.aggregate`` (``naive_chart``,
``naive_countries``) on the same data, and the tests hold them to it on SQLite and PostgreSQL.
How that agreement is kept:

- Counting and grouping are ``GROUP BY`` over the stored display values (``value_text``, the
  JSON text, so ``3``, ``3.0``, ``"3"`` and ``true`` stay apart); categories are decoded with
  ``join_display`` and ranked in Python (a few rows per chart) with the reference's own order.
- Numeric aggregation runs over ``value_num`` and also counts, per group, how many members
  are floats (their JSON text has ``.`` or ``e``): a sum of ints is an int, an average a float,
  min and max keep the member's type. When floats cannot be exact (an int member beyond
  2**53, or beyond the float range so it has no ``value_num``), that chart is aggregated from
  the fetched values instead, with the reference's exact arithmetic. Float sums are summed by
  the database in its own order, so they may differ from ``math.fsum`` in the last bits when
  large terms cancel.

A page of statistics is a handful of queries: all count charts share one pass over
``instance_fields``; each other chart is one grouped join.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from cephalopod.db import db
from cephalopod.instances.models import Instance, InstanceField
from cephalopod.services import services
from cephalopod.stats.aggregate import (
    ChartEntry,
    CountryEntry,
    _ranked,
    aggregate,
    fold_countries,
    is_number,
    split_display,
)
from cephalopod.stats.cache import DataState, cached, cached_registry, data_state
from cephalopod.stats.fields import (
    COUNTRY,
    FieldRegistry,
    FieldSpec,
    default_spec,
)
from cephalopod.stats.rows import Chart, ChartPoint, CountryShare, RegistrationDay, Statistics

STATUSES = ("all", "enabled", "disabled")
#: Beyond this an int's float (value_num) may not be exact.
EXACT_LIMIT = 2.0**53
AGGREGATION_NAMES = {"sum": "Sum", "avg": "Average", "min": "Minimum", "max": "Maximum"}

instances = Instance.__table__
fields_table = InstanceField.__table__


def field_registry() -> FieldRegistry:
    """Shim (removed at merge): the registry parsed once at startup, ``services().settings``."""
    return services().settings.fields


def status_filter(status: str) -> ColumnElement[bool]:
    """Return the WHERE clause of a status (all, enabled, disabled)."""
    if status == "enabled":
        return instances.c.enabled == sa.true()
    if status == "disabled":
        return instances.c.enabled == sa.false()
    if status == "all":
        return sa.true()
    raise ValueError(f"unknown status {status!r}")


def hinted(clause: ColumnElement[bool], share: float | None) -> ColumnElement[bool]:
    """Tell SQLite's planner how many rows pass ``clause`` (it keeps no such statistics).

    Without it SQLite guesses half of the instances are disabled and scans every value of a
    field to probe them; told that 5 % are, it starts from those few. PostgreSQL knows.
    """
    if share is None or db.engine.dialect.name != "sqlite":
        return clause
    return sa.func.likelihood(clause, sa.literal_column(f"{min(max(share, 0.0), 1.0):.4f}"))


def known_field(name: str, registry: FieldRegistry) -> bool:
    """Tell whether a visible crawled field is configured or has a display value somewhere."""
    if registry.is_hidden(name):
        return False
    if registry.spec(name) != default_spec(name):
        return True  # configured: a field no instance reports yet is not a typo
    query = sa.select(fields_table.c.field).where(fields_table.c.field == name).limit(1)
    return db.session.execute(query).first() is not None


# --- counts, countries, registrations ---------------------------------------------------------


def instance_counts() -> tuple[int, int]:
    """Return (all registered instances, enabled ones)."""
    query = sa.select(
        sa.func.count(),
        sa.func.coalesce(sa.func.sum(sa.case((instances.c.enabled == sa.true(), 1), else_=0)), 0),
    ).select_from(instances)
    total, enabled = db.session.execute(query).one()
    return int(total), int(enabled)


def countries(status: str = "enabled") -> list[CountryEntry]:
    """Count instances per country (code, name, count, percent of the counted instances)."""
    query = (
        sa.select(instances.c.country_code, instances.c.country_name, sa.func.count())
        .where(status_filter(status))
        .group_by(instances.c.country_code, instances.c.country_name)
    )
    return countries_from_groups(db.session.execute(query).all())


def countries_from_groups(groups: Iterable[Sequence[Any]]) -> list[CountryEntry]:
    """Fold (code, name, count) groups the way ``naive_countries`` folds single rows."""
    return fold_countries((code, name, count) for code, name, count in groups)


def utc_day(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """Return the UTC calendar day of a timestamp column, as the dialect can group it."""
    if db.engine.dialect.name == "postgresql":
        return sa.cast(sa.func.timezone("UTC", column), sa.Date)
    # SQLite keeps UTC as 'YYYY-MM-DD HH:MM:SS[.ffffff]' text (see db.UTCDateTime)
    return sa.func.substr(column, 1, 10)


def registrations() -> list[RegistrationDay]:
    """Count registrations per UTC day with the running total, over all instances."""
    day = utc_day(instances.c.registered_at).label("day")
    query = sa.select(day, sa.func.count()).group_by(day).order_by(day)
    result = []
    total = 0
    for value, count in db.session.execute(query):
        total += count
        moment = value if isinstance(value, date) else date.fromisoformat(str(value))
        result.append(RegistrationDay(date=moment, count=count, total=total))
    return result


# --- charts -------------------------------------------------------------------------------------


def is_numeric(text: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
    """Tell whether a stored value_text is a JSON number (not a string or a boolean)."""
    return sa.func.substr(text, 1, 1).not_in(('"', "t", "f"))


def is_float_text(text: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
    """Tell whether a JSON number's text is a float: Python's repr always has '.' or 'e'."""
    find = sa.func.strpos if db.engine.dialect.name == "postgresql" else sa.func.instr
    return (find(text, ".") + find(text, "e")) > 0


@dataclass
class _Group:
    """One group's aggregates as the database returns them (see ``_aggregates``)."""

    count: int
    with_num: int
    floats: int
    first: float | None  # sum, or the min/max of the int members
    second: float | None  # sum of absolute values, or the min/max of the float members
    largest_int: float | None = None  # min/max only: the largest absolute int member


class _InexactError(Exception):
    """The float columns cannot give the reference's exact answer for this chart."""


def _aggregates(
    value_text: sa.ColumnElement[Any], value_num: sa.ColumnElement[Any], how: str
) -> list[Any]:
    floats = is_float_text(value_text)
    common = [
        sa.func.count(),
        sa.func.count(value_num),
        sa.func.coalesce(sa.func.sum(sa.case((floats, 1), else_=0)), 0),
    ]
    if how in ("sum", "avg"):
        return [*common, sa.func.sum(value_num), sa.func.sum(sa.func.abs(value_num))]
    pick = sa.func.min if how == "min" else sa.func.max
    as_int = sa.case((floats, None), else_=value_num)
    as_float = sa.case((floats, value_num), else_=None)
    return [*common, pick(as_int), pick(as_float), sa.func.max(sa.func.abs(as_int))]


def _combine(group: _Group, how: str) -> int | float | None:
    if group.with_num < group.count:
        raise _InexactError  # an int beyond the float range: only the exact path knows it
    only_ints = group.floats == 0
    if how in ("sum", "avg"):
        if only_ints and (group.second or 0.0) >= EXACT_LIMIT:
            raise _InexactError  # a partial sum of ints may have left the exact range
        assert group.first is not None
        if how == "avg":
            return group.first / group.count
        return int(group.first) if only_ints else group.first
    if (group.largest_int or 0.0) >= EXACT_LIMIT:
        raise _InexactError  # such an int's float is not the int
    candidates: list[int | float] = []
    if group.first is not None:
        candidates.append(int(group.first))
    if group.second is not None:
        candidates.append(group.second)
    if not candidates:
        return None
    return min(candidates) if how == "min" else max(candidates)


def _category_column(spec: FieldSpec) -> tuple[sa.ColumnElement[Any], Any]:
    """Return the grouping column of an aggregated chart and the join it needs (or None)."""
    if spec.chart_aggregate_by == COUNTRY:
        return sa.func.nullif(instances.c.country_name, ""), None
    by = fields_table.alias("by_field")
    return by.c.value_text, by


def _grouped_source(spec: FieldSpec, status: str) -> tuple[Any, sa.ColumnElement[Any], Any]:
    value = fields_table.alias("value_field")
    category, by = _category_column(spec)
    source = value.join(instances, instances.c.id == value.c.instance_id)
    if by is not None:
        source = source.outerjoin(
            by,
            sa.and_(by.c.instance_id == value.c.instance_id, by.c.field == spec.chart_aggregate_by),
        )
    where = sa.and_(
        value.c.field == spec.name, is_numeric(value.c.value_text), status_filter(status)
    )
    return source, category, (value, where)


def _category_key(spec: FieldSpec, category: str | None) -> str | None:
    if category is None:
        return None
    if spec.chart_aggregate_by == COUNTRY:
        return split_display(category)[0]  # the reference groups on the name's JSON text
    return category


def aggregated_chart(spec: FieldSpec, status: str = "enabled") -> list[ChartEntry]:
    """Group by country or another field and apply sum/avg/min/max to numeric display values."""
    source, category, (value, where) = _grouped_source(spec, status)
    query = (
        sa.select(
            category, *_aggregates(value.c.value_text, value.c.value_num, spec.chart_aggregation)
        )
        .select_from(source)
        .where(where)
        .group_by(category)
    )
    results: dict[str | None, int | float] = {}
    try:
        for row in db.session.execute(query):
            number = _combine(_Group(*row[1:]), spec.chart_aggregation)
            if number is not None:
                results[_category_key(spec, row[0])] = number
    except _InexactError:
        return _exact_chart(spec, status)
    return _ranked(results)


def _exact_chart(spec: FieldSpec, status: str) -> list[ChartEntry]:
    """Aggregate one chart from the fetched values with the reference's exact arithmetic."""
    source, category, (value, where) = _grouped_source(spec, status)
    query = sa.select(category, value.c.value_text).select_from(source).where(where)
    groups: dict[str | None, list[int | float]] = {}
    for name, text in db.session.execute(query).yield_per(5000):
        number = json.loads(text)
        if is_number(number):
            groups.setdefault(_category_key(spec, name), []).append(number)
    results = {key: aggregate(numbers, spec.chart_aggregation) for key, numbers in groups.items()}
    return _ranked({key: value for key, value in results.items() if value is not None})


def _value_counts(
    names: Sequence[str], status: str, share: float | None = None
) -> dict[tuple[str, str], int]:
    """Count instance_fields rows per (field, value_text) among the instances of a status."""
    if (
        status != "all"
        and share is not None
        and share <= FEW
        and db.engine.dialect.name == "postgresql"
    ):
        return _few_value_counts(names, status)
    group = (fields_table.c.field, fields_table.c.value_text)
    query = sa.select(*group, sa.func.count()).where(fields_table.c.field.in_(names))
    if status != "all":
        query = query.join(instances, instances.c.id == fields_table.c.instance_id).where(
            hinted(status_filter(status), share)
        )
    return {(name, text): count for name, text, count in db.session.execute(query.group_by(*group))}


#: A status this small a share of the instances is counted instance by instance (PostgreSQL).
FEW = 0.2


def _few_value_counts(names: Sequence[str], status: str) -> dict[tuple[str, str], int]:
    """``_value_counts`` of a status that few instances have: their values by primary key.

    PostgreSQL's planner, which prices every index probe as a disk read, would read all the
    fields' rows and hash-join them with these few instances; the values of each instance,
    looked up by its key (a LATERAL subquery kept apart by ``OFFSET 0``), cost a fraction.
    """
    values = (
        sa.select(fields_table.c.field, fields_table.c.value_text)
        .where(fields_table.c.instance_id == instances.c.id, fields_table.c.field.in_(names))
        .offset(0)
        .lateral("status_values")
    )
    group = (values.c.field, values.c.value_text)
    query = (
        sa.select(*group, sa.func.count())
        .select_from(instances)
        .join(values, sa.true())
        .where(status_filter(status))
        .group_by(*group)
    )
    return {(name, text): count for name, text, count in db.session.execute(query)}


def count_charts(
    specs: Sequence[FieldSpec], status: str = "enabled", counts: tuple[int, int] | None = None
) -> dict[str, list[ChartEntry]]:
    """Count instances per display value for several fields in one pass (no value: Unknown).

    The counts of all instances come from the ``(field, value_text)`` index alone; a status
    subtracts the other side's counts when that side is the smaller one (usually few
    instances are disabled), so the join with ``instances`` stays small. ``counts`` is
    ``instance_counts()`` when the caller has it already.
    """
    if not specs:
        return {}
    names = [spec.name for spec in specs]
    total, enabled = counts or instance_counts()
    counted = {"all": total, "enabled": enabled, "disabled": total - enabled}[status]
    other = {"enabled": "disabled", "disabled": "enabled"}.get(status)
    share = counted / total if total else None
    if other is not None and counted > total - counted:
        values = _value_counts(names, "all")
        for key, count in _value_counts(names, other, 1 - share if share else None).items():
            values[key] -= count
    else:
        values = _value_counts(names, status, share)
    per_field: dict[str, dict[str | None, int]] = {name: {} for name in names}
    for (name, text), count in values.items():
        if count:
            per_field[name][text] = count
    for field_counts in per_field.values():
        unknown = max(0, counted - sum(field_counts.values()))  # a write between queries
        if unknown:
            field_counts[None] = unknown
    return {name: _ranked(field_counts) for name, field_counts in per_field.items()}


def chart_labels(spec: FieldSpec, registry: FieldRegistry) -> tuple[str, str]:
    """Return the (x, y) axis labels of a field's chart."""
    if spec.chart_aggregation == "count":
        return spec.label, "Instances"
    by = spec.chart_aggregate_by
    x_label = "Country" if by == COUNTRY else registry.spec(by).label
    return x_label, f"{AGGREGATION_NAMES[spec.chart_aggregation]} of {spec.label}"


def charts(
    registry: FieldRegistry,
    status: str = "enabled",
    totals: tuple[int, int] | None = None,
    reported: Sequence[str] | None = None,
) -> list[Chart]:
    """Return every configured chart of a field some instance reports, in settings order.

    A configured field that no instance reports (no display value anywhere) is ignored, as a
    name that matches no crawled field; ``reported`` is ``stored_field_names`` when the caller
    has it, ``totals`` as from ``instance_counts``.
    """
    names = set(stored_field_names(registry) if reported is None else reported)
    specs = [spec for spec in registry.charted() if spec.name in names]
    counts = count_charts([s for s in specs if s.chart_aggregation == "count"], status, totals)
    result = []
    for spec in specs:
        is_count = spec.chart_aggregation == "count"
        x_label, y_label = chart_labels(spec, registry)
        data = counts[spec.name] if is_count else aggregated_chart(spec, status)
        result.append(
            Chart(
                field=spec.name,
                label=spec.label,
                type=spec.chart_type,
                aggregation=spec.chart_aggregation,
                aggregate_by=None if is_count else spec.chart_aggregate_by,
                x_label=x_label,
                y_label=y_label,
                data=[ChartPoint(category=p["category"], value=p["value"]) for p in data],
            )
        )
    return result


def chart(spec: FieldSpec, status: str = "enabled") -> list[ChartEntry]:
    """Return one field's chart data ([{"category", "value"}]), as ``naive_chart`` would."""
    if spec.chart_aggregation == "count":
        return count_charts([spec], status)[spec.name]
    return aggregated_chart(spec, status)


def statistics(
    registry: FieldRegistry, status: str = "enabled", state: DataState | None = None
) -> Statistics:
    """Return the statistics page's numbers: counts, countries, registrations and charts.

    With the cache's ``state``, the counts and registrations (which no crawl changes) come
    from the cache when only crawled data changed.
    """
    if db.engine.dialect.name == "postgresql":
        # for the rest of this transaction: a plan that counts per instance looks expensive
        # enough for JIT compilation, which costs more than the query it would speed up
        db.session.execute(sa.text("SELECT set_config('jit', 'off', true)"))
    if state is None:
        (total, enabled), days = instance_counts(), registrations()
    else:
        total, enabled = cached_registry("instance_counts", instance_counts, state)
        days = cached_registry("registrations", registrations, state)
    return Statistics(
        instances=total,
        active=enabled,
        countries=[CountryShare(**share) for share in countries(status)],
        registrations=days,
        charts=charts(registry, status, (total, enabled)),
    )


def cached_statistics(registry: FieldRegistry, status: str = "enabled") -> Statistics:
    """Return ``statistics``, cached until the data or the settings change."""
    state = data_state()
    return cached(
        "statistics",
        (registry.fingerprint(), status),
        lambda: statistics(registry, status, state),
        state,
    )


def stored_field_names(registry: FieldRegistry) -> list[str]:
    """Return the visible fields that have a display value somewhere, sorted by name.

    A recursive "skip scan" over the (field, ...) index: one index probe per distinct field
    instead of reading every row.
    """
    names = sa.select(sa.func.min(fields_table.c.field).label("name")).cte("names", recursive=True)
    following = sa.select(
        sa.select(sa.func.min(fields_table.c.field))
        .where(fields_table.c.field > names.c.name)
        .scalar_subquery()
    ).where(names.c.name.is_not(None))
    names = names.union_all(following)
    query = sa.select(names.c.name).where(names.c.name.is_not(None))
    return sorted(name for name in db.session.scalars(query) if not registry.is_hidden(name))
