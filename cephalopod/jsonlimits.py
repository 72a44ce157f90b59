"""Parse untrusted JSON (crawled replies, request bodies) with bounds on depth and key count."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from typing import Any


class JSONLimitError(ValueError):
    """The document is valid JSON but exceeds a configured bound."""


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400
        raise ValueError(f"{text[:20]} is beyond a float's range")
    return value


#: Python's decoder also takes NaN and ±Infinity, which no JSON parser (nor PostgreSQL's
#: jsonb) accepts, and turns 1e400 into an infinity: stored, they would make the admin API's
#: replies invalid JSON.
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)


def measure(value: Any) -> tuple[int, int]:
    """Return (nesting depth, total number of object keys) without recursion."""
    max_depth = 0
    keys = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    children: Iterable[Any]
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


def unstorable_text(value: Any) -> str | None:
    """Say what makes a decoded document's strings or keys unstorable, if anything does.

    A NUL character (no PostgreSQL text or jsonb value holds one) or an unpaired surrogate
    (valid JSON as an escape, but no UTF-8 text holds it: every database driver refuses it).
    """
    stack = [value]
    while stack:
        node = stack.pop()
        if type(node) is str:
            if "\x00" in node:
                return "JSON contains a NUL character"
            if not node.isascii():
                try:
                    node.encode()
                except UnicodeEncodeError:
                    return "JSON contains an unpaired surrogate"
        elif type(node) is dict:
            stack.extend(node)
            stack.extend(node.values())
        elif type(node) is list:
            stack.extend(node)
    return None


#: What a body must contain for a string in it to be unstorable (see `loads_limited`): in
#: UTF-8, a NUL can only come as the escape \u0000 and a surrogate as an escape
#: \uD800-\uDFFF or as bytes ED A0-BF (which json.loads lets through); a UTF-16/32 body
#: has zero bytes everywhere. A match only means that the document is walked.
_MAY_HOLD_UNSTORABLE_TEXT = re.compile(rb"\x00|\\u(?:0000|[dD])|\xed")


def loads_limited(body: bytes, *, max_depth: int, max_keys: int, check_text: bool = True) -> Any:
    """Decode JSON, refusing documents deeper than max_depth or with more than max_keys keys.

    Raises JSONLimitError for an exceeded bound or unstorable text (a NUL character or an
    unpaired surrogate: valid JSON, but not storable, see `unstorable_text`) and ValueError
    for anything that is not valid JSON (including text that is not UTF-8 and absurdly long
    integers). ``check_text=False`` leaves unstorable text to the caller (a request's fields
    are validated one by one, so that the error names the field).
    """
    try:
        # what json.loads does with bytes, with the strict decoder
        value = _DECODER.decode(body.decode(json.detect_encoding(body), "surrogatepass"))
    except RecursionError:
        # The C decoder gives up near the interpreter's recursion limit (~1000 levels).
        raise JSONLimitError(f"JSON nested deeper than {max_depth} levels") from None
    if check_text and _MAY_HOLD_UNSTORABLE_TEXT.search(body) and (reason := unstorable_text(value)):
        raise JSONLimitError(reason)
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
