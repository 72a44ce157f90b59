"""Fetch the JSON endpoints of many instances concurrently, safely and cheaply.

Knows nothing about the database or Flask: targets go in as (key, base_url) pairs and
`FetchResult` objects come out. Every connection, including each redirect hop, goes
through the SSRF guard in `cephalopod.crawler.guard`.
"""

from __future__ import annotations

import asyncio
import contextvars
import errno
import logging
import re
import time
from collections.abc import (
    AsyncIterator,
    Iterable,
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self, final

import aiohttp
from aiohttp.abc import AbstractResolver
from yarl import URL

from cephalopod.crawler.deadlines import Deadlines
from cephalopod.crawler.guard import AddressNotAllowedError, IPNetwork, guarded_socket_factory
from cephalopod.crawler.results import (
    Endpoint,
    FetchError,
    FetchLimits,
    FetchResult,
    K,
    decode_reply,
    format_seconds,
    format_size,
)
from cephalopod.crawler.targets import Targets, target_reader

logger = logging.getLogger(__name__)

DEFAULT_USER_AGENT = "Cephalopod-crawler/1.0"
_SCHEMES = frozenset({"http", "https"})
# Host names as yarl hands them over (IDNA already applied); IPv6 literals contain ":".
_HOST_RE = re.compile(r"[A-Za-z0-9._-]+|[0-9A-Fa-f:.]+(%[A-Za-z0-9._-]+)?")
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# Credentials must not follow a redirect to another origin (same rule as browsers/aiohttp).
_CREDENTIAL_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})
_CONNECT_ERRNOS: dict[int | None, str] = {  # looked up by OSError.errno, None when it has none
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.ENETUNREACH: "network unreachable",
    errno.EHOSTUNREACH: "host unreachable",
}


@dataclass(slots=True)
class _Trace:
    """Per-fetch record of addresses, filled in by the connector and the socket factory."""

    ip: str | None = None
    blocked: str | None = None


@final  # so that `type(item) is _WorkerDone` tells mypy the other branch has a FetchResult
@dataclass(frozen=True, slots=True)
class _WorkerDone:
    """Sentinel a fetch_all worker queues when it stops, carrying the iterable's error if any."""

    error: Exception | None


_trace: contextvars.ContextVar[_Trace | None] = contextvars.ContextVar(
    "cephalopod_fetch_trace", default=None
)


def _record_attempt(address: str, allowed: bool) -> None:
    trace = _trace.get()
    if trace is not None:
        trace.ip = address
        if not allowed:
            trace.blocked = address


class _TracingConnector(aiohttp.TCPConnector):
    """TCPConnector that notes the peer of every connection handed out, pooled or new."""

    async def connect(self, req: Any, traces: Any, timeout: Any) -> aiohttp.connector.Connection:
        conn = await super().connect(req, traces, timeout)
        trace = _trace.get()
        if trace is not None and conn.transport is not None:
            peer = conn.transport.get_extra_info("peername")
            if peer:
                trace.ip = peer[0]
        return conn


def parse_target_url(url: str) -> URL:
    """Parse a URL to crawl, accepting only absolute http(s) URLs with a host."""
    try:
        parsed = URL(url)
        host = parsed.raw_host
    except (ValueError, TypeError):
        raise FetchError("invalid URL") from None
    if parsed.scheme and parsed.scheme not in _SCHEMES:
        raise FetchError(f"unsupported URL scheme {parsed.scheme!r}")
    if not parsed.scheme or not host or not _HOST_RE.fullmatch(host):
        raise FetchError("invalid URL")
    return parsed


def _same_origin(a: URL, b: URL) -> bool:
    return (a.scheme, a.host, a.port) == (b.scheme, b.host, b.port)


