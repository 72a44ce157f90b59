"""Bounded JSON decoding: depth and key limits, never a RecursionError."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cephalopod.jsonlimits import JSONLimitError, loads_limited, measure


@pytest.mark.parametrize(
    ("value", "depth", "keys"),
    [
        (1, 0, 0),
        ("x", 0, 0),
        ({}, 1, 0),
        ([], 1, 0),
        ({"a": 1, "b": 2}, 1, 2),
        ({"a": {"b": {"c": 1}}}, 3, 3),
        ([[[]], [[[]]]], 4, 0),
        ([{"a": 1}, {"b": 2, "c": [{"d": 1}]}], 4, 4),
        ({"a": [1, 2, "x"], "b": None}, 2, 2),
    ],
)
def test_measure(value: Any, depth: int, keys: int) -> None:
    assert measure(value) == (depth, keys)


def test_measure_needs_no_recursion() -> None:
    value: Any = 1
    for _ in range(100_000):
        value = [value]
    assert measure(value) == (100_000, 0)


@pytest.mark.parametrize(
    ("body", "max_depth", "max_keys", "expected"),
    [
        (b'{"a": 1}', 1, 1, {"a": 1}),
        (b'{"a": {"b": [1]}}', 3, 2, {"a": {"b": [1]}}),
        # brackets and colons inside strings are not structure
        (b'{"a": "[[[[{{{{::::"}', 1, 1, {"a": "[[[[{{{{::::"}),
        (b'{"url": "http://x:1/"}', 1, 1, {"url": "http://x:1/"}),
        (b"[1, 2]", 1, 0, [1, 2]),
        (b'"just a string"', 1, 0, "just a string"),
        # an escaped backslash followed by "u0000" is six ordinary characters, not a NUL
        (rb'{"a": "C:\\u0000"}', 1, 1, {"a": "C:\\u0000"}),
        ('{"a": "ü"}'.encode("utf-16"), 1, 1, {"a": "ü"}),
    ],
)
def test_within_limits(body: bytes, max_depth: int, max_keys: int, expected: Any) -> None:
    assert loads_limited(body, max_depth=max_depth, max_keys=max_keys) == expected


@pytest.mark.parametrize(
    ("body", "max_depth", "max_keys", "message"),
    [
        (b'{"a": {"b": 1}}', 1, 10, "JSON nested deeper than 1 levels"),
        (b"[[[]]]", 2, 10, "JSON nested deeper than 2 levels"),
        (b"[" * 10_000 + b"]" * 10_000, 32, 10_000, "JSON nested deeper than 32 levels"),
        (b'{"a": ' * 10_000 + b"1" + b"}" * 10_000, 32, 10_000, "JSON nested deeper than 32"),
        (b'{"a": 1, "b": 2}', 5, 1, "JSON has more than 1 keys"),
        (b'[{"a": 1}, {"b": 2}, {"c": 3}]', 5, 2, "JSON has more than 2 keys"),
        (json.dumps({f"k{i}": i for i in range(10_001)}).encode(), 5, 10_000, "more than 10000"),
    ],
)
def test_beyond_limits(body: bytes, max_depth: int, max_keys: int, message: str) -> None:
    with pytest.raises(JSONLimitError, match=message):
        loads_limited(body, max_depth=max_depth, max_keys=max_keys)


NUL = "JSON contains a NUL character"
SURROGATE = "JSON contains an unpaired surrogate"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (rb'{"a": "x\u0000y"}', NUL),
        (rb'{"a\u0000": 1}', NUL),
        (rb'{"a": [1, {"b": ["\u0000"]}]}', NUL),
        (rb'"\u0000"', NUL),
        (r'{"a": "x\u0000y"}'.encode("utf-16-le"), NUL),  # the escape, in a UTF-16 body
        (r'{"a": "x\u0000y"}'.encode("utf-32"), NUL),
        (rb'{"a": "x\ud800y"}', SURROGATE),
        (rb'{"a": "\uDFFF"}', SURROGATE),
        (rb'{"\udc00": 1}', SURROGATE),
        (rb'{"a": [1, {"b": ["ok", "\ud83d"]}]}', SURROGATE),  # a high one with no low one
        (rb'{"a": "\ude00\ud83d"}', SURROGATE),  # a pair in the wrong order
        (b'{"a": "x\xed\xa0\x80y"}', SURROGATE),  # U+D800 as raw bytes: json.loads takes it
        (r'{"a": "x\ud800y"}'.encode("utf-16-le"), SURROGATE),
    ],
)
def test_unstorable_text_is_refused(body: bytes, message: str) -> None:
    # valid JSON, but PostgreSQL can store a NUL in neither text nor jsonb, and no UTF-8 text
    # holds an unpaired surrogate (each database driver refuses it): one such reply must fail
    # its own instance, not the batch of results stored with it
    with pytest.raises(JSONLimitError, match=message):
        loads_limited(body, max_depth=32, max_keys=100)


@pytest.mark.parametrize(
    "body",
    [
        rb'{"a": "\ud83d\ude00"}',  # a pair: one character
        '{"a": "\U0001f600 \ud55c\uad6d\uc5b4 \u00e9"}'.encode(),  # Hangul: bytes ED 80-9F
        rb'{"a": "\\ud800"}',  # an escaped backslash, then text
    ],
)
def test_text_that_only_looks_like_a_surrogate_is_kept(body: bytes) -> None:
    assert loads_limited(body, max_depth=32, max_keys=100) == json.loads(body)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b'{"a": 1,',
        b"<html>",
        b'{"a": "\xff"}',
        b'{"a": ' + b"9" * 5000 + b"}",
        b"\x00",
        b'{"a": NaN}',
        b'{"a": [1, Infinity]}',
        b'{"a": -Infinity}',
        b'{"a": 1e400}',
        b'{"a": [-1.5e309]}',
    ],
)
def test_invalid_json_is_a_value_error(body: bytes) -> None:
    try:
        loads_limited(body, max_depth=32, max_keys=100)
    except JSONLimitError as exc:
        pytest.fail(f"reported as a limit, not as invalid JSON: {exc}")
    except ValueError:
        return
    pytest.fail("invalid JSON was accepted")


def test_finite_numbers_are_kept() -> None:
    body = b'{"a": 1.5, "b": 1.7976931348623157e308, "c": 1e-400, "d": -0.0, "e": 10}'
    assert loads_limited(body, max_depth=32, max_keys=100) == {
        "a": 1.5,
        "b": 1.7976931348623157e308,
        "c": 0.0,
        "d": -0.0,
        "e": 10,
    }
