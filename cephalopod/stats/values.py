"""Display values as rows of ``instance_fields``: what the crawl store and a recompute write."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any

from cephalopod.instances.models import MAX_VALUE_TEXT
from cephalopod.stats.aggregate import INT_LIMIT, display_value, json_text, split_display
from cephalopod.stats.fields import FieldRegistry

#: Longest display string kept for grouping and sorting (the full value stays in crawled_data).
MAX_DISPLAY_CHARS = 250
MAX_FIELD_NAME = 255

Columns = tuple[str | None, float | None]


def display_text(value: Any) -> str | None:
    """The value_text a display value is stored (and grouped) as: what trends group on too."""
    return _columns(value)[0]


def _columns(value: Any) -> Columns:
    if isinstance(value, str) and len(value) > MAX_DISPLAY_CHARS:
        value = value[: MAX_DISPLAY_CHARS - 1] + "…"
    text, num = split_display(value)
    if text is None or len(text) <= MAX_VALUE_TEXT:  # always so for a number (INT_LIMIT)
        return text, num
    # Escapes make the JSON text up to 12 characters per character (control characters,
    # a lone surrogate forcing ASCII): keep the longest prefix whose text fits (a prefix's
    # text grows with it, so a bisection finds it).
    low, high = 0, len(value) - 1  # the prefix value[:low] fits; value[:high + 1] does not
    while low < high:
        middle = (low + high + 1) // 2
        if len(json_text(value[:middle] + "…")) <= MAX_VALUE_TEXT:
            low = middle
        else:
            high = middle - 1
    return split_display(value[:low] + "…")


@lru_cache(maxsize=16384)
def _scalar_columns(kind: type, value: Any) -> Columns:
    """Columns of a scalar (its own display value); cached, since fleets repeat values a lot.

    ``kind`` is part of the key so that ``True``, ``1`` and ``1.0`` stay apart.
    """
    del kind
    if isinstance(value, str):
        return _columns(value)
    return _columns(display_value(value, _NO_SPEC))


def _int_columns(value: int) -> Columns:
    """`split_display` of an int, the short way.

    Counters (users, events) are ints that rarely repeat, so the cache above misses them,
    and a crawl stores thousands.
    """
    if abs(value) >= INT_LIMIT:
        return None, None  # as display_value
    text = int.__repr__(value)  # what json.dumps writes
    try:
        return text, float(value)
    except OverflowError:
        return text, None


def display_columns(raw: Any, registry: FieldRegistry, name: str) -> Columns:
    """Return (value_text, value_num) of a visible field's crawled value; (None, None): none."""
    if raw is None:
        return None, None
    if type(raw) is int:
        return _int_columns(raw)
    if isinstance(raw, str | bool | int | float):
        kind: type = type(raw)  # plain type: mypy takes type[str] for unhashable (mypy#11470)
        return _scalar_columns(kind, raw)
    value = display_value(raw, registry.spec(name))
    return (None, None) if value is None else _columns(value)


def display_rows(
    instance_id: int, data: Mapping[str, Any], registry: FieldRegistry
) -> Iterator[dict[str, Any]]:
    """Yield one ``instance_fields`` row (a dict) per visible field with a display value."""
    for row in display_tuples(instance_id, data, registry):
        yield dict(zip(("instance_id", "field", "value_text", "value_num"), row, strict=True))


def display_tuples(
    instance_id: int, data: Mapping[str, Any], registry: FieldRegistry
) -> Iterator[tuple[int, str, str | None, float | None]]:
    """Yield ``(instance_id, field, value_text, value_num)`` per field with a display value."""
    hidden = registry.hidden
    for name, raw in data.items():
        if name in hidden or len(name) > MAX_FIELD_NAME:
            continue
        text, num = display_columns(raw, registry, name)
        if text is not None:
            yield instance_id, name, text, num


class _NoSpec:
    aggregation = None


_NO_SPEC: Any = _NoSpec()
