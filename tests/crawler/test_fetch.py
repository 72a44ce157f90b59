"""Fetcher against real local servers: good, broken and hostile instances."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import time
import tracemalloc
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import aclosing
from pathlib import Path
from typing import Any

import pytest

from cephalopod.crawler.fetch import Fetcher
from cephalopod.crawler.results import (
    Endpoint,
    FetchLimits,
    FetchResult,
    decode_result,
    format_seconds,
    format_size,
)
from tests.crawler.servers import (
    HUGE_BYTES,
    OK_DATA,
    NoDNSResolver,
    ServerLoop,
    Stats,
    behaviour_app,
    gzip_bomb,
    json_reply,
    url_for,
)

LOOPBACK = ("127.0.0.0/8",)
FAST = FetchLimits(connect_timeout=2.0, total_timeout=5.0)  # generous: CI may be loaded
MiB = 1 << 20


def fetch(
    base_url: str,
    *endpoints: str | Endpoint,
    limits: FetchLimits = FAST,
    allowed: Sequence[str] = LOOPBACK,
    decode: bool = True,
    then_good: str | None = None,
    **kwargs: Any,
) -> FetchResult:
    """Fetch one instance with a fresh Fetcher, the way the crawler would.

    With ``decode=False`` the replies are parsed afterwards by `decode_result`, as a crawl's
    writer does; the outcome must be the same. With ``then_good`` (the base URL of a
    well-behaved instance) the same fetcher crawls that one next, which must succeed.
    """
    eps = [e if isinstance(e, Endpoint) else Endpoint(e) for e in endpoints]

    async def go() -> FetchResult:
        kwargs.setdefault("resolver", NoDNSResolver())
        async with Fetcher(
            eps, limits, allowed_networks=allowed, decode=decode, **kwargs
        ) as fetcher:
            result = await fetcher.fetch_instance("key", base_url)
            if then_good is not None:
                good = await fetcher.fetch_instance("good", then_good)
                good = decode_result(good, eps, limits)
                assert (good.ok, good.error) == (True, None)
                assert good.data == (OK_DATA if eps else {})
            return result

    result = asyncio.run(go())
    if decode:
        assert result.bodies is None
        return result
    if result.ok:
        assert result.data is None
        assert result.bodies is not None
        assert len(result.bodies) == len(eps)
        assert result.size == sum(len(b) for b in result.bodies)
    else:
        assert result.bodies is None  # a failed fetch keeps nothing of the replies
    decoded = decode_result(result, eps, limits)
    assert decoded.bodies is None
    assert decoded.size == 0
    return decoded


DECODE = pytest.mark.parametrize("decode", [True, False], ids=["in-fetcher", "by-writer"])


@pytest.fixture
def stats_base(servers: ServerLoop) -> tuple[Stats, str]:
    """A fresh server whose Stats belong to this test alone."""
    stats = Stats()
    return stats, servers.start_app(behaviour_app(stats))


# --- success ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoints", "expected"),
    [
        (["/ok"], OK_DATA),
        (["/gzip"], OK_DATA),
        (["/textjson"], {"a": 1}),
        (["/data?a=1&b=1", "/data?b=2&c=2"], {"a": "1", "b": "2", "c": "2"}),
        (["/data?b=2&c=2", "/data?a=1&b=1"], {"a": "1", "b": "1", "c": "2"}),
        (["/ok", "/data?version=9"], {**OK_DATA, "version": "9"}),
        ([], {}),
        (["/chain/3"], OK_DATA),
        (["/redirect?to=/ok&code=301"], OK_DATA),
        (["/redirect?to=/ok&code=303"], OK_DATA),
        (["/redirect?to=/ok&code=307"], OK_DATA),
        (["/redirect?to=/ok&code=308"], OK_DATA),
        (["/redirect?to=chain/0"], OK_DATA),
        (["/deep?n=32&kind=obj"], json.loads('{"a": ' * 32 + "1" + "}" * 32)),
    ],
)
@DECODE
def test_success_merges_objects_in_order(
    base: str, endpoints: list[str], expected: dict, decode: bool
) -> None:
    result = fetch(base, *endpoints, decode=decode)
    assert (result.ok, result.error, result.data) == (True, None, expected)
    assert result.key == "key"
    assert result.ip == ("127.0.0.1" if endpoints else None)
    assert 0 <= result.duration < 3
    assert result.started_at.tzinfo is not None


@pytest.mark.parametrize(
    ("path", "limits"),
    [
        ("/sized?n=1048576", FAST),
        ("/sized?n=1048576&chunked=1", FAST),
        ("/sized?n=100", FetchLimits(max_bytes=100)),
        ("/sized?n=100&chunked=1", FetchLimits(max_bytes=100)),
        ("/keys?n=10000", FAST),
        ("/keys?n=5", FetchLimits(max_keys=5)),
        ("/deep?n=3&kind=obj", FetchLimits(max_depth=3)),
        ("/chain/1", FetchLimits(max_redirects=1)),
        ("/ok", FetchLimits(max_redirects=0)),
    ],
)
def test_limits_are_inclusive(base: str, path: str, limits: FetchLimits) -> None:
    result = fetch(base, path, limits=limits)
    assert result.ok, result.error


def test_base_url_and_endpoint_are_concatenated(base: str) -> None:
    assert fetch(base + "/chain", "/2").data == OK_DATA
    assert fetch(base + "/da", "ta?x=1").data == {"x": "1"}


def test_ip_is_the_peer_actually_connected(servers: ServerLoop, base: str) -> None:
    other = servers.start_app(behaviour_app(), host="127.0.0.2")
    assert fetch(other, "/ok").ip == "127.0.0.2"
    # after a redirect, the final hop is what answered
    result = fetch(base, f"/redirect?to={other}/ok")
    assert (result.ok, result.ip) == (True, "127.0.0.2")


# --- misbehaviour, one table -----------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoints", "error"),
    [
        (["/status/500"], "HTTP 500 from /status/500"),
        (["/status/404"], "HTTP 404 from /status/404"),
        (["/status/204"], "invalid JSON from /status/204"),
        (["/ok", "/status/503"], "HTTP 503 from /status/503"),
        (["/status/500", "/ok"], "HTTP 500 from /status/500"),
        (["/list"], "response is not a JSON object"),
        (["/string"], "response is not a JSON object"),
        (["/null"], "response is not a JSON object"),
        (["/ok", "/list"], "response is not a JSON object"),
        (["/invalid"], "invalid JSON from /invalid"),
        (["/empty"], "invalid JSON from /empty"),
        (["/html"], "invalid JSON from /html"),
        (["/notutf8"], "invalid JSON from /notutf8"),
        (["/bigint"], "invalid JSON from /bigint"),
        (["/loop"], "too many redirects"),
        (["/chain/4"], "too many redirects"),
        (["/redirect"], "HTTP 302 from /redirect"),
        (["/redirect?to=ftp://127.0.0.1/x"], "unsupported URL scheme 'ftp'"),
        (["/redirect?to=file:///etc/passwd"], "unsupported URL scheme 'file'"),
        (["/redirect?to=http://[::1"], "invalid redirect location from /redirect?to=http://[::1"),
        (["/redirect?to=http://a%20b/"], "invalid URL"),
        (["/deep?n=10000"], "JSON nested deeper than 32 levels"),
        (["/deep?n=10000&kind=obj"], "JSON nested deeper than 32 levels"),
        (["/deep?n=33&kind=obj"], "JSON nested deeper than 32 levels"),
        (["/deep?n=33"], "JSON nested deeper than 32 levels"),
        (["/keys?n=10001"], "JSON has more than 10000 keys"),
        (["/huge"], "response larger than 1 MiB"),
        (["/huge?cl=1"], "response larger than 1 MiB"),
        (["/sized?n=1048577"], "response larger than 1 MiB"),
        (["/sized?n=1048577&chunked=1"], "response larger than 1 MiB"),
    ],
)
@DECODE
def test_misbehaving_instance_fails_cleanly(
    base: str, endpoints: list[str], error: str, decode: bool
) -> None:
    """Each misbehaviour ends as the crawl error that names it (the limit it broke, not a
    timeout: a reply over a limit is cut there), and the crawler goes on as before."""
    result = fetch(base, *endpoints, decode=decode, then_good=f"{base}/good")
    assert (result.ok, result.data, result.error) == (False, None, error)
    assert result.ip == "127.0.0.1"


@pytest.mark.parametrize(
    ("path", "limits", "error"),
    [
        ("/sized?n=101", FetchLimits(max_bytes=100), "response larger than 100 bytes"),
        ("/sized?n=101&chunked=1", FetchLimits(max_bytes=100), "response larger than 100 bytes"),
        ("/sized?n=2049", FetchLimits(max_bytes=2048), "response larger than 2 KiB"),
        ("/keys?n=6", FetchLimits(max_keys=5), "JSON has more than 5 keys"),
        ("/deep?n=4&kind=obj", FetchLimits(max_depth=3), "JSON nested deeper than 3 levels"),
        ("/chain/2", FetchLimits(max_redirects=1), "too many redirects"),
        ("/chain/1", FetchLimits(max_redirects=0), "too many redirects"),
    ],
)
@DECODE
def test_configured_limits(
    base: str, path: str, limits: FetchLimits, error: str, decode: bool
) -> None:
    assert fetch(base, path, limits=limits, decode=decode).error == error


@pytest.mark.parametrize("path", ["/hang", "/dribble", "/redirect?to=/hang"])
def test_total_timeout_cuts_hanging_and_dribbling_servers(base: str, path: str) -> None:
    limits = FetchLimits(connect_timeout=0.5, total_timeout=0.5)
    result = fetch(base, path, limits=limits)
    assert (result.ok, result.error) == (False, "timeout after 0.5 s")
    assert 0.5 <= result.duration < 1.5


def test_timeouts_leave_the_task_usable_and_respect_outside_cancellation(base: str) -> None:
    limits = FetchLimits(connect_timeout=0.5, total_timeout=0.3)

    async def go() -> None:
        async with Fetcher([Endpoint("")], limits, allowed_networks=LOOPBACK) as fetcher:
            me = asyncio.current_task()
            assert me is not None
            hung = await fetcher.fetch_instance("a", base + "/hang")
            assert hung.error == "timeout after 0.3 s"
            assert me.cancelling() == 0  # our cancellation was taken back
            assert (await fetcher.fetch_instance("b", base + "/ok")).ok
            # someone else's timeout or cancellation is theirs, not an instance error
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.1):
                    await fetcher.fetch_instance("c", base + "/hang")
            task = asyncio.create_task(fetcher.fetch_instance("d", base + "/hang"))
            await asyncio.sleep(0.1)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert (await fetcher.fetch_instance("e", base + "/ok")).ok

    asyncio.run(go())


@pytest.mark.parametrize("path", ["/huge", "/huge?cl=1"], ids=["chunked", "content-length"])
def test_huge_reply_is_not_read_to_the_end(stats_base: tuple[Stats, str], path: str) -> None:
    stats, base = stats_base
    assert fetch(base, path).error == "response larger than 1 MiB"
    deadline = time.monotonic() + 2
    while stats.active and time.monotonic() < deadline:  # the handler notices the close
        time.sleep(0.01)
    assert stats.active == 0
    assert stats.bytes_sent < HUGE_BYTES / 4


def test_gzip_bomb_does_not_inflate_in_memory(base: str) -> None:
    assert len(gzip_bomb()) < MiB  # small on the wire; built outside the measurement
    fetch(base, "/gzip")  # warm up imports and caches too
    tracemalloc.start()
    try:
        result = fetch(base, "/gzip?bomb=1")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.error == "response larger than 1 MiB"
    assert peak < 16 * MiB


# --- requests as sent ------------------------------------------------------------------


def test_endpoint_headers_and_user_agent_are_sent(stats_base: tuple[Stats, str]) -> None:
    stats, base = stats_base
    endpoints = [Endpoint("/ok", {"X-Token": "abc"}), Endpoint("/data?b=1", {})]
    assert fetch(base, *endpoints).ok
    first, second = stats.headers
    assert first["X-Token"] == "abc"
    assert "X-Token" not in second
    assert first["User-Agent"] == "Cephalopod-crawler/1.0"
    assert fetch(base, "/ok", user_agent="Test/2").ok
    assert stats.headers[-1]["User-Agent"] == "Test/2"


@pytest.mark.parametrize("cross_origin", [False, True])
def test_credentials_do_not_follow_cross_origin_redirects(
    servers: ServerLoop, cross_origin: bool
) -> None:
    target_stats, source_stats = Stats(), Stats()
    target = servers.start_app(behaviour_app(target_stats))
    source = target if not cross_origin else servers.start_app(behaviour_app(source_stats))
    headers = {"Authorization": "Bearer secret", "X-Indico": "yes"}
    result = fetch(source, Endpoint(f"/redirect?to={target}/ok", headers))
    assert result.ok, result.error
    final = target_stats.headers[-1]
    assert final["X-Indico"] == "yes"
    assert ("Authorization" in final) is not cross_origin


# --- connection-level failures ---------------------------------------------------------


def test_connection_refused_reports_the_address() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, never listening: connects are refused
        result = fetch(url_for("127.0.0.1", sock.getsockname()[1]), "/ok")
    assert (result.ok, result.error, result.ip) == (False, "connection refused", "127.0.0.1")


def test_connect_timeout() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = []
        try:
            for _ in range(4):  # fill the accept queue; later SYNs are dropped
                filler = socket.socket()
                filler.setblocking(False)
                fillers.append(filler)
                filler.connect_ex(("127.0.0.1", port))
            time.sleep(0.05)
            limits = FetchLimits(connect_timeout=0.3, total_timeout=2.0)
            result = fetch(url_for("127.0.0.1", port), "/ok", limits=limits)
        finally:
            for filler in fillers:
                filler.close()
    assert (result.ok, result.error) == (False, "connect timeout after 0.3 s")
    assert 0.3 <= result.duration < 1.5


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (None, "server disconnected"),
        (b"HELLO WORLD\r\n\r\n", "invalid HTTP response"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{}", "malformed response body"),
        (b"HTTP/1.1 200 OK\r\n" + b"X-Pad: 1\r\n" * 200 + b"\r\n{}", "invalid HTTP response"),
        (b"HTTP/1.1 200 OK\r\nX-Pad: " + b"x" * 20000 + b"\r\n\r\n{}", "invalid HTTP response"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", None),
        (json_reply({"raw": True}), None),
    ],
)
def test_broken_http(servers: ServerLoop, reply: bytes | None, error: str | None) -> None:
    result = fetch(servers.start_raw(reply), "/ok")
    if error is None:
        assert result.ok, result.error
    else:
        assert result.error is not None
        assert result.error.startswith(error), result.error


def test_untrusted_tls_certificate(servers: ServerLoop, tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    openssl = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    openssl += ["-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)]
    subprocess.run(openssl, check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    url = servers.start_app(behaviour_app(), ssl_context=context)
    assert url.startswith("https://127.0.0.1:")
    result = fetch(url, "/ok")
    assert (result.ok, result.error, result.ip) == (
        False,
        "TLS certificate verification failed",
        "127.0.0.1",
    )


@pytest.mark.parametrize(
    ("base_url", "error"),
    [
        ("ftp://127.0.0.1", "unsupported URL scheme 'ftp'"),
        ("file://", "unsupported URL scheme 'file'"),
        ("gopher://127.0.0.1:70", "unsupported URL scheme 'gopher'"),
        ("", "invalid URL"),
        ("not a url", "invalid URL"),
        ("http://", "invalid URL"),
        ("//127.0.0.1", "invalid URL"),
        ("http://127.0.0.1:99999", "invalid URL"),
        ("http://[::1", "invalid URL"),
        ("http://exa mple", "invalid URL"),
        ("http://a\x00b", "invalid URL"),
    ],
)
def test_bad_base_urls_never_connect(base_url: str, error: str) -> None:
    # careful adding cases: base + "/ok" must not form a host name (no DNS outside the netns)
    result = fetch(base_url, "/ok")
    assert (result.ok, result.error, result.ip) == (False, error, None)


def test_host_names_go_through_the_resolver() -> None:
    result = fetch("http://instance.example", "/ok")  # NoDNSResolver: nothing is sent
    assert (result.ok, result.error, result.ip) == (
        False,
        "cannot resolve host instance.example",
        None,
    )


# --- many instances --------------------------------------------------------------------


def run_all(
    targets: Any,
    endpoints: Sequence[str] = ("/ok",),
    concurrency: int = 100,
    chunked: bool = False,
    **kwargs: Any,
) -> list[tuple[float, FetchResult]]:
    """fetch_all, returning (seconds since start, result) in arrival order."""

    async def go() -> list[tuple[float, FetchResult]]:
        eps = [Endpoint(e) for e in endpoints]
        kwargs.setdefault("resolver", NoDNSResolver())
        start = time.monotonic()
        async with Fetcher(eps, concurrency=concurrency, allowed_networks=LOOPBACK, **kwargs) as f:
            return [
                (time.monotonic() - start, r) async for r in f.fetch_all(targets, chunked=chunked)
            ]

    return asyncio.run(go())


def test_hanging_instances_do_not_delay_good_ones(base: str) -> None:
    limits = FetchLimits(connect_timeout=1.0, total_timeout=2.0)
    bad = {"hang": base + "/hang", "dribble": base + "/dribble", "huge": base + "/huge"}
    targets: list[tuple[object, str]] = list(bad.items())
    targets += [(i, base + "/ok") for i in range(60)]
    results = run_all(targets, endpoints=[""], concurrency=10, limits=limits)
    by_key = {r.key: (t, r) for t, r in results}
    assert len(by_key) == len(targets)
    good_times = [t for t, r in results if isinstance(r.key, int) and r.ok]
    assert len(good_times) == 60
    assert max(good_times) < 1.5
    assert by_key["huge"][1].error == "response larger than 1 MiB"
    for name in ("hang", "dribble"):
        t, result = by_key[name]
        assert result.error == "timeout after 2 s"
        assert 2.0 <= t < 3.5


def test_fetch_all_bounds_concurrency_consumes_lazily_and_reuses_connections(
    stats_base: tuple[Stats, str],
) -> None:
    stats, base = stats_base
    consumed = 0
    consumed_at_first_result = None

    def targets() -> Iterator[tuple[int, str]]:
        nonlocal consumed
        for i in range(60):
            consumed += 1
            yield i, base

    async def go() -> list[FetchResult]:
        nonlocal consumed_at_first_result
        results = []
        async with Fetcher(
            [Endpoint("/slow?s=0.02")], concurrency=5, allowed_networks=LOOPBACK
        ) as f:
            async for result in f.fetch_all(targets()):
                if consumed_at_first_result is None:
                    consumed_at_first_result = consumed
                results.append(result)
        return results

    results = asyncio.run(go())
    assert sorted(r.key for r in results) == list(range(60))
    assert all(r.ok for r in results)
    assert consumed_at_first_result is not None
    assert consumed_at_first_result <= 10
    assert 2 <= stats.max_active <= 5
    assert len(stats.client_ports) <= 5  # keep-alive: 60 requests over at most 5 connections


def test_fetch_all_accepts_async_iterables(base: str) -> None:
    async def targets() -> AsyncIterator[tuple[str, str]]:
        for i in range(20):
            await asyncio.sleep(0)
            yield f"i{i}", base + ("/ok" if i % 2 else "/list")

    results = [r for _, r in run_all(targets(), endpoints=[""], concurrency=3)]
    assert sorted(r.key for r in results) == sorted(f"i{i}" for i in range(20))
    assert {r.key for r in results if r.ok} == {f"i{i}" for i in range(1, 20, 2)}


def test_fetch_all_accepts_async_iterables_of_chunks(base: str) -> None:
    sizes = [0, 3, 0, 0, 1, 7, 2, 0]
    served: list[int] = []

    async def chunks() -> AsyncIterator[list[tuple[int, str]]]:
        n = 0
        for size in sizes:
            await asyncio.sleep(0)
            served.append(size)
            yield [(n + i, base + ("/ok" if (n + i) % 3 else "/list")) for i in range(size)]
            n += size

    results = [r for _, r in run_all(chunks(), endpoints=[""], concurrency=4, chunked=True)]
    assert sorted(r.key for r in results) == list(range(13))  # each target exactly once
    assert {r.key for r in results if not r.ok} == {0, 3, 6, 9, 12}
    assert served == sizes


def test_slow_consumer_applies_backpressure(base: str) -> None:
    consumed = 0
    worst_backlog = 0

    def targets() -> Iterator[tuple[int, str]]:
        nonlocal consumed
        for i in range(40):
            consumed += 1
            yield i, base

    async def go() -> int:
        nonlocal worst_backlog
        yielded = 0
        fetcher = Fetcher(
            [Endpoint("/ok")], concurrency=3, allowed_networks=LOOPBACK, resolver=NoDNSResolver()
        )
        async with fetcher:
            async for _ in fetcher.fetch_all(targets()):
                yielded += 1
                await asyncio.sleep(0.005)  # e.g. a database write
                worst_backlog = max(worst_backlog, consumed - yielded)
        return yielded

    assert asyncio.run(go()) == 40
    # queue (3) + one result held by each worker (3) + one target each in flight (3)
    assert worst_backlog <= 9


def test_errors_of_the_target_iterable_reach_the_consumer(base: str) -> None:
    def targets() -> Iterator[tuple[int, str]]:
        yield 1, base
        raise LookupError("database went away")

    with pytest.raises(LookupError, match="database went away"):
        run_all(targets(), concurrency=2)


def test_breaking_out_of_fetch_all_cancels_the_rest(base: str) -> None:
    async def go() -> tuple[FetchResult, set[asyncio.Task]]:
        targets = [("good", base + "/ok")] + [(i, base + "/hang") for i in range(5)]
        fetcher = Fetcher([Endpoint("")], allowed_networks=LOOPBACK, resolver=NoDNSResolver())
        async with fetcher:
            before = asyncio.all_tasks()
            async with aclosing(fetcher.fetch_all(targets)) as results:
                first = await anext(results)
            leftover = asyncio.all_tasks() - before
        return first, leftover

    start = time.monotonic()
    first, leftover = asyncio.run(go())
    assert first.key == "good"
    assert leftover == set()
    assert time.monotonic() - start < 3  # not the 15 s a hanging instance may take


@pytest.mark.parametrize(("value", "text"), [(15.0, "15"), (0.5, "0.5"), (1, "1"), (2.25, "2.25")])
def test_format_seconds(value: float, text: str) -> None:
    assert format_seconds(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (MiB, "1 MiB"),
        (3 * MiB, "3 MiB"),
        (2048, "2 KiB"),
        (1000, "1000 bytes"),
        (MiB + 1, f"{MiB + 1} bytes"),
    ],
)
def test_format_size(value: int, text: str) -> None:
    assert format_size(value) == text


@pytest.mark.parametrize(
    "kwargs",
    [
        {"total_timeout": 0},
        {"connect_timeout": -1},
        {"max_bytes": 0},
        {"max_redirects": -1},
        {"max_depth": 0},
        {"max_depth": 10_000},
    ],
)
def test_nonsense_limits_are_rejected(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="must"):
        FetchLimits(**kwargs)


# --- network namespace -----------------------------------------------------------------

NETNS_MODULE = Path(__file__).with_name("netns_fetch.py")


@pytest.mark.netns
@pytest.mark.slow  # a fresh interpreter and pytest under unshare: 2-4 s
def test_hostile_addresses_inside_loopback_only_netns() -> None:
    """Runs tests/crawler/netns_fetch.py where a broken guard cannot reach any real network."""
    if os.environ.get("CEPHALOPOD_IN_NETNS"):
        pytest.fail("must not recurse: already inside the netns")
    if os.geteuid() != 0:
        pytest.skip("unshare -n needs root")
    for tool in ("unshare", "ip"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} not found: cannot build the loopback-only network namespace")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env["CEPHALOPOD_IN_NETNS"] = "1"
    script = 'ip link set lo up && exec "$0" -m pytest -p no:cacheprovider -q "$1"'
    proc = subprocess.run(
        ["unshare", "-n", "sh", "-c", script, sys.executable, str(NETNS_MODULE)],
        cwd=Path(__file__).parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    passed = re.search(r"(\d+) passed", output)
    assert passed is not None, output
    assert int(passed.group(1)) >= 20, output
    assert not re.search(r"\d+ (failed|skipped|error)", output), output
