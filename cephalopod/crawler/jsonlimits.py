"""Parse untrusted JSON replies with bounds on nesting depth and key count."""

from __future__ import annotations

import json
from typing import Any


class JSONLimitError(ValueError):
    """The document is valid JSON but exceeds a configured bound."""


def measure(value: Any) -> tuple[int, int]:
    """Return (nesting depth, total number of object keys) without recursion."""
    max_depth = 0
    keys = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if type(node) is dict:
            keys += len(node)
            children = node.values()
        elif type(node) is list:
            children = node
        else:
            continue
        if depth > max_depth:
            max_depth = depth
        for child in children:
            if type(child) is dict or type(child) is list:
                stack.append((child, depth + 1))
    return max_depth, keys


def contains_nul(value: Any) -> bool:
    """Tell whether any string or key in a decoded document contains a NUL character."""
    stack = [value]
    while stack:
        node = stack.pop()
        if type(node) is str:
            if "\x00" in node:
                return True
        elif type(node) is dict:
            stack.extend(node)
            stack.extend(node.values())
        elif type(node) is list:
            stack.extend(node)
    return False


def loads_limited(body: bytes, *, max_depth: int, max_keys: int) -> Any:
    """Decode JSON, refusing documents deeper than max_depth or with more than max_keys keys.

    Raises JSONLimitError for an exceeded bound or a NUL character (valid JSON, but no
    PostgreSQL text or jsonb value can hold one) and ValueError for anything that is not
    valid JSON (including text that is not UTF-8 and absurdly long integers).
    """
    try:
        value = json.loads(body)
    except RecursionError:
        # The C decoder gives up near the interpreter's recursion limit (~1000 levels).
        raise JSONLimitError(f"JSON nested deeper than {max_depth} levels") from None
    # In UTF-8 a NUL can only come as the escape \u0000; a UTF-16/32 body has zero bytes
    # everywhere. Only then is the document walked.
    if (b"\\u0000" in body or b"\x00" in body) and contains_nul(value):
        raise JSONLimitError("JSON contains a NUL character")
    # Cheap upper bounds first: nothing nests deeper than it has brackets or holds more keys
    # than it has colons, so the typical small reply needs no walk at all.
    if body.count(b"[") + body.count(b"{") <= max_depth and body.count(b":") <= max_keys:
        return value
    depth, keys = measure(value)
    if depth > max_depth:
        raise JSONLimitError(f"JSON nested deeper than {max_depth} levels")
    if keys > max_keys:
        raise JSONLimitError(f"JSON has more than {max_keys} keys")
    return value
