"""Display values as rows: the fast paths agree with the general encoding."""

from __future__ import annotations

import sys

import pytest

from cephalopod.stats.aggregate import split_display
from cephalopod.stats.fields import parse_field_settings
from cephalopod.stats.values import display_columns, display_tuples

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
