"""CRAWLED_FIELDS_SETTINGS turned into typed, validated field specs.

A field mapped to None is hidden everywhere (not shown, not stored). A crawled field without an
entry gets the defaults. A configured name that no instance reports is simply never looked up.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args

SETTING = "CRAWLED_FIELDS_SETTINGS"
COUNTRY = "country"

Aggregation = Literal["sum", "avg", "min", "max"]
ChartType = Literal["bar", "line", "pie"]
ChartAggregation = Literal["count", "sum", "avg", "min", "max"]
AGGREGATIONS: tuple[Aggregation | None, ...] = (None, *get_args(Aggregation))
CHART_TYPES: tuple[ChartType, ...] = get_args(ChartType)
CHART_AGGREGATIONS: tuple[ChartAggregation, ...] = get_args(ChartAggregation)
OPTIONS: tuple[str, ...] = (
    "label",
    "aggregation",
    "chart",
    "chart_type",
    "chart_aggregation",
    "chart_aggregate_by",
)


def default_label(name: str) -> str:
    """Render a field name for people: underscores to spaces, first character upper-cased."""
    text = name.replace("_", " ")
    return text[:1].upper() + text[1:]


@dataclass(frozen=True)
class FieldSpec:
    """How one crawled field is displayed, aggregated and charted."""

    name: str
    label: str
    aggregation: Aggregation | None = None
    chart: bool = False
    chart_type: ChartType = "bar"
    chart_aggregation: ChartAggregation = "count"
    chart_aggregate_by: str = COUNTRY


def default_spec(name: str) -> FieldSpec:
    """Return the spec of a field that has no entry in the settings."""
    return FieldSpec(name=name, label=default_label(name))


def _listing(values: Iterable[object]) -> str:
    return ", ".join(repr(value) for value in values)


class FieldSettingsError(ValueError):
    """A bad settings value, naming where it is and what would be accepted so a human can fix it."""

    def __init__(
        self, path: str, value: object, accepted: str, *, problem: str = "", kind: str = "values"
    ) -> None:
        self.path = path
        self.value = value
        self.accepted = accepted
        problem = problem or f"= {value!r} is invalid"
        super().__init__(f"{path} {problem}; accepted {kind}: {accepted}")


def _path(*keys: object) -> str:
    return SETTING + "".join(f"[{key!r}]" for key in keys)


def _choice(name: str, option: str, value: object, choices: tuple[Any, ...]) -> None:
    # Compare by identity of type too, so 0/False/1.0 never pass for a string or None.
    if not any(value is c or (type(value) is str and value == c) for c in choices):
        raise FieldSettingsError(_path(name, option), value, _listing(choices))


def _parse_spec(name: str, raw: Any, hidden: frozenset[str]) -> FieldSpec:
    if not isinstance(raw, Mapping):
        raise FieldSettingsError(
            _path(name), raw, "None (to hide the field) or a dict of options " + _listing(OPTIONS)
        )
    for key in raw:
        if key not in OPTIONS:
            raise FieldSettingsError(
                _path(name, key),
                raw[key],
                _listing(OPTIONS),
                problem="is not an option",
                kind="options",
            )
    spec = default_spec(name)
    label = raw.get("label", spec.label)
    if type(label) is not str or not label.strip():
        raise FieldSettingsError(_path(name, "label"), label, "a non-empty string")
    chart = raw.get("chart", spec.chart)
    if type(chart) is not bool:
        raise FieldSettingsError(_path(name, "chart"), chart, "True, False")
    aggregation = raw.get("aggregation", spec.aggregation)
    _choice(name, "aggregation", aggregation, AGGREGATIONS)
    chart_type = raw.get("chart_type", spec.chart_type)
    _choice(name, "chart_type", chart_type, CHART_TYPES)
    chart_aggregation = raw.get("chart_aggregation", spec.chart_aggregation)
    _choice(name, "chart_aggregation", chart_aggregation, CHART_AGGREGATIONS)
    by = raw.get("chart_aggregate_by", spec.chart_aggregate_by)
    if type(by) is not str or not by or by == name or by in hidden:
        raise FieldSettingsError(
            _path(name, "chart_aggregate_by"),
            by,
            f"{COUNTRY!r} or the name of another crawled field that is not hidden",
        )
    return FieldSpec(name, label, aggregation, chart, chart_type, chart_aggregation, by)


class FieldRegistry:
    """The validated settings: answers which fields are hidden, charted and how each displays."""

    def __init__(self, specs: Mapping[str, FieldSpec | None]) -> None:
        self._specs = dict(specs)
        self.hidden = frozenset(name for name, spec in self._specs.items() if spec is None)

    def spec(self, name: str) -> FieldSpec:
        """Return the field's spec (defaults when unconfigured); KeyError if it is hidden."""
        if name in self.hidden:
            raise KeyError(f"crawled field {name!r} is hidden by {SETTING}")
        return self._specs.get(name) or default_spec(name)

    def is_hidden(self, name: str) -> bool:
        """Tell whether the settings map the field to None."""
        return name in self.hidden

    def charted(self) -> list[FieldSpec]:
        """List the fields with chart=True in settings order, the order of the charts."""
        return [spec for spec in self._specs.values() if spec is not None and spec.chart]

    def visible(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """Drop the hidden fields from crawled data."""
        return {key: value for key, value in data.items() if key not in self.hidden}

    def fingerprint(self) -> str:
        """Hash the effective settings, so stored display values and cached charts know when stale.

        Entries equal to the defaults are left out, so `{}` and `{'x': {}}` share a fingerprint;
        the settings order is kept because it orders the charts.
        """
        normalized = [
            [name, None if spec is None else asdict(spec)]
            for name, spec in self._specs.items()
            if spec != default_spec(name)
        ]
        text = json.dumps(normalized, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return hashlib.sha256(text.encode("ascii")).hexdigest()


def parse_field_settings(raw: Mapping[str, Mapping[str, Any] | None] | None) -> FieldRegistry:
    """Validate CRAWLED_FIELDS_SETTINGS strictly, raising FieldSettingsError at the first error."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise FieldSettingsError(
            SETTING, raw, "a dict mapping crawled field names to None or a dict of options"
        )
    for name in raw:
        if type(name) is not str or not name:
            raise FieldSettingsError(
                SETTING,
                name,
                "non-empty strings",
                problem=f"has the field name {name!r}",
                kind="field names",
            )
    hidden = frozenset(name for name, spec in raw.items() if spec is None)
    return FieldRegistry(
        {name: None if s is None else _parse_spec(name, s, hidden) for name, s in raw.items()}
    )
