"""URL normalisation, so that two registrations of the same server can be spotted, and the
local-address flag, so that a registration pointing into a private network is seen."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from cephalopod.crawler.guard import is_public_address

DEFAULT_PORTS = {"http": 80, "https": 443}
#: Names that only mean something inside one site (RFC 6761, 6762; ICANN's .internal).
LOCAL_SUFFIXES = (".local", ".internal", ".localhost")


def url_key(url: str) -> str:
    """Return ``url`` reduced to what identifies a server: host case, default port, ``www.``, ``/``.

    The scheme is dropped too: http and https of the same host are the same installation.
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower().rstrip(".")
    host = host.removeprefix("www.")
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host if port in (None, DEFAULT_PORTS.get(scheme)) else f"{host}:{port}"
    if ":" in host:  # IPv6 literal
        netloc = f"[{host}]" if port in (None, DEFAULT_PORTS.get(scheme)) else f"[{host}]:{port}"
    path = parts.path.rstrip("/")
    query = f"?{parts.query}" if parts.query else ""
    return f"{netloc}{path}{query}"


def is_local_address(url: str) -> bool:
    """Tell whether the URL's host is a local or private address, without any DNS look-up.

    True for an IP literal that the crawler's guard refuses, in any form the system's resolver
    reads as an address without asking DNS (``127.1``, ``0x7f000001``, ``2130706433``,
    ``[::ffff:10.0.0.1]``...), for ``localhost``, a ``.local``, ``.internal`` or ``.localhost``
    name, and for a single-label name (resolved through the local search domains). Such a
    registration is kept but flagged: it may probe the hub's own network.
    """
    try:
        host = (urlsplit(url.strip()).hostname or "").lower().rstrip(".")
    except ValueError:
        return False  # not a URL the protocol stores
    if not host:
        return False
    if ":" in host:  # only an IPv6 literal has colons in a host
        return not is_public_address(host)
    try:
        packed = socket.inet_aton(host)  # the resolver's numeric forms; never DNS
    except OSError:
        pass
    else:
        return not is_public_address(socket.inet_ntoa(packed))
    return "." not in host or host.endswith(LOCAL_SUFFIXES)
