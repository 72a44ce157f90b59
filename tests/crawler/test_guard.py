"""SSRF guard: address classification and live proof that blocked peers get no packet."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence

import pytest

from cephalopod.crawler.fetch import Fetcher
from cephalopod.crawler.guard import (
    AddressNotAllowedError,
    guarded_socket_factory,
    is_allowed_address,
    is_public_address,
    parse_networks,
)
from cephalopod.crawler.results import Endpoint, FetchLimits, FetchResult
from tests.crawler.servers import (
    NoDNSResolver,
    ServerLoop,
    Stats,
    behaviour_app,
    json_reply,
    url_for,
)

CANARY_DATA = {"canary": "reached"}


@pytest.mark.parametrize(
    ("address", "public"),
    [
        # never contacted: only classified
        ("8.8.8.8", True),
        ("1.1.1.1", True),
        ("2001:4860:4860::8888", True),
        ("2606:4700:4700::1111", True),
        ("::ffff:8.8.8.8", True),  # mapped public v4
        ("64:ff9b::808:808", True),  # NAT64 (DNS64) of a public v4
        ("10.0.0.1", False),
        ("172.16.0.1", False),
        ("172.31.255.255", False),
        ("192.168.1.1", False),
        ("127.0.0.1", False),
        ("127.255.255.254", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("100.127.255.254", False),
        ("224.0.0.1", False),
        ("239.255.255.250", False),
        ("0.0.0.0", False),
        ("0.1.2.3", False),
        ("255.255.255.255", False),
        ("240.0.0.1", False),
        ("192.0.0.8", False),
        ("192.0.2.1", False),
        ("198.51.100.7", False),
        ("203.0.113.9", False),
        ("198.18.0.1", False),
        ("192.88.99.1", False),
        ("::1", False),
        ("::", False),
        ("::ffff:10.0.0.1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:169.254.169.254", False),
        ("::10.0.0.1", False),  # IPv4-compatible (deprecated)
        ("2002:0a00:0001::1", False),  # 6to4 of 10.0.0.1
        ("2002:0808:0808::1", False),  # 6to4 at all: deprecated tunnel
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", False),  # Teredo of 10.0.0.1
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", False),  # Teredo, public client
        ("64:ff9b::a00:1", False),  # NAT64 of 10.0.0.1
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 of 169.254.169.254
        ("64:ff9b:1::1", False),  # local-use NAT64
        ("fe80::1", False),
        ("fe80::1%eth0", False),
        ("fc00::1", False),
        ("fd00:ec2::254", False),  # AWS IMDS over IPv6
        ("fec0::1", False),
        ("ff02::1", False),
        ("2001:db8::1", False),
        ("100::1", False),
        ("not an address", False),
        ("", False),
    ],
)
def test_is_public_address(address: str, public: bool) -> None:
    assert is_public_address(address) is public
    if address and address != "not an address":
        parsed = ipaddress.ip_address(address.split("%")[0])
        assert is_public_address(parsed) is public


@pytest.mark.parametrize(
    ("address", "allowed", "verdict"),
    [
        ("127.0.0.1", ["127.0.0.0/8"], True),
        ("127.0.0.3", ["127.0.0.0/8"], True),
        ("::ffff:127.0.0.1", ["127.0.0.0/8"], True),  # mapped form of an allowed v4
        ("::1", ["127.0.0.0/8"], False),
        ("::1", ["::1/128"], True),
        ("127.0.0.3", ["127.0.0.1/32", "127.0.0.2/32"], False),
        ("127.0.0.2", ["127.0.0.1/32", "127.0.0.2/32"], True),
        ("127.0.0.1", [], False),
        ("10.1.2.3", ["10.0.0.0/8"], True),
        ("10.1.2.3", [ipaddress.ip_network("10.0.0.0/8")], True),
        ("10.1.2.3", ["192.168.0.0/16"], False),
        ("8.8.8.8", [], True),  # public needs no permission
        ("8.8.8.8", ["127.0.0.0/8"], True),
        ("junk", ["0.0.0.0/0"], False),
    ],
)
def test_is_allowed_address(address: str, allowed: list, verdict: bool) -> None:
    assert is_allowed_address(address, allowed) is verdict


def test_parse_networks_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="does not appear"):
        parse_networks(["127.0.0.0/33"])


@pytest.mark.parametrize(
    ("sockaddr", "allowed", "blocked"),
    [
        (("127.0.0.1", 80), ["127.0.0.0/8"], False),
        (("127.0.0.1", 80), [], True),
        (("::1", 80, 0, 0), [], True),
        (("10.0.0.1", 80), [], True),
    ],
)
def test_socket_factory_refuses_before_creating_a_socket(
    sockaddr: tuple, allowed: list[str], blocked: bool
) -> None:
    seen: list[tuple[str, bool]] = []
    factory = guarded_socket_factory(allowed, lambda addr, ok: seen.append((addr, ok)))
    family = socket.AF_INET6 if ":" in sockaddr[0] else socket.AF_INET
    info = (family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr)
    if blocked:
        with pytest.raises(AddressNotAllowedError, match=f"address {sockaddr[0]} is not public"):
            factory(info)
    else:
        factory(info).close()
    assert seen == [(sockaddr[0], not blocked)]


# --- live: blocked peers must not even see a connection --------------------------------


def fetch(base_url: str, path: str, allowed: Sequence[str]) -> FetchResult:
    async def go() -> FetchResult:
        limits = FetchLimits(connect_timeout=1.0, total_timeout=2.0)
        fetcher = Fetcher(
            [Endpoint(path)], limits, allowed_networks=allowed, resolver=NoDNSResolver()
        )
        async with fetcher:
            return await fetcher.fetch_instance("key", base_url)

    return asyncio.run(go())


def canary(servers: ServerLoop, host: str = "127.0.0.3") -> tuple[Stats, str]:
    """A raw server counting every TCP connection it accepts."""
    stats = Stats()
    return stats, servers.start_raw(json_reply(CANARY_DATA), host=host, stats=stats)


@pytest.mark.parametrize(
    ("allowed", "reached"),
    [
        ([], False),
        (["127.0.0.1/32", "127.0.0.2/32"], False),
        (["127.0.0.3/32"], True),  # control: the canary does answer when allowed
        (["127.0.0.0/8"], True),
    ],
)
def test_direct_fetch_of_non_allowed_address(
    servers: ServerLoop, allowed: list[str], reached: bool
) -> None:
    stats, url = canary(servers)
    result = fetch(url, "/info", allowed)
    assert result.ip == "127.0.0.3"
    if reached:
        assert (result.ok, result.data) == (True, CANARY_DATA)
        assert (stats.connections, stats.requests) == (1, ["/info"])
    else:
        assert (result.ok, result.error) == (False, "address 127.0.0.3 is not public")
        assert stats.connections == 0


@pytest.mark.parametrize(
    ("allowed", "reached"),
    [
        (["127.0.0.1/32"], False),
        (["127.0.0.1/32", "127.0.0.3/32"], True),  # control
    ],
)
def test_redirect_to_non_allowed_address(
    servers: ServerLoop, allowed: list[str], reached: bool
) -> None:
    stats, target = canary(servers)
    source = servers.start_app(behaviour_app())
    result = fetch(source, f"/redirect?to={target}/secret", allowed)
    assert result.ip == "127.0.0.3"
    if reached:
        assert (result.ok, result.data, stats.requests) == (True, CANARY_DATA, ["/secret"])
    else:
        assert (result.ok, result.error) == (False, "address 127.0.0.3 is not public")
        assert stats.connections == 0


@pytest.mark.parametrize(
    ("listen", "connect", "allowed", "reached"),
    [
        ("::1", "::1", ["127.0.0.0/8"], False),
        ("::1", "::1", ["::1/128"], True),
        ("127.0.0.3", "::ffff:127.0.0.3", ["127.0.0.1/32"], False),
        ("127.0.0.3", "::ffff:127.0.0.3", ["127.0.0.3/32"], True),
        ("127.0.0.1", "0.0.0.0", ["127.0.0.1/32"], False),  # 0.0.0.0 means "this host"
    ],
)
def test_other_spellings_of_loopback(
    servers: ServerLoop, listen: str, connect: str, allowed: list[str], reached: bool
) -> None:
    stats, url = canary(servers, host=listen)
    port = int(url.rsplit(":", 1)[1])
    result = fetch(url_for(connect, port), "/", allowed)
    assert result.ip is not None
    assert ipaddress.ip_address(result.ip) == ipaddress.ip_address(connect)
    assert result.ok is reached
    assert stats.connections == int(reached)
    if not reached:
        assert result.error == f"address {result.ip} is not public"
