"""Display values of crawled fields and the reference (in-Python) statistics.

The *display value* of a field is what a person sees and what the charts group on:

- JSON null, a string, a boolean or a finite number is its own display value, whatever the
  field's `aggregation` (a scalar is an aggregation of one);
- a list, or a dict's values, becomes one number through the `aggregation`; without one, or
  when a member is not a finite number (booleans and nested containers are not numbers), or
  when the list is empty, there is no display value (None). NaN and infinities count as
  no value, and so does an int of 1,000 digits or more (no column holds its text, no chart
  can use it). Nothing here raises on odd crawled data.

`split_display` encodes a display value into the two stored columns and `join_display`
decodes it; `naive_chart` and `naive_countries` are the slow, obvious versions of the SQL
statistics, used as test oracles and as the benchmark's baseline.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypedDict, TypeGuard

from cephalopod.stats.fields import COUNTRY, FieldRegistry, FieldSpec

Display = str | int | float | bool | None
Number = int | float

UNKNOWN = "Unknown"


class ChartEntry(TypedDict):
    """One category of a chart and its value (``stats.rows.ChartPoint`` once served)."""

    category: Display
    value: Number


class CountryEntry(TypedDict):
    """One country's count and share (``stats.rows.CountryShare`` once served)."""

    code: str | None
    name: str
    count: int
    percent: float


#: The smallest magnitude of an int with no display value: 1,000 digits (see above).
INT_LIMIT = 10**999


def is_number(value: object) -> TypeGuard[Number]:
    """Tell whether a value takes part in numeric aggregation: finite int or float, not bool."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, float) and math.isfinite(value)


def aggregate(numbers: Sequence[Number], how: str) -> Number | None:
    """Apply 'sum', 'avg', 'min' or 'max'; None when empty or when the result overflows a float.

    A sum of ints stays an exact int, an average is always a float, min and max keep the member.
    """
    if not numbers:
        return None
    try:
        if how in ("min", "max"):
            return min(numbers) if how == "min" else max(numbers)
        exact = all(isinstance(n, int) for n in numbers)
        total: Number = sum(numbers) if exact else math.fsum(numbers)
        if how == "sum":
            return total
        if how == "avg":
            return total / len(numbers)
    except OverflowError:  # only for ints beyond the float range mixed with floats or averaged
        return None
    raise ValueError(f"unknown aggregation {how!r}")


def display_value(value: Any, spec: FieldSpec) -> Display:
    """Reduce one crawled value to what is shown, sorted and charted for its field."""
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, (int, float)):
        return _shown(value) if is_number(value) else None
    if isinstance(value, (list, tuple, Mapping)) and spec.aggregation is not None:
        members = list(value.values() if isinstance(value, Mapping) else value)
        if all(is_number(member) for member in members):
            return _shown(aggregate(members, spec.aggregation))
    return None


def _shown(number: Number | None) -> Number | None:
    return None if type(number) is int and abs(number) >= INT_LIMIT else number


def split_display(value: Display) -> tuple[str | None, float | None]:
    """Encode a display value as the stored (value_text, value_num) pair.

    value_text is the value's JSON text (`"3"` for the string, `3` for the int, `3.0` for the
    float, `true` for the boolean), so the category's type survives the round trip and 3, 3.0,
    "3" and True stay distinct groups in SQL; it is the authoritative column. value_num is the
    number as a float, only for numbers (never for booleans), and is what numeric chart
    aggregation and numeric sorting use; it is None for ints beyond the float range.
    JSON null is (None, None). Lone surrogates are escaped so the text is valid UTF-8.
    """
    if value is None:
        return None, None
    if not (isinstance(value, (str, bool)) or is_number(value)):
        raise TypeError(f"{value!r} is not a display value")
    text = json_text(value)
    if isinstance(value, bool) or not is_number(value):
        return text, None
    try:
        return text, float(value)
    except OverflowError:
        return text, None


def json_text(value: str | bool | Number) -> str:
    """Return a display value's JSON text, ``value_text``; lone surrogates escaped (UTF-8)."""
    text = json.dumps(value, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(value, ensure_ascii=True)
    return text


def join_display(value_text: str | None, value_num: float | None = None) -> Display:
    """Decode the stored pair to the display value; value_num is derived, so only text counts."""
    return None if value_text is None else json.loads(value_text)


Row = tuple[str | None, Mapping[str, Any] | None]


def _ranked(values: Mapping[str | None, Number]) -> list[ChartEntry]:
    # Largest first; ties by the category's stored text in code-point order, "Unknown" last.
    order = sorted(values.items(), key=lambda item: (-item[1], item[0] is None, item[0] or ""))
    return [
        {"category": UNKNOWN if text is None else join_display(text), "value": value}
        for text, value in order
    ]


def naive_chart(spec: FieldSpec, rows: Iterable[Row], registry: FieldRegistry) -> list[ChartEntry]:
    """Compute one field's chart the slow, obvious way from (country name, crawled data) rows.

    'count' counts instances per display value (no value: "Unknown"). Other aggregations group
    instances by country name or by another field's display value (no value: "Unknown") and
    aggregate the field's numeric display values, skipping instances without one; a group with
    none is left out. Categories keep their JSON type; each row is {"category", "value"}.
    """
    if spec.chart_aggregation == "count":
        counts: dict[str | None, Number] = {}
        for _country, data in rows:
            key = split_display(display_value((data or {}).get(spec.name), spec))[0]
            counts[key] = counts.get(key, 0) + 1
        return _ranked(counts)
    by = spec.chart_aggregate_by
    by_spec = None if by == COUNTRY else registry.spec(by)
    groups: dict[str | None, list[Number]] = {}
    for country, data in rows:
        data = data or {}
        number = display_value(data.get(spec.name), spec)
        if not is_number(number):
            continue
        category = (country or None) if by_spec is None else display_value(data.get(by), by_spec)
        groups.setdefault(split_display(category)[0], []).append(number)
    results = {key: aggregate(numbers, spec.chart_aggregation) for key, numbers in groups.items()}
    return _ranked({key: value for key, value in results.items() if value is not None})


def naive_countries(rows: Iterable[tuple[str | None, str | None]]) -> list[CountryEntry]:
    """Count instances per country from (code, name) rows, with their share of all rows in percent.

    No code means "Unknown" (code None); a code's name is the smallest non-empty name seen with
    it, else the code. Sorted by count descending, then name, then code (None last); percent is
    round(100 * count / total, 2).
    """
    return fold_countries((code, name, 1) for code, name in rows)


def fold_countries(groups: Iterable[tuple[str | None, str | None, int]]) -> list[CountryEntry]:
    """Fold (code, name, count) groups into the country list (the SQL side groups first)."""
    counts: dict[str | None, int] = {}
    names: dict[str | None, set[str]] = {}
    for code, name, count in groups:
        code = code or None
        counts[code] = counts.get(code, 0) + count
        seen = names.setdefault(code, set())
        if code is None:
            seen.add(UNKNOWN)
        elif name:
            seen.add(name)
    total = sum(counts.values())
    result: list[CountryEntry] = [
        {
            "code": code,
            "name": min(names[code], default=code or UNKNOWN),  # no name seen: the code
            "count": count,
            "percent": round(100 * count / total, 2),
        }
        for code, count in counts.items()
    ]
    result.sort(key=lambda r: (-r["count"], r["name"], r["code"] is None, r["code"] or ""))
    return result
