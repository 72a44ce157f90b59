"""The SQL statistics against hand-computed expectations and the reference, on both databases."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from msgspec import to_builtins

from cephalopod.db import db
from cephalopod.instances.models import InstanceField
from cephalopod.stats import queries
from cephalopod.stats.aggregate import naive_chart, naive_countries
from cephalopod.stats.fields import FieldSpec, parse_field_settings
from cephalopod.stats.refresh import (
    recompute_display_values,
    refresh_display_values_if_stale,
    stored_fingerprint,
)
from tests.stats.cases import AGGREGATED_CASES, GROUP_ROWS
from tests.stats.seeding import fleet, insert_instances, instance_row


def typed(value):
    return type(value).__name__, value


def points(pairs):
    """Type every (category, value), so 3 cannot pass for 3.0, "3" or True."""
    return [(typed(category), typed(value)) for category, value in pairs]


def got(chart):
    return points((p["category"], p["value"]) for p in chart)


@pytest.fixture
def registry():
    return parse_field_settings({"cores": {"aggregation": "sum"}, "secret": None})


@pytest.fixture
def app(make_app):
    return make_app(CRAWLED_FIELDS_SETTINGS={"cores": {"aggregation": "sum"}, "secret": None})


def spec(**options):
    return FieldSpec("v", "V", **options)


# --- count charts -------------------------------------------------------------------------------

COUNT_ROWS = [
    ("France", {"v": "3.11"}),
    ("France", {"v": "3.11"}),
    ("Italy", {"v": 3}),
    (None, {"v": "3"}),
    ("Spain", {}),  # no such field: Unknown
    ("Spain", None),  # never crawled: Unknown
    ("Italy", {"v": True}),
    ("Italy", {"v": 1}),
    ("Chile", {"v": [1, 2]}),  # a list without aggregation: Unknown
    ("Chile", {"v": None}),  # JSON null: Unknown
    ("Peru", {"v": 3.0}),  # a float is not the int 3
]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        # ties by stored JSON text in code-point order: '"3"' < '1' < '3' < '3.0' < 'true'
        ({}, [("Unknown", 4), ("3.11", 2), ("3", 1), (1, 1), (3, 1), (3.0, 1), (True, 1)]),
        # chart_aggregate_by means nothing to a count chart
        ({"chart_aggregate_by": "cores"},
         [("Unknown", 4), ("3.11", 2), ("3", 1), (1, 1), (3, 1), (3.0, 1), (True, 1)]),
        # the field's own aggregation makes [1, 2] the int 3
        ({"aggregation": "sum"},
         [("Unknown", 3), ("3.11", 2), (3, 2), ("3", 1), (1, 1), (3.0, 1), (True, 1)]),
        ({"aggregation": "avg"},
         [("Unknown", 3), ("3.11", 2), ("3", 1), (1, 1), (1.5, 1), (3, 1), (3.0, 1), (True, 1)]),
    ],
)  # fmt: skip
def test_count_chart(app, options, expected):
    registry = parse_field_settings({"v": options})
    fleet(app, COUNT_ROWS, registry)
    with app.app_context():
        assert got(queries.chart(registry.spec("v"), "all")) == points(expected)
        assert got(queries.chart(registry.spec("v"), "all")) == got(
            naive_chart(registry.spec("v"), COUNT_ROWS, registry)
        )


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([], []),
        ([("X", {})], [("Unknown", 1)]),
        ([("X", {}), ("X", {"v": "b"}), ("X", {"v": "a"})], [("a", 1), ("b", 1), ("Unknown", 1)]),
        ([("X", {"v": 2.0}), ("X", {"v": 2}), ("X", {"v": 2})], [(2, 2), (2.0, 1)]),
        ([("X", {"v": False}), ("X", {"v": 0}), ("X", {"v": "false"})],
         [("false", 1), (0, 1), (False, 1)]),
        ([("X", {"v": "Unknown"}), ("X", {})], [("Unknown", 1), ("Unknown", 1)]),
        ([("X", {"v": "é"}), ("X", {"v": "z"}), ("X", {"v": 'q"'})],
         [('q"', 1), ("z", 1), ("é", 1)]),
    ],
)  # fmt: skip
def test_count_chart_ties_and_types(app, registry, rows, expected):
    fleet(app, rows, registry)
    with app.app_context():
        assert got(queries.chart(spec(), "enabled")) == points(expected)


def test_several_count_charts_share_one_pass(app):
    registry = parse_field_settings(
        {"a": {"chart": True}, "b": {"chart": True, "chart_type": "pie"}, "c": None}
    )
    fleet(app, [("X", {"a": 1, "b": "x", "c": 1}), ("X", {"a": 1}), ("X", None)], registry)
    with app.app_context():
        charts = queries.count_charts(registry.charted(), "all")
    assert {name: got(chart) for name, chart in charts.items()} == {
        "a": points([(1, 2), ("Unknown", 1)]),
        "b": points([("Unknown", 2), ("x", 1)]),
    }


# --- aggregated charts --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("how", "aggregation", "by", "expected"),
    AGGREGATED_CASES,
)
def test_aggregated_chart(app, registry, how, aggregation, by, expected):
    field = spec(aggregation=aggregation, chart_aggregation=how, chart_aggregate_by=by)
    stored = parse_field_settings(
        {"v": {"aggregation": aggregation}, "cores": {"aggregation": "sum"}}
    )
    fleet(app, GROUP_ROWS, stored)
    with app.app_context():
        result = got(queries.chart(field, "all"))
    assert result == points(expected)
    assert result == got(naive_chart(field, GROUP_ROWS, stored))


@pytest.mark.parametrize(
    ("how", "rows", "expected"),
    [
        ("sum", [], []),
        ("sum", [("X", {"v": "a"}), ("Y", {})], []),  # no number anywhere: no group at all
        ("sum", [("B", {"v": 1}), ("A", {"v": 1}), (None, {"v": 1}), ("C", {"v": 2})],
         [("C", 2), ("A", 1), ("B", 1), ("Unknown", 1)]),
        ("sum", [("A", {"v": 1}), ("A", {"v": 2.0})], [("A", 3.0)]),  # a float makes a float
        ("min", [("A", {"v": 1}), ("A", {"v": 2.0})], [("A", 1)]),  # min keeps the member
        ("max", [("A", {"v": 1}), ("A", {"v": 2.0})], [("A", 2.0)]),
        ("avg", [("A", {"v": 1}), ("A", {"v": 2})], [("A", 1.5)]),
        ("avg", [("A", {"v": 2}), ("A", {"v": 2})], [("A", 2.0)]),  # an average is a float
        ("sum", [("A", {"v": -3}), ("A", {"v": 3})], [("A", 0)]),
        # exact beyond the float's 53 bits, as the reference
        ("sum", [("A", {"v": 2**53}), ("A", {"v": 1})], [("A", 2**53 + 1)]),
        ("max", [("A", {"v": 2**60 + 1}), ("A", {"v": 2**60})], [("A", 2**60 + 1)]),
        ("sum", [("A", {"v": 10**400}), ("A", {"v": 1}), ("B", {"v": 2})],
         [("A", 10**400 + 1), ("B", 2)]),
        ("avg", [("A", {"v": 10**400}), ("B", {"v": 2})], [("B", 2.0)]),  # overflows: no value
    ],
)  # fmt: skip
def test_aggregated_chart_types_exactness_and_empty_groups(app, registry, how, rows, expected):
    fleet(app, rows, registry)
    field = spec(chart_aggregation=how)
    with app.app_context():
        result = got(queries.chart(field, "all"))
    assert result == points(expected)
    assert result == got(naive_chart(field, rows, registry))


# --- status, countries, registrations ------------------------------------------------------------

STATUS_ROWS = [
    # (enabled, country code, country name, crawled data)
    (True, "FR", "France", {"v": "a", "n": 1}),
    (True, "FR", "France", {"v": "b", "n": 2}),
    (False, "FR", "France", {"v": "a", "n": 4}),
    (False, "DE", "Germany", {"v": "c", "n": 8}),
    (False, None, None, None),
    (True, "", "Nowhere", {"v": "a"}),
    (True, "IT", None, {"v": "a", "n": 16}),
]


@pytest.mark.parametrize(
    ("status", "count_chart", "sum_chart", "countries"),
    [
        ("enabled",
         [("a", 3), ("b", 1)],
         [("Unknown", 16), ("France", 3)],  # charts group by country *name*; IT has none
         [("FR", "France", 2, 50.0), ("IT", "IT", 1, 25.0), (None, "Unknown", 1, 25.0)]),
        ("disabled",
         [("a", 1), ("c", 1), ("Unknown", 1)],
         [("Germany", 8), ("France", 4)],
         [("FR", "France", 1, 33.33), ("DE", "Germany", 1, 33.33), (None, "Unknown", 1, 33.33)]),
        ("all",
         [("a", 4), ("b", 1), ("c", 1), ("Unknown", 1)],
         [("Unknown", 16), ("Germany", 8), ("France", 7)],
         [("FR", "France", 3, 42.86), (None, "Unknown", 2, 28.57), ("DE", "Germany", 1, 14.29),
          ("IT", "IT", 1, 14.29)]),
    ],
)  # fmt: skip
def test_status_filters_every_statistic(app, registry, status, count_chart, sum_chart, countries):
    rows = [
        instance_row(n, enabled=e, country_code=code, country_name=name, crawled_data=data)
        for n, (e, code, name, data) in enumerate(STATUS_ROWS, 1)
    ]
    insert_instances(app, rows, registry)
    with app.app_context():
        stats = to_builtins(
            queries.statistics(
                parse_field_settings(
                    {"v": {"chart": True}, "n": {"chart": True, "chart_aggregation": "sum"}}
                ),
                status,
            )
        )
    assert (stats["instances"], stats["active"]) == (7, 4)  # whatever the status
    assert got(stats["charts"][0]["data"]) == points(count_chart)
    assert got(stats["charts"][1]["data"]) == points(sum_chart)
    assert [(c["code"], c["name"], c["count"], c["percent"]) for c in stats["countries"]] == (
        countries
    )


def test_statistics_shape_and_chart_metadata(app):
    registry = parse_field_settings(
        {
            "python_version": {"chart": True, "chart_type": "pie"},
            "events": {"label": "Events", "chart": True, "chart_aggregation": "avg"},
            "users": {"chart": True, "chart_aggregation": "max", "chart_aggregate_by": "os"},
            "os": {"label": "Operating system"},
            "secret": None,
        }
    )
    fleet(
        app,
        [("France", {"python_version": "3.12", "events": 3, "os": "linux", "users": 2})],
        registry,
    )
    with app.app_context():
        stats = to_builtins(queries.statistics(registry))
    assert list(stats) == ["instances", "active", "countries", "registrations", "charts"]
    assert [{k: v for k, v in c.items() if k != "data"} for c in stats["charts"]] == [
        {"field": "python_version", "label": "Python version", "type": "pie",
         "aggregation": "count", "aggregate_by": None, "x_label": "Python version",
         "y_label": "Instances"},
        {"field": "events", "label": "Events", "type": "bar", "aggregation": "avg",
         "aggregate_by": "country", "x_label": "Country", "y_label": "Average of Events"},
        {"field": "users", "label": "Users", "type": "bar", "aggregation": "max",
         "aggregate_by": "os", "x_label": "Operating system", "y_label": "Maximum of Users"},
    ]  # fmt: skip
    assert [c["data"] for c in stats["charts"]] == [
        [{"category": "3.12", "value": 1}],
        [{"category": "France", "value": 3.0}],
        [{"category": "linux", "value": 2}],
    ]


def test_countries_fold_codes_and_names_like_the_reference(app, registry):
    pairs = [("FR", "Frankreich"), ("FR", "France"), (None, "Atlantis"), ("XB", "Same"),
             ("XA", "Same"), ("", "Nowhere"), ("IT", None), ("IT", "")]  # fmt: skip
    rows = [
        instance_row(n, country_code=c, country_name=name) for n, (c, name) in enumerate(pairs, 1)
    ]
    insert_instances(app, rows, registry)
    with app.app_context():
        assert queries.countries("all") == naive_countries(pairs)
        assert queries.countries("all")[:3] == [
            {"code": "FR", "name": "France", "count": 2, "percent": 25.0},
            {"code": "IT", "name": "IT", "count": 2, "percent": 25.0},
            {"code": None, "name": "Unknown", "count": 2, "percent": 25.0},
        ]


def test_countries_without_instances(app):
    with app.app_context():
        assert queries.countries("enabled") == []
        # issue 13: a configured field that no instance reports has no chart (it had an empty one)
        assert queries.statistics(parse_field_settings({"v": {"chart": True}})).charts == []


def test_registrations_per_utc_day_over_all_instances(app, registry):
    moments = [
        datetime(2026, 1, 1, 23, 30, tzinfo=UTC),
        datetime(2026, 1, 2, 0, 30, tzinfo=UTC),
        datetime(2026, 1, 2, 1, 0, tzinfo=UTC),
        datetime(2026, 3, 5, 12, 0, tzinfo=UTC),
    ]
    rows = [
        instance_row(n, registered_at=moment, enabled=n % 2 == 0)
        for n, moment in enumerate(moments, 1)
    ]
    insert_instances(app, rows, registry)
    with app.app_context():
        assert to_builtins(queries.registrations()) == [
            {"date": "2026-01-01", "count": 1, "total": 1},
            {"date": "2026-01-02", "count": 2, "total": 3},
            {"date": "2026-03-05", "count": 1, "total": 4},
        ]


# --- the reference on a random fleet -------------------------------------------------------------


def random_fleet(seed: int, size: int) -> list[tuple[bool, str | None, str | None, dict | None]]:
    rng = random.Random(seed)
    countries = [("FR", "France"), ("DE", "Germany"), ("IT", "Italy"), (None, None), ("", "")]

    def number():
        kind = rng.random()
        if kind < 0.5:
            return rng.randint(-20, 50)
        if kind < 0.75:
            return rng.randint(-80, 200) / 4  # exact in binary: sums do not depend on order
        if kind < 0.85:
            return [rng.randint(0, 9) for _ in range(rng.randint(0, 3))]
        return rng.choice(["5", True, False, None, {"a": 1, "b": 2}, [1, "x"]])

    fleet = []
    for _ in range(size):
        code, name = rng.choice(countries)
        if rng.random() < 0.08:
            data = None
        else:
            data = {}
            for field, make in (
                ("version", lambda: rng.choice(["1.0", "1.1", "2.0", 1, 1.0, True, None])),
                ("n", number),
                ("os", lambda: rng.choice(["linux", "bsd", None, 3, [1]])),
                ("secret", lambda: rng.choice(["x", "y"])),
            ):
                if rng.random() < 0.85:
                    data[field] = make()
        fleet.append((rng.random() < 0.8, code, name, data))
    return fleet


def test_random_fleet_agrees_with_the_reference(make_app):
    settings = {"n": {"aggregation": "sum"}, "os": {}, "secret": None}
    app = make_app(CRAWLED_FIELDS_SETTINGS=settings)
    registry = parse_field_settings(settings)
    data = random_fleet(seed=4, size=300)
    rows = [
        instance_row(n, enabled=e, country_code=code, country_name=name, crawled_data=crawled)
        for n, (e, code, name, crawled) in enumerate(data, 1)
    ]
    insert_instances(app, rows, registry)
    charts = [FieldSpec("version", "Version"), replace(registry.spec("n"))]
    for how in ("sum", "avg", "min", "max"):
        for by in ("country", "os", "version"):
            charts.append(replace(registry.spec("n"), chart_aggregation=how, chart_aggregate_by=by))
    checked = 0
    with app.app_context():
        for status in ("all", "enabled", "disabled"):
            subset = [r for r in data if status == "all" or r[0] == (status == "enabled")]
            reference_rows = [(name, crawled) for _e, _c, name, crawled in subset]
            for field in charts:
                assert got(queries.chart(field, status)) == got(
                    naive_chart(field, reference_rows, registry)
                ), (status, field)
                checked += 1
            assert queries.countries(status) == naive_countries(
                [(code, name) for _e, code, name, _d in subset]
            )
    assert checked == 3 * 14


@pytest.mark.parametrize("enabled_share", [0.1, 0.9])
def test_count_charts_agree_whichever_side_is_joined(make_app, enabled_share):
    # with few disabled the counts of all minus the disabled are used, else a direct join
    app = make_app()
    registry = parse_field_settings({})
    rng = random.Random(7)
    rows = [
        instance_row(n, enabled=rng.random() < enabled_share,
                     crawled_data={"v": rng.choice(["a", "b", "c"])} if n % 5 else None)
        for n in range(1, 101)
    ]  # fmt: skip
    insert_instances(app, rows, registry)
    with app.app_context():
        for status in ("enabled", "disabled"):
            subset = [r for r in rows if r["enabled"] == (status == "enabled")]
            expected = naive_chart(spec(), [(None, r["crawled_data"]) for r in subset], registry)
            assert queries.chart(spec(), status) == expected


# --- display values follow the settings ----------------------------------------------------------


def stored_values(app):
    with app.app_context():
        rows = db.session.execute(
            sa.select(InstanceField.field, InstanceField.value_text).order_by(InstanceField.field)
        )
        return [tuple(row) for row in rows]


def test_refresh_recomputes_when_the_settings_change(app):
    before = parse_field_settings({"n": {"aggregation": "sum"}})
    fleet(app, [("X", {"n": [1, 2], "s": "x", "b": True}), ("Y", None)], before)
    assert stored_values(app) == [("b", "true"), ("n", "3"), ("s", '"x"')]
    with app.app_context():
        assert refresh_display_values_if_stale(db.session, before) == 0
    after = parse_field_settings({"n": {"aggregation": "max"}, "s": None})
    assert refresh_display_values_if_stale(app, after) == 2
    assert stored_values(app) == [("b", "true"), ("n", "2")]
    with app.app_context(), db.engine.connect() as conn:
        assert stored_fingerprint(conn) == after.fingerprint()
    assert refresh_display_values_if_stale(app, after) == 0


def test_refresh_uses_the_app_settings_and_pages(app, monkeypatch):
    # the app's settings hide "secret" and sum "cores"
    monkeypatch.setattr("cephalopod.stats.refresh.PAGE", 2)
    fleet(app, [("X", {"cores": [1, 1], "secret": 1})] * 5, parse_field_settings({}))
    assert stored_values(app).count(("secret", "1")) == 5
    seen = []
    with app.app_context():
        registry = queries.field_registry()
        assert recompute_display_values(registry, progress=seen.append) == 5
    assert seen == [2, 4, 5]
    assert stored_values(app) == [("cores", "2")] * 5
    assert refresh_display_values_if_stale(app) == 0