def describe_client_error(exc: aiohttp.ClientError, limits: FetchLimits) -> str:
    """Turn aiohttp's exception zoo into a short crawl error."""
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return f"cannot resolve host {exc.host}"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return "TLS certificate verification failed"
    if isinstance(exc, aiohttp.ClientSSLError):
        return "TLS handshake failed"
    if isinstance(exc, aiohttp.ClientConnectorError):
        os_error = exc.os_error
        if isinstance(os_error, AddressNotAllowedError):
            return str(os_error)
        if os_error.errno in _CONNECT_ERRNOS:
            return _CONNECT_ERRNOS[os_error.errno]
        return f"cannot connect: {os_error.strerror or os_error}"
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return f"connect timeout after {format_seconds(limits.connect_timeout)} s"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "server disconnected"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "malformed response body"
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"invalid HTTP response: {exc.message}"
    if isinstance(exc, aiohttp.InvalidURL):
        return "invalid URL"
    if isinstance(exc, aiohttp.ClientOSError):
        return _CONNECT_ERRNOS.get(exc.errno, f"connection error: {exc.strerror or exc}")
    return f"request failed: {type(exc).__name__}"


class Fetcher:
    """Async context manager owning the one HTTP session shared by all fetches."""

    def __init__(
        self,
        endpoints: Sequence[Endpoint],
        limits: FetchLimits = FetchLimits(),
        concurrency: int = 100,
        allowed_networks: Iterable[str | IPNetwork] = (),
        user_agent: str = DEFAULT_USER_AGENT,
        resolver: AbstractResolver | None = None,
        decode: bool = True,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.endpoints = tuple(endpoints)
        self.decode = decode
        self.limits = limits
        self.concurrency = concurrency
        self._allowed_networks = tuple(allowed_networks)
        self._user_agent = user_agent
        self._resolver = resolver
        self._session: aiohttp.ClientSession | None = None
        self._deadlines = Deadlines(limits.total_timeout)
        self._sweeper: asyncio.Task[None] | None = None
        #: True once fetch_all has started every target: what it yields from then on are
        #: the last fetches in flight (a consumer may stop batching them up)
        self.targets_exhausted = False
        self._timeout_message = f"timeout after {format_seconds(limits.total_timeout)} s"
        self._size_message = f"response larger than {format_size(limits.max_bytes)}"

    async def __aenter__(self) -> Self:
        connector = _TracingConnector(
            limit=self.concurrency,
            limit_per_host=0,
            resolver=self._resolver,
            socket_factory=guarded_socket_factory(self._allowed_networks, _record_attempt),
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.limits.connect_timeout),
            headers={"User-Agent": self._user_agent, "Accept": "application/json"},
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
        )
        self._sweeper = asyncio.create_task(self._deadlines.sweep_forever())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
            self._sweeper = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def fetch_instance(self, key: K, base_url: str) -> FetchResult[K]:
        """GET every endpoint of one instance and merge the replies; never raises for bad peers."""
        trace = _Trace()
        token = _trace.set(trace)
        try:
            return await self._fetch_instance(key, base_url, trace)
        finally:
            _trace.reset(token)

    async def fetch_all(
        self,
        targets: Targets[K],
        *,
        chunked: bool = False,
    ) -> AsyncIterator[FetchResult[K]]:
        """Fetch many instances, at most `concurrency` at once, yielding results as they finish.

        `concurrency` long-lived workers pull targets lazily and hand results over through a
        bounded queue, so neither a huge target iterable nor a slow consumer costs unbounded
        memory. An exception raised by the target iterable is re-raised here. With
        ``chunked``, an async iterable yields sequences of targets (cheaper per target).
        """
        results: asyncio.Queue[FetchResult[K] | _WorkerDone] = asyncio.Queue(self.concurrency)
        next_target = target_reader(targets, chunked)
        self.targets_exhausted = False

        async def worker() -> None:
            trace = _Trace()
            _trace.set(trace)  # this task's own context: set once, reused per instance
            error = None
            try:
                while (target := await next_target()) is not None:
                    await results.put(await self._fetch_instance(target[0], target[1], trace))
                self.targets_exhausted = True
            except Exception as exc:  # from the caller's iterable: hand it to the consumer
                error = exc
            await results.put(_WorkerDone(error))

        workers = [asyncio.create_task(worker()) for _ in range(self.concurrency)]
        running = len(workers)
        try:
            while running:
                item = await results.get()
                if type(item) is _WorkerDone:
                    running -= 1
                    if item.error is not None:
                        raise item.error
                else:
                    yield item
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    async def _fetch_instance(self, key: K, base_url: str, trace: _Trace) -> FetchResult[K]:
        started_at = datetime.now(UTC)
        start = time.monotonic()
        trace.ip = trace.blocked = None
        data: dict[str, Any] | None = {} if self.decode else None
        bodies: list[bytes] = []
        error = None
        try:
            for endpoint in self.endpoints:
                body = await self._get(base_url + endpoint.url, endpoint, trace)
                if data is None:
                    bodies.append(body)
                else:
                    data.update(decode_reply(body, endpoint, self.limits))
        except FetchError as exc:
            data, error = None, str(exc)
        except Exception as exc:  # a bug must not end the whole crawl
            logger.exception("unexpected error crawling %r (%s)", key, base_url)
            data, error = None, f"internal error: {type(exc).__name__}"
        return FetchResult(
            key=key,
            ok=error is None,
            data=data,
            error=error,
            ip=trace.ip,
            started_at=started_at,
            duration=time.monotonic() - start,
            bodies=tuple(bodies) if error is None and not self.decode else None,
        )

    async def _get(self, url: str, endpoint: Endpoint, trace: _Trace) -> bytes:
        """GET url within the total timeout, following redirects by hand to check every hop."""
        assert self._session is not None, "use Fetcher as an async context manager"
        task = asyncio.current_task()
        assert task is not None
        self._deadlines.enter(task)
        try:
            target = parse_target_url(url)
            headers: Mapping[str, str] | None = endpoint.headers or None
            for _hop in range(self.limits.max_redirects + 1):
                trace.blocked = None
                try:
                    async with self._session.get(
                        target, headers=headers, allow_redirects=False
                    ) as resp:
                        status = resp.status
                        if 200 <= status < 300:
                            body = await self._read_body(resp)
                            break
                        location = resp.headers.get("Location") if status in _REDIRECTS else None
                        if location is None:
                            raise FetchError(f"HTTP {status} from {endpoint.url}")
                except aiohttp.ClientError as exc:
                    if trace.blocked is not None:
                        # happy eyeballs may merge several failures into one plain OSError
                        raise FetchError(f"address {trace.blocked} is not public") from None
                    raise FetchError(describe_client_error(exc, self.limits)) from None
                try:
                    next_target = target.join(URL(location))
                except (ValueError, TypeError):
                    raise FetchError(f"invalid redirect location from {endpoint.url}") from None
                next_target = parse_target_url(str(next_target))
                if headers and not _same_origin(target, next_target):
                    headers = {
                        k: v for k, v in headers.items() if k.lower() not in _CREDENTIAL_HEADERS
                    }
                target = next_target
            else:
                raise FetchError("too many redirects")
        except BaseException as exc:
            if not self._deadlines.leave(task):
                raise
            # Our own cancellation: take it back, unless someone else cancelled us too.
            if task.uncancel() > 0 and isinstance(exc, asyncio.CancelledError):
                raise
            raise FetchError(self._timeout_message) from None
        if self._deadlines.leave(task):  # a cancellation swallowed somewhere below
            task.uncancel()
            raise FetchError(self._timeout_message)
        return body

    async def _read_body(self, resp: aiohttp.ClientResponse) -> bytes:
        """Read the (decoded) body, giving up as soon as it exceeds max_bytes."""
        limit = self.limits.max_bytes
        length = resp.content_length
        if length is not None and "Content-Encoding" not in resp.headers:
            if length > limit:
                raise FetchError(self._size_message)
            return await resp.read()  # the parser stops at Content-Length
        chunks = []
        size = 0
        content = resp.content
        while chunk := await content.readany():
            size += len(chunk)
            if size > limit:
                resp.close()
                raise FetchError(self._size_message)
            chunks.append(chunk)
        return b"".join(chunks)
