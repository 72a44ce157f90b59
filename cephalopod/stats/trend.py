"""How a field's distribution moved over time, from the daily crawl snapshots.

Per period (day, ISO week or month) each instance counts once, with its last snapshot in that
period. The database picks those snapshots, extracts the field's JSON text and counts per
(period, text); Python turns each distinct text into its display value (the field's current
``aggregation``, so history and today's charts agree) and merges the categories. Periods
without any snapshot between the first and the last are kept, with zero counts.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any, get_args

import sqlalchemy as sa

from cephalopod.db import db
from cephalopod.instances.models import Instance, Snapshot
from cephalopod.stats.aggregate import UNKNOWN, display_value, join_display
from cephalopod.stats.fields import FieldRegistry, FieldSpec
from cephalopod.stats.queries import status_filter
from cephalopod.stats.rows import Trend, TrendInterval, TrendSeries
from cephalopod.stats.values import display_text

INTERVALS: tuple[TrendInterval, ...] = get_args(TrendInterval)  # day, week, month
#: The pseudo-field of the number of active (crawled) instances per period.
INSTANCES = "instances"
ACTIVE = "Active instances"

snapshots = Snapshot.__table__
instances = Instance.__table__


def period_start(day: sa.ColumnElement[Any], interval: str) -> sa.ColumnElement[Any]:
    """Return the first day of the period containing ``day``, as the dialect computes it."""
    postgres = db.engine.dialect.name == "postgresql"
    if interval == "day":
        return day
    if interval == "week":  # ISO weeks start on Monday
        if postgres:
            return sa.cast(sa.func.date_trunc("week", day), sa.Date)
        return sa.func.date(day, "-6 days", "weekday 1")
    if interval == "month":
        if postgres:
            return sa.cast(sa.func.date_trunc("month", day), sa.Date)
        return sa.func.date(day, "start of month")
    raise ValueError(f"unknown interval {interval!r}")


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def period_label(start: date, interval: str) -> str:
    """Name a period: 2026-01-31, 2026-W05 or 2026-01."""
    if interval == "week":
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    if interval == "month":
        return start.strftime("%Y-%m")
    return start.isoformat()


def _next_period(start: date, interval: str) -> date:
    if interval == "day":
        return start + timedelta(days=1)
    if interval == "week":
        return start + timedelta(days=7)
    return date(start.year + start.month // 12, start.month % 12 + 1, 1)


def _field_text(name: str) -> sa.ColumnElement[Any]:
    """Return the field's JSON text in a snapshot's data (NULL when absent)."""
    data = snapshots.c.data
    if db.engine.dialect.name == "postgresql":
        return sa.cast(data.op("->", return_type=sa.Text)(sa.literal(name, sa.Text)), sa.Text)
    if name.isascii() and name.isprintable() and '"' not in name and "\\" not in name:
        # '->' gives the member's JSON text as stored, so 3, 3.0 and "3" stay apart
        return data.op("->", return_type=sa.Text)(sa.literal(f'$."{name}"', sa.Text))
    # a JSON path cannot quote '"', and matches keys as stored (json.dumps escapes non-ASCII):
    # look the key up among the members, whose keys json_each unescapes
    member = sa.func.json_each(data).table_valued("key", "value", "type").alias("member")
    text = sa.case(
        (member.c.type.in_(("true", "false")), member.c.type),
        else_=sa.func.json_quote(member.c.value),
    )
    return sa.select(text).where(member.c.key == name).limit(1).scalar_subquery()


def _last_snapshots(interval: str, status: str) -> sa.Subquery:
    """Each instance's last snapshot day per period, among the instances of a status."""
    start = period_start(snapshots.c.day, interval).label("period")
    query = (
        sa.select(snapshots.c.instance_id, start, sa.func.max(snapshots.c.day).label("day"))
        .group_by(snapshots.c.instance_id, start)
        .where(snapshots.c.instance_id.in_(sa.select(instances.c.id).where(status_filter(status))))
    )
    return query.subquery("last")


def _periods(starts: set[date], interval: str) -> list[date]:
    if not starts:
        return []
    periods = [min(starts)]
    end = max(starts)
    while periods[-1] < end:
        periods.append(_next_period(periods[-1], interval))
    return periods


def trend(
    spec: FieldSpec | None, interval: TrendInterval = "month", status: str = "enabled"
) -> Trend:
    """Return the field's count distribution per period, or active instances with spec None."""
    last = _last_snapshots(interval, status)
    if spec is None:
        query = sa.select(last.c.period, sa.null(), sa.func.count()).group_by(last.c.period)
    else:
        text = _field_text(spec.name).label("text")
        joined = last.join(
            snapshots,
            sa.and_(snapshots.c.instance_id == last.c.instance_id, snapshots.c.day == last.c.day),
        )
        query = (
            sa.select(last.c.period, text, sa.func.count())
            .select_from(joined)
            .group_by(last.c.period, text)
        )
    counts: dict[date, dict[str | None, int]] = {}
    decoded: dict[str | None, str | None] = {}
    for start, raw, count in db.session.execute(query):
        period = counts.setdefault(_as_date(start), {})
        key = None if spec is None else _category(raw, spec, decoded)
        period[key] = period.get(key, 0) + count
    periods = _periods(set(counts), interval)
    totals = [sum(counts.get(p, {}).values()) for p in periods]
    overall: dict[str | None, int] = {}
    for per_period in counts.values():
        for key, count in per_period.items():
            overall[key] = overall.get(key, 0) + count
    # the order of the charts: largest first, ties by stored text, Unknown last
    ranked = sorted(overall.items(), key=lambda item: (-item[1], item[0] is None, item[0] or ""))
    series = []
    for key, _total in ranked:
        values = [counts.get(p, {}).get(key, 0) for p in periods]
        if spec is None:
            category: Any = ACTIVE
        else:
            category = UNKNOWN if key is None else join_display(key)
        percents = [
            round(100 * v / t, 2) if t else 0.0 for v, t in zip(values, totals, strict=True)
        ]
        series.append(TrendSeries(category=category, counts=values, percents=percents))
    return Trend(
        field=INSTANCES if spec is None else spec.name,
        label=ACTIVE if spec is None else spec.label,
        interval=interval,
        periods=[period_label(p, interval) for p in periods],
        series=series,
    )


def _category(raw: str | None, spec: FieldSpec, decoded: dict[str | None, str | None]) -> Any:
    """Map a snapshot's JSON text to the stored text of its display value (None: Unknown).

    The same text as the instance's display value would be (long strings cut alike), so
    that a trend's categories are the list's and the charts'.
    """
    if raw not in decoded:
        try:
            value = None if raw is None else json.loads(raw)
        except ValueError:
            value = None
        decoded[raw] = display_text(display_value(value, spec))
    return decoded[raw]


def trend_field(name: str, registry: FieldRegistry) -> FieldSpec | None:
    """Return the spec a trend of ``name`` uses (None for the instances pseudo-field)."""
    return None if name == INSTANCES else registry.spec(name)
