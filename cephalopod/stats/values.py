"""Display values as rows of ``instance_fields``: what the crawl store and a recompute write."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from cephalopod.stats.aggregate import display_value, split_display
from cephalopod.stats.fields import FieldRegistry

#: Longest display string kept for grouping and sorting (the full value stays in crawled_data).
MAX_DISPLAY_CHARS = 250


def display_rows(
    instance_id: int, data: Mapping[str, Any], registry: FieldRegistry
) -> Iterator[dict[str, Any]]:
    """Yield one ``instance_fields`` row per visible field that has a display value."""
    for name, raw in data.items():
        if registry.is_hidden(name) or len(name) > 255:
            continue
        value = display_value(raw, registry.spec(name))
        if value is None:
            continue
        if isinstance(value, str) and len(value) > MAX_DISPLAY_CHARS:
            value = value[: MAX_DISPLAY_CHARS - 1] + "…"
        text, num = split_display(value)
        yield {"instance_id": instance_id, "field": name, "value_text": text, "value_num": num}
