"""Display values as rows: the fast paths agree with the general encoding."""

from __future__ import annotations

import json
import sys

import pytest

from cephalopod.stats.aggregate import split_display
from cephalopod.stats.fields import parse_field_settings
from cephalopod.stats.values import MAX_VALUE_TEXT, display_columns, display_tuples

REGISTRY = parse_field_settings({"cores": {"aggregation": "sum"}, "secret": None})
HUGE = 10 ** (sys.float_info.max_10_exp + 1)


@pytest.mark.parametrize(
    "value",
    [0, 1, -1, 7, 2**53 + 1, -(2**63), HUGE, -HUGE, True, False, 1.0, 0.5, -0.0, "3", "x", ""],
)
def test_scalars_encode_as_split_display_does(value: object) -> None:
    assert display_columns(value, REGISTRY, "n") == split_display(value)  # type: ignore[arg-type]
    assert type(display_columns(value, REGISTRY, "n")[1]) in (float, type(None))


def test_display_tuples_keep_types_apart_and_skip_hidden_fields() -> None:
    data = {"a": 1, "b": True, "c": 1.0, "d": "1", "cores": [1, 2], "secret": 5, "e": None}
    assert list(display_tuples(9, data, REGISTRY)) == [
        (9, "a", "1", 1.0),
        (9, "b", "true", None),
        (9, "c", "1.0", 1.0),
        (9, "d", '"1"', None),
        (9, "cores", "3", 3.0),
    ]


@pytest.mark.parametrize(
    "value",
    [
        "\x01" * 300,
        "\ud800" + "\U0001f600" * 300,
        "\ud800" * 300,
        "a" * 50 + "\x01" * 300,
        "\x1f" * 180 + "x" * 100,
    ],
)
def test_escaped_strings_are_cut_to_fit_the_column(value: str) -> None:
    text, number = display_columns(value, REGISTRY, "s")
    assert text is not None
    assert len(text) <= MAX_VALUE_TEXT
    assert number is None
    shown = json.loads(text)
    assert shown.endswith("…")
    assert value.startswith(shown[:-1])
    # as much as fits: one more character would not
    assert len(split_display(value[: len(shown)] + "…")[0]) > MAX_VALUE_TEXT  # type: ignore[arg-type]


def test_ints_of_a_thousand_digits_have_no_display_value() -> None:
    longest = -(10**999 - 1)  # 999 digits and the sign: what the column holds
    assert display_columns(longest, REGISTRY, "n") == (str(longest), None)
    assert len(str(longest)) == MAX_VALUE_TEXT
    assert display_columns(10**999, REGISTRY, "n") == (None, None)
    assert display_columns([10**998] * 10, REGISTRY, "cores") == (None, None)  # a sum
    # past Python's 4,300-digit limit of int-to-text conversion: no value, not an error
    widest = int("9" * 4300)  # what a JSON reply can hold
    assert display_columns([widest] * 20, REGISTRY, "cores") == (None, None)
