import pytest

from cephalopod.stats.aggregate import (
    aggregate,
    display_value,
    join_display,
    naive_chart,
    naive_countries,
    split_display,
)
from cephalopod.stats.fields import FieldSpec, parse_field_settings
from tests.stats.cases import AGGREGATED_CASES, GROUP_ROWS

NAN = float("nan")
INF = float("inf")
HUGE = 10**400  # beyond the float range


def typed(value):
    """Pair a value with its type, so True == 1 and 3 == 3.0 cannot pass for each other."""
    return type(value).__name__, value


def spec(aggregation=None):
    return FieldSpec("v", "V", aggregation)


@pytest.mark.parametrize(
    ("value", "aggregation", "expected"),
    [
        # scalars are their own display value, whatever the aggregation
        (None, None, None),
        (None, "sum", None),
        ("3.11", None, "3.11"),
        ("3.11", "sum", "3.11"),
        ("", "max", ""),
        (3, None, 3),
        (3, "avg", 3),
        (2.5, "min", 2.5),
        (-1, "sum", -1),
        (True, None, True),
        (False, "sum", False),
        (HUGE, None, HUGE),
        (NAN, None, None),
        (INF, "max", None),
        (-INF, None, None),
        # lists
        ([1, 2, 3], "sum", 6),
        ([1, 2, 3], "avg", 2.0),
        ([1, 2, 2], "avg", 5 / 3),
        ([1, 2], "avg", 1.5),
        ([3, 1, 2], "min", 1),
        ([3, 1, 2], "max", 3),
        ([2, 1.0], "min", 1.0),
        ([1, 2.5], "sum", 3.5),
        ([0.5, 0.25], "avg", 0.375),
        ([1e16, 1.0, -1e16], "sum", 1.0),  # exact float summation, not left to right
        ([2**53, 1], "sum", 2**53 + 1),  # int sums stay exact
        ([HUGE, 1], "sum", HUGE + 1),
        ([HUGE, 1], "max", HUGE),
        ([HUGE, 0.5], "sum", None),  # no float can hold it
        ([HUGE], "avg", None),
        ([1e308, 1e308], "sum", None),
        # ints of 1,000 digits and more: no display value (no column holds them)
        (10**999 - 1, None, 10**999 - 1),
        (-(10**999 - 1), "sum", -(10**999 - 1)),
        (10**999, None, None),
        (-(10**999), "max", None),
        ([10**998] * 10, "sum", None),
        ([10**998] * 9, "sum", 9 * 10**998),
        ([int("9" * 4300)] * 20, "sum", None),  # past int-to-text conversion's limit
        ([-4], "max", -4),
        ([7], "avg", 7.0),
        # dicts aggregate their values
        ({"a": 1, "b": 4}, "sum", 5),
        ({"a": 1, "b": 4}, "avg", 2.5),
        ({"a": 1, "b": 4}, "min", 1),
        ({"a": 1, "b": 4}, "max", 4),
        ({"1": 10, "2": 0.5}, "sum", 10.5),
        # no aggregation: containers have no display value
        ([1, 2, 3], None, None),
        ({"a": 1}, None, None),
        # empty containers
        ([], "sum", None),
        ([], "max", None),
        ({}, "avg", None),
        # booleans are not numbers
        ([1, True], "sum", None),
        ([True, False], "max", None),
        ({"on": True}, "sum", None),
        # other non-numeric members
        ([1, "2"], "sum", None),
        ([None, 1], "min", None),
        ([1, NAN], "max", None),
        ([1, INF], "sum", None),
        # nested containers
        ([[1, 2], 3], "sum", None),
        ([[1]], "max", None),
        ({"a": {"b": 1}}, "sum", None),
        ({"a": [1]}, "avg", None),
        # not JSON at all
        ({1, 2}, "sum", None),
        (b"1", "sum", None),
    ],
)
def test_display_value(value, aggregation, expected):
    assert typed(display_value(value, spec(aggregation))) == typed(expected)


def test_aggregate_refuses_unknown_function():
    with pytest.raises(ValueError, match="'count'"):
        aggregate([1], "count")


@pytest.mark.parametrize(
    ("value", "text", "number"),
    [
        (None, None, None),
        ("abc", '"abc"', None),
        ("3", '"3"', None),
        ("", '""', None),
        ('a"b\\', '"a\\"b\\\\"', None),
        ("é", '"é"', None),
        ("\x00", '"\\u0000"', None),
        ("\ud800", '"\\ud800"', None),  # a lone surrogate is not UTF-8: escape it
        (3, "3", 3.0),
        (-7, "-7", -7.0),
        (3.0, "3.0", 3.0),
        (-0.5, "-0.5", -0.5),
        (1e300, "1e+300", 1e300),
        (True, "true", None),
        (False, "false", None),
        (2**63, "9223372036854775808", 9223372036854775808.0),
        (HUGE, "1" + "0" * 400, None),
    ],
)
def test_split_display(value, text, number):
    assert split_display(value) == (text, number)
    assert typed(split_display(value)[1]) == typed(number)


@pytest.mark.parametrize(
    "value",
    [None, "abc", "3", "", "Unknown", "é\u2603", "\ud800", 'q"\\', "\x00",
     0, 3, -7, 3.0, -0.0, 0.1, 1e300, True, False, 2**53 + 1, 2**64 + 1, -(2**70), HUGE],
)  # fmt: skip
def test_split_then_join_gives_back_the_value(value):
    text, number = split_display(value)
    assert repr(join_display(text, number)) == repr(value)  # repr tells 3 from 3.0 and True, -0.0


