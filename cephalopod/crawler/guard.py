"""SSRF guard: decide which peer addresses the crawler may connect to.

The check is applied to the socket address actually being connected to (see
`guarded_socket_factory`), so IP literals, DNS answers (including rebinding)
and every redirect hop go through the same decision.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # aiohttp's socket_factory types; the settings import this module, not aiohttp
    from aiohttp import AddrInfoType, SocketFactoryType

logger = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Explicit list so the verdict does not depend on the Python patch release
# (the ipaddress module's special-purpose tables changed in 3.11.10/3.12.4).
_NON_PUBLIC_V4 = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",  # "this network"
        "10.0.0.0/8",  # private
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local, cloud metadata services
        "172.16.0.0/12",  # private
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation (TEST-NET-1)
        "192.88.99.0/24",  # 6to4 relay anycast (deprecated)
        "192.168.0.0/16",  # private
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation (TEST-NET-2)
        "203.0.113.0/24",  # documentation (TEST-NET-3)
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, includes broadcast
    )
)
_NON_PUBLIC_V6 = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "::/8",  # unspecified, loopback, IPv4-compatible (deprecated), reserved
        "64:ff9b:1::/48",  # local-use NAT64
        "100::/64",  # discard-only
        "2001::/23",  # IETF protocol assignments, includes Teredo 2001::/32
        "2001:db8::/32",  # documentation
        "2002::/16",  # 6to4 (deprecated, RFC 7526)
        "3fff::/20",  # documentation
        "5f00::/16",  # SRv6 SIDs
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated)
        "ff00::/8",  # multicast
    )
)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class AddressNotAllowedError(OSError):
    """Raised instead of connecting so a blocked peer is an ordinary connection failure."""

    def __init__(self, address: str) -> None:
        super().__init__(f"address {address} is not public")
        self.address = address


def parse_address(ip: str | IPAddress) -> IPAddress:
    """Parse an address as found in a sockaddr, dropping any IPv6 zone (``%eth0``)."""
    if isinstance(ip, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return ip
    return ipaddress.ip_address(ip.split("%", 1)[0])


def is_public_address(ip: str | IPAddress) -> bool:
    """Tell whether an address is globally routable, i.e. safe for the crawler to contact.

    IPv4-mapped (``::ffff:a.b.c.d``) and NAT64 (``64:ff9b::/96``, as synthesised by DNS64 on
    IPv6-only hosts) addresses are judged by the IPv4 address they carry; 6to4 and Teredo
    are deprecated tunnels and are refused wholesale, whatever they embed.
    """
    try:
        addr = parse_address(ip)
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return is_public_address(addr.ipv4_mapped)
        if addr in _NAT64:
            return is_public_address(ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF))
        if any(addr in net for net in _NON_PUBLIC_V6):
            return False
    elif any(addr in net for net in _NON_PUBLIC_V4):
        return False
    return addr.is_global and not (
        addr.is_private
        or addr.is_loopback
        or addr.is_link_local
        or addr.is_multicast
        or addr.is_reserved
        or addr.is_unspecified
    )


def parse_networks(networks: Iterable[str | IPNetwork]) -> tuple[IPNetwork, ...]:
    """Parse CIDR strings once, so the per-connection check stays cheap."""
    return tuple(
        n
        if isinstance(n, ipaddress.IPv4Network | ipaddress.IPv6Network)
        else ipaddress.ip_network(n)
        for n in networks
    )


def is_allowed_address(ip: str | IPAddress, allowed_networks: Iterable[str | IPNetwork]) -> bool:
    """Tell whether the crawler may connect: public, or inside an explicitly allowed network."""
    try:
        addr = parse_address(ip)
    except ValueError:
        return False
    networks = parse_networks(allowed_networks)
    if networks:
        candidates: list[IPAddress] = [addr]
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            candidates.append(addr.ipv4_mapped)
        for cand in candidates:
            if any(cand.version == net.version and cand in net for net in networks):
                return True
    return is_public_address(addr)


def guarded_socket_factory(
    allowed_networks: Iterable[str | IPNetwork],
    on_attempt: Callable[[str, bool], None] | None = None,
) -> SocketFactoryType:
    """Build an aiohttp ``socket_factory`` that refuses to even create a socket for a blocked peer.

    ``on_attempt(address, allowed)`` is called for every connection attempt, so the caller
    can report which address was tried.
    """
    networks = parse_networks(allowed_networks)

    def factory(addr_info: AddrInfoType) -> socket.socket:
        family, type_, proto, _, sockaddr = addr_info
        host = sockaddr[0]
        allowed = is_allowed_address(host, networks)
        if on_attempt is not None:
            on_attempt(host, allowed)
        if not allowed:
            logger.info("refusing to connect to non-public address %s", host)
            raise AddressNotAllowedError(host)
        return socket.socket(family=family, type=type_, proto=proto)

    return factory
