"""The statistics and the trend, declared once: the rows their read functions return.

The JSON API serializes them, the HTML pages render them and the OpenAPI document's
component schemas are generated from them (``msgspec.json.schema_components``).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

import msgspec

from cephalopod.instances.rows import DisplayValue
from cephalopod.stats.fields import ChartAggregation, ChartType

#: stats.trend.INTERVALS are its values (trend imports this module)
TrendInterval = Literal["day", "week", "month"]


class CountryShare(msgspec.Struct, frozen=True, kw_only=True):
    """The instances of one country (unknown location: code None, name Unknown)."""

    code: str | None
    name: str
    count: int
    percent: Annotated[float, msgspec.Meta(description="Of the counted instances.")]


class RegistrationDay(msgspec.Struct, frozen=True, kw_only=True):
    """The registrations of one UTC day, and the running total."""

    date: date
    count: int
    total: int


class ChartPoint(msgspec.Struct, frozen=True, kw_only=True):
    """One bar, point or slice of a chart."""

    category: DisplayValue
    value: int | float


class Chart(msgspec.Struct, frozen=True, kw_only=True):
    """A chart configured in CRAWLED_FIELDS_SETTINGS, with its data."""

    field: str
    label: str
    type: ChartType
    aggregation: ChartAggregation
    aggregate_by: Annotated[
        str | None, msgspec.Meta(description="'country' or a field name; null for count charts.")
    ]
    x_label: str
    y_label: str
    data: Annotated[
        list[ChartPoint],
        msgspec.Meta(
            description="Largest value first; a category keeps its JSON type; "
            "'Unknown' for instances without a value."
        ),
    ]


class Statistics(msgspec.Struct, frozen=True, kw_only=True):
    """The statistics page's numbers."""

    instances: Annotated[int, msgspec.Meta(description="All registered instances.")]
    active: Annotated[int, msgspec.Meta(description="Enabled instances.")]
    countries: Annotated[
        list[CountryShare],
        msgspec.Meta(description="Count descending; unknown location: code null, name Unknown."),
    ]
    registrations: Annotated[
        list[RegistrationDay],
        msgspec.Meta(description="Per UTC day, over all instances; total is cumulative."),
    ]
    charts: Annotated[
        list[Chart],
        msgspec.Meta(
            description="Every configured chart, in settings order, of a field that some "
            "instance reports (a field no instance reports has no chart)."
        ),
    ]


class TrendSeries(msgspec.Struct, frozen=True, kw_only=True):
    """One category's counts and shares, one per period."""

    category: DisplayValue
    counts: list[int]
    percents: list[float]


class Trend(msgspec.Struct, frozen=True, kw_only=True):
    """How a field's distribution (or the number of active instances) moved per period."""

    field: str
    label: str
    interval: TrendInterval
    periods: Annotated[
        list[str],
        msgspec.Meta(description="2026-01-31 (day), 2026-W05 (ISO week) or 2026-01 (month)."),
    ]
    series: list[TrendSeries]
