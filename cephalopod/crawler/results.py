"""What a fetch gives back: endpoints, limits, results, and the decoding of raw replies.

Plain data and pure functions with no HTTP client: the crawl's writer decodes the replies
that the fetcher hands over raw, and the store reads the results, without importing aiohttp.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from cephalopod.jsonlimits import JSONLimitError, loads_limited

#: The caller's opaque key of a crawl target, handed back in its result (the crawl: an id).
K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One path to GET on every instance, appended verbatim to the instance base URL."""

    url: str
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FetchLimits:
    """Bounds that keep one misbehaving instance from hurting the crawl."""

    connect_timeout: float = 5.0  # seconds to establish a TCP connection
    total_timeout: float = 15.0  # seconds per endpoint, all redirect hops and the body included
    max_bytes: int = 1 << 20  # decoded body size
    max_redirects: int = 3
    max_depth: int = 32  # JSON nesting levels
    max_keys: int = 10_000  # object keys in one reply, all levels together

    def __post_init__(self) -> None:
        if self.connect_timeout <= 0 or self.total_timeout <= 0:
            raise ValueError("timeouts must be positive")
        if self.max_bytes < 1 or self.max_redirects < 0 or self.max_keys < 0:
            raise ValueError("max_bytes must be positive, max_redirects/max_keys non-negative")
        if not 1 <= self.max_depth <= 500:
            # json.loads itself gives up near the interpreter recursion limit (~1000).
            raise ValueError("max_depth must be between 1 and 500")


@dataclass(slots=True)
class FetchResult(Generic[K]):
    """Outcome for one instance: merged data on success, a short human error otherwise.

    A fetcher made with ``decode=False`` leaves ``data`` None on success and hands the raw
    replies over in ``bodies`` instead, for `decode_result` to finish elsewhere.
    """

    key: K
    ok: bool
    data: dict[str, Any] | None
    error: str | None
    ip: str | None  # peer actually connected to; on failure the address tried, if known
    started_at: datetime
    duration: float  # seconds
    bodies: tuple[bytes, ...] | None = None

    @property
    def size(self) -> int:
        """Bytes of raw replies this result holds (0 once decoded)."""
        return sum(map(len, self.bodies)) if self.bodies else 0


class FetchError(Exception):
    """An instance misbehaved; the message is the human-readable crawl error."""


def format_seconds(value: float) -> str:
    """Render a timeout for humans: 15.0 -> "15", 0.5 -> "0.5"."""
    return f"{value:g}"


def format_size(value: int) -> str:
    """Render a byte count for humans: 1048576 -> "1 MiB"."""
    for unit, size in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if value >= size and value % size == 0:
            return f"{value // size} {unit}"
    return f"{value} bytes"


def decode_reply(body: bytes, endpoint: Endpoint, limits: FetchLimits) -> dict[str, Any]:
    """Parse one endpoint's reply within the limits; it must be a JSON object."""
    try:
        value = loads_limited(body, max_depth=limits.max_depth, max_keys=limits.max_keys)
    except JSONLimitError as exc:
        raise FetchError(str(exc)) from None
    except ValueError:
        raise FetchError(f"invalid JSON from {endpoint.url}") from None
    if type(value) is not dict:
        raise FetchError("response is not a JSON object")
    return value


def decode_result(
    result: FetchResult[K], endpoints: Sequence[Endpoint], limits: FetchLimits
) -> FetchResult[K]:
    """Finish a result fetched with ``decode=False``: parse and merge its replies in order.

    A bad reply fails the instance with the error the fetcher would have given it. (One
    difference: a decoding fetcher stops at the first bad reply, where this one has fetched
    them all first, so a later endpoint's HTTP failure is the error reported instead.) Lets a
    crawl parse JSON in its writer, off the event loop's core.
    """
    if result.bodies is None:
        return result
    data: dict[str, Any] = {}
    try:
        for body, endpoint in zip(result.bodies, endpoints, strict=True):
            data.update(decode_reply(body, endpoint, limits))
    except FetchError as exc:
        result.ok, result.data, result.error = False, None, str(exc)
    else:
        result.data = data
    result.bodies = None
    return result
