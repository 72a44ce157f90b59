"""Trends from the daily snapshots: periods, last snapshot per period, categories, status."""

from __future__ import annotations

import json
from datetime import date

import msgspec
import pytest
import sqlalchemy as sa

from cephalopod.db import db
from cephalopod.instances.models import InstanceField
from cephalopod.stats import trend as trends
from cephalopod.stats.fields import FieldSpec, parse_field_settings
from cephalopod.stats.trend import period_label
from cephalopod.stats.values import MAX_DISPLAY_CHARS
from tests.stats.seeding import add_snapshots, insert_instances, instance_row

D = date.fromisoformat


def trend(*args, **kwargs):
    """The trend read function's typed row, in its JSON form (what these tests compare)."""
    return msgspec.to_builtins(trends.trend(*args, **kwargs))


SNAPSHOTS = [
    # (instance n, day, data); 1-3 enabled, 4 disabled
    (1, "2026-01-05", {"v": "1.0"}),  # Monday of ISO week 2
    (1, "2026-01-20", {"v": "1.1"}),
    (1, "2026-02-03", {"v": "1.1"}),
    (2, "2026-01-10", {"v": "1.0"}),
    (2, "2026-03-01", {"v": "2.0"}),  # nothing in February
    (3, "2026-01-31", {}),  # no value: Unknown
    (3, "2026-02-01", {"v": [1, 2]}),  # a list: Unknown, or 3 with aggregation "sum"
    (4, "2026-01-15", {"v": "9.9", "secret": 1}),
]


@pytest.fixture
def history(app):
    registry = parse_field_settings({})
    ids = insert_instances(app, [instance_row(n, enabled=n != 4) for n in (1, 2, 3, 4)], registry)
    add_snapshots(app, [(ids[n - 1], D(day), data) for n, day, data in SNAPSHOTS])


def series(result):
    return [(s["category"], s["counts"], s["percents"]) for s in result["series"]]


def test_monthly_trend_counts_each_instance_once_with_its_last_snapshot(app, history):
    with app.app_context():
        result = trend(FieldSpec("v", "Version"), "month")
    assert set(result) == {"field", "label", "interval", "periods", "series"}
    assert (result["field"], result["label"], result["interval"]) == ("v", "Version", "month")
    assert result["periods"] == ["2026-01", "2026-02", "2026-03"]
    assert series(result) == [
        ("1.1", [1, 1, 0], [33.33, 50.0, 0.0]),
        ("Unknown", [1, 1, 0], [33.33, 50.0, 0.0]),
        ("1.0", [1, 0, 0], [33.33, 0.0, 0.0]),
        ("2.0", [0, 0, 1], [0.0, 0.0, 100.0]),
    ]


def test_weekly_trend_keeps_empty_weeks_and_uses_the_field_aggregation(app, history):
    with app.app_context():
        result = trend(FieldSpec("v", "Version", aggregation="sum"), "week")
    assert result["periods"] == [f"2026-W{w:02d}" for w in range(2, 10)]
    assert series(result) == [
        ("1.0", [2, 0, 0, 0, 0, 0, 0, 0], [100.0, 0, 0, 0, 0, 0, 0, 0]),
        ("1.1", [0, 0, 1, 0, 1, 0, 0, 0], [0, 0, 100.0, 0, 100.0, 0, 0, 0]),
        ("2.0", [0, 0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 0, 0, 0, 100.0]),
        (3, [0, 0, 0, 1, 0, 0, 0, 0], [0, 0, 0, 100.0, 0, 0, 0, 0]),
    ]


def test_daily_trend_and_status(app, history):
    with app.app_context():
        everyone = trend(FieldSpec("v", "V"), "day", status="all")
        disabled = trend(FieldSpec("v", "V"), "day", status="disabled")
    assert everyone["periods"][0] == "2026-01-05"
    assert everyone["periods"][-1] == "2026-03-01"
    assert len(everyone["periods"]) == 56
    assert ("9.9", 1) in [(s["category"], sum(s["counts"])) for s in everyone["series"]]
    assert disabled["periods"] == ["2026-01-15"]
    assert series(disabled) == [("9.9", [1], [100.0])]


def test_active_instances_per_period(app, history):
    with app.app_context():
        result = trend(None, "month")
    assert (result["field"], result["label"]) == ("instances", "Active instances")
    assert series(result) == [("Active instances", [3, 2, 1], [100.0, 100.0, 100.0])]


def test_categories_keep_their_json_type(app):
    registry = parse_field_settings({})
    ids = insert_instances(app, [instance_row(n) for n in range(1, 6)], registry)
    values = [3, 3.0, "3", True, None]
    add_snapshots(app, [(i, D("2026-05-05"), {"v": v}) for i, v in zip(ids, values, strict=True)])
    with app.app_context():
        result = trend(FieldSpec("v", "V"), "month")
    typed = [(type(s["category"]).__name__, s["category"]) for s in result["series"]]
    assert typed == [("str", "3"), ("int", 3), ("float", 3.0), ("bool", True), ("str", "Unknown")]


def test_long_strings_are_cut_as_the_stored_display_values_are(app):
    registry = parse_field_settings({})
    long = "x" * 300
    ids = insert_instances(app, [instance_row(1, crawled_data={"v": long})], registry)
    add_snapshots(app, [(ids[0], D("2026-05-05"), {"v": long})])
    with app.app_context():
        stored = db.session.scalar(sa.select(InstanceField.value_text))
        (category,) = [s["category"] for s in trend(FieldSpec("v", "V"), "month")["series"]]
    assert category == json.loads(stored)
    assert category == "x" * (MAX_DISPLAY_CHARS - 1) + "…"


@pytest.mark.parametrize("name", ['we"ird', "dotted.name", "é", "with space"])
def test_any_field_name(app, name):
    ids = insert_instances(app, [instance_row(1), instance_row(2)], parse_field_settings({}))
    add_snapshots(
        app,
        [(ids[0], D("2026-05-05"), {name: "x", "o": 1}), (ids[1], D("2026-05-05"), {name: True})],
    )
    with app.app_context():
        assert series(trend(FieldSpec(name, "N"), "month")) == [
            ("x", [1], [50.0]),
            (True, [1], [50.0]),
        ]


def test_no_history(app):
    with app.app_context():
        assert trend(FieldSpec("v", "V"), "week") == {
            "field": "v",
            "label": "V",
            "interval": "week",
            "periods": [],
            "series": [],
        }


@pytest.mark.parametrize(
    ("start", "interval", "label"),
    [
        ("2024-12-30", "week", "2025-W01"),  # ISO weeks cross the year
        ("2026-01-05", "week", "2026-W02"),
        ("2026-12-01", "month", "2026-12"),
        ("2026-02-28", "day", "2026-02-28"),
    ],
)
def test_period_labels(start, interval, label):
    assert period_label(D(start), interval) == label
