"""Hostile addresses and host names; only ever run inside a loopback-only network namespace.

Not collected by the normal run (no test_ prefix): tests/crawler/test_fetch.py starts it
under `unshare -n` with CEPHALOPOD_IN_NETNS=1, so even a broken SSRF guard could not send
a single packet beyond this machine.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import os
import socket
from collections.abc import Sequence

import pytest

from cephalopod.crawler.fetch import Fetcher
from cephalopod.crawler.results import Endpoint, FetchLimits, FetchResult
from tests.crawler.servers import OK_DATA, ServerLoop, Stats, behaviour_app

if os.environ.get("CEPHALOPOD_IN_NETNS") != "1":
    raise RuntimeError("netns_fetch.py must only run inside the loopback-only namespace")

LIMITS = FetchLimits(connect_timeout=1.0, total_timeout=2.0)


def assert_loopback_only() -> None:
    """Prove isolation: the kernel has no route to anything but loopback."""
    for family, address in ((socket.AF_INET, "10.0.0.1"), (socket.AF_INET6, "2001:db8::1")):
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            with pytest.raises(OSError, match="unreachable") as info:
                sock.connect((address, 9))  # UDP connect sends nothing; it only routes
            assert info.value.errno == errno.ENETUNREACH


@pytest.fixture(scope="module", autouse=True)
def _isolated() -> None:
    assert_loopback_only()


def test_namespace_is_isolated() -> None:
    assert_loopback_only()
    names = {name for _, name in socket.if_nameindex()}
    assert names == {"lo"}


def fetch(base_url: str, path: str = "/ok", allowed: Sequence[str] = ()) -> FetchResult:
    async def go() -> FetchResult:
        async with Fetcher([Endpoint(path)], LIMITS, allowed_networks=allowed) as fetcher:
            return await fetcher.fetch_instance("key", base_url)

    return asyncio.run(go())


def assert_blocked(result: FetchResult, address: str) -> None:
    assert not result.ok
    assert result.ip is not None
    assert ipaddress.ip_address(result.ip) == ipaddress.ip_address(address)
    assert result.error == f"address {result.ip} is not public"


HOSTILE = [
    "10.0.0.1",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",
    "224.0.0.1",
    "255.255.255.255",
    "192.0.2.1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "64:ff9b::a9fe:a9fe",
    "2002:a00:1::1",
    "fc00::1",
    "fd00:ec2::254",
    "::",
    "::1",
]


def literal_url(address: str, port: int = 80) -> str:
    return f"http://[{address}]:{port}" if ":" in address else f"http://{address}:{port}"


@pytest.mark.parametrize("address", HOSTILE)
def test_hostile_literal_base_url_is_refused(address: str) -> None:
    assert_blocked(fetch(literal_url(address), allowed=["127.0.0.1/32"]), address)


@pytest.mark.parametrize("address", HOSTILE)
def test_redirect_to_hostile_address_is_refused(base: str, address: str) -> None:
    path = f"/redirect?to={literal_url(address)}/latest/meta-data/"
    assert_blocked(fetch(base, path, allowed=["127.0.0.1/32"]), address)


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("localhost", "127.0.0.1"),
        ("0x7f.0.0.1", "127.0.0.1"),  # hex, resolved by inet_aton
    ],
)
def test_host_names_are_checked_after_resolution(
    servers: ServerLoop, host: str, address: str
) -> None:
    stats = Stats()
    port = int(servers.start_app(behaviour_app(stats)).rsplit(":", 1)[1])
    url = f"http://{host}:{port}"
    assert_blocked(fetch(url, allowed=[]), address)
    assert stats.requests == []
    # the very same URL works once loopback is allowed: the refusal above was the guard
    result = fetch(url, allowed=["127.0.0.0/8"])
    assert (result.ok, result.data, result.ip) == (True, OK_DATA, address)
    assert stats.requests == ["/ok"]


@pytest.mark.parametrize("host", ["2130706433", "127.1", "0177.0.0.1", "0"])
def test_non_canonical_ipv4_never_reaches_a_server(servers: ServerLoop, host: str) -> None:
    stats = Stats()
    port = int(servers.start_app(behaviour_app(stats)).rsplit(":", 1)[1])
    result = fetch(f"http://{host}:{port}", allowed=[])
    # aiohttp rejects these outright; were it to resolve them, the guard must catch them
    assert result.error in {"invalid URL", "address 127.0.0.1 is not public"}
    assert stats.requests == []


def test_redirect_to_host_name_is_checked(servers: ServerLoop) -> None:
    source = servers.start_app(behaviour_app(), host="127.0.0.2")
    stats = Stats()
    port = int(servers.start_app(behaviour_app(stats)).rsplit(":", 1)[1])
    path = f"/redirect?to=http://localhost:{port}/ok"
    assert_blocked(fetch(source, path, allowed=["127.0.0.2/32"]), "127.0.0.1")
    assert stats.requests == []
    result = fetch(source, path, allowed=["127.0.0.2/32", "127.0.0.1/32"])
    assert (result.ok, result.ip) == (True, "127.0.0.1")
    assert stats.requests == ["/ok"]


def test_unresolvable_host_is_a_plain_error() -> None:
    result = fetch("http://instance.example.invalid", allowed=[])
    assert not result.ok
    assert result.error == "cannot resolve host instance.example.invalid"


@pytest.mark.parametrize(
    ("address", "error"),
    [("10.0.0.1", "network unreachable"), ("fd00::1", "network unreachable")],
)
def test_allowed_networks_let_private_addresses_through(address: str, error: str) -> None:
    # allowed, so the guard steps aside and the (isolated) kernel has the last word
    result = fetch(literal_url(address), allowed=["10.0.0.0/8", "fd00::/8"])
    assert (result.ok, result.error) == (False, error)
    assert ipaddress.ip_address(result.ip or "") == ipaddress.ip_address(address)
