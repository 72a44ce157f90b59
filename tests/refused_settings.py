"""The one check of a refused setting, shared by the settings tests of every part.

A row is (overrides, the key as the message names it, the bad value's repr, a piece of what
is accepted): loading the overrides must fail with one line naming all three.
"""

from __future__ import annotations

from typing import Any

import pytest

from cephalopod.settings import SettingsError, load_settings

Refused = tuple[dict[str, Any], str, str, str]


def each_refused(rows: list[Refused]) -> pytest.MarkDecorator:
    """Parametrize a test over the rows, as (overrides, key, value, accepted), ids KEY=value."""
    return pytest.mark.parametrize(
        ("overrides", "key", "value", "accepted"), rows, ids=[f"{r[1]}={r[2]}" for r in rows]
    )


def assert_refused(overrides: dict[str, Any], key: str, value: str, accepted: str) -> None:
    """Loading ``overrides`` fails with one line that names the key, the value and what is
    accepted."""
    with pytest.raises(SettingsError) as exc:
        load_settings(overrides=overrides)
    message = str(exc.value)
    assert key in message
    assert value in message
    assert accepted in message
    assert "\n" not in message  # one sentence, not a report
