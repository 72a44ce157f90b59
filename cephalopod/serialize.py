"""Typed rows as JSON replies: the one place that turns them into the API's JSON.

``msgspec.to_builtins`` writes what the API always wrote: UUIDs as text, timestamps in ISO 8601
with ``Z`` (microseconds only when there are some), dates as ``YYYY-MM-DD``, keys in the
declared field order; Flask's JSON provider then writes the reply as before.
"""

from __future__ import annotations

from typing import Any

import msgspec
from flask import Response, jsonify


def builtins(value: Any) -> Any:
    """Return a typed row (or a list or dict of them) as plain JSON values."""
    return msgspec.to_builtins(value)


def reply(value: Any) -> Response:
    """Return a typed row as the JSON reply."""
    return jsonify(builtins(value))