def test_categories_of_different_types_stay_apart():
    texts = [split_display(v)[0] for v in (3, 3.0, "3", 1, True, "true", False, 0)]
    assert len(set(texts)) == len(texts)


@pytest.mark.parametrize("value", [[1], {"a": 1}, NAN, INF, b"x"])
def test_split_display_refuses_what_is_not_a_display_value(value):
    with pytest.raises(TypeError):
        split_display(value)


def points(pairs):
    """Type every (category, value) pair, so an expectation also pins the JSON types."""
    return [(typed(category), typed(value)) for category, value in pairs]


def chart(rows, registry=None, **options):
    registry = registry or parse_field_settings({})
    field = FieldSpec("v", "V", **options)
    return points((p["category"], p["value"]) for p in naive_chart(field, rows, registry))


COUNT_ROWS = [
    ("France", {"v": "3.11"}),
    ("France", {"v": "3.11"}),
    ("Italy", {"v": 3}),
    (None, {"v": "3"}),
    ("Spain", {}),
    ("Spain", None),
    ("Italy", {"v": True}),
    ("Italy", {"v": 1}),
    ("Chile", {"v": [1, 2]}),
    ("Chile", {"v": NAN}),
]


@pytest.mark.parametrize("by", ["country", "other"])
def test_count_chart_counts_per_display_value_largest_first(by):
    # Ties go by the stored JSON text in code-point order: '"3"' < '1' < '3' < 'true'.
    assert chart(COUNT_ROWS, chart_aggregate_by=by) == points(
        [
            ("Unknown", 4),
            ("3.11", 2),
            ("3", 1),
            (1, 1),
            (3, 1),
            (True, 1),
        ]
    )


def test_count_chart_uses_the_field_aggregation():
    # [1, 2] sums to 3 and joins the scalar 3; the NaN still has no value; '"3.11"' < '3'.
    assert chart(COUNT_ROWS, aggregation="sum") == points(
        [
            ("Unknown", 3),
            ("3.11", 2),
            (3, 2),
            ("3", 1),
            (1, 1),
            (True, 1),
        ]
    )


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([], []),
        ([("X", {})], [("Unknown", 1)]),
        ([("X", {}), ("X", {"v": "b"}), ("X", {"v": "a"})],
         [("a", 1), ("b", 1), ("Unknown", 1)]),
        ([("X", {"v": 2.0}), ("X", {"v": 2}), ("X", {"v": 2})],
         [(2, 2), (2.0, 1)]),
        ([("X", {"v": False}), ("X", {"v": 0}), ("X", {"v": "false"})],
         [("false", 1), (0, 1), (False, 1)]),
    ],
)  # fmt: skip
def test_count_chart_ties_and_types(rows, expected):
    assert chart(rows) == points(expected)


SETTINGS = {"cores": {"aggregation": "sum"}}


@pytest.mark.parametrize(
    ("how", "aggregation", "by", "expected"),
    AGGREGATED_CASES,
)
def test_aggregated_chart_groups_and_skips_non_numbers(how, aggregation, by, expected):
    registry = parse_field_settings(SETTINGS)
    rows = chart(
        GROUP_ROWS, registry, aggregation=aggregation, chart_aggregation=how, chart_aggregate_by=by
    )
    assert rows == points(expected)


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([], []),
        ([("X", {"v": "a"}), ("Y", {})], []),
        ([("B", {"v": 1}), ("A", {"v": 1}), (None, {"v": 1}), ("C", {"v": 2})],
         [("C", 2), ("A", 1), ("B", 1), ("Unknown", 1)]),
        ([("A", {"v": 1}), ("A", {"v": 2.0})], [("A", 3.0)]),
        ([("A", {"v": 2**53}), ("A", {"v": 1})], [("A", 2**53 + 1)]),
    ],
)  # fmt: skip
def test_aggregated_chart_ties_types_and_empty_groups(rows, expected):
    assert chart(rows, chart_aggregation="sum") == points(expected)


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([], []),
        ([("FR", "France")], [("FR", "France", 1, 100.0)]),
        (
            [("FR", "France"), ("FR", "France"), ("DE", "Germany"), (None, None),
             ("", "Nowhere"), ("IT", None), ("AT", "Austria")],
            [("FR", "France", 2, 28.57), (None, "Unknown", 2, 28.57), ("AT", "Austria", 1, 14.29),
             ("DE", "Germany", 1, 14.29), ("IT", "IT", 1, 14.29)],
        ),
        (
            [("FR", "Frankreich"), ("FR", "France"), (None, "Atlantis")],
            [("FR", "France", 2, 66.67), (None, "Unknown", 1, 33.33)],
        ),
        (
            [("XB", "Same"), ("XA", "Same"), ("YY", "Other"), (None, None)],
            [("YY", "Other", 1, 25.0), ("XA", "Same", 1, 25.0), ("XB", "Same", 1, 25.0),
             (None, "Unknown", 1, 25.0)],
        ),
    ],
)  # fmt: skip
def test_naive_countries(rows, expected):
    result = naive_countries(rows)
    assert [(r["code"], r["name"], r["count"], r["percent"]) for r in result] == expected
    assert all(typed(r["percent"])[0] == "float" for r in result)


def test_nan_never_reaches_a_chart():
    rows = [("A", {"v": NAN}), ("A", {"v": [NAN]}), ("A", {"v": 1})]
    assert chart(rows, aggregation="max", chart_aggregation="max") == points([("A", 1)])
