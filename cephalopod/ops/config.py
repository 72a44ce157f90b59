"""The operations settings, typed once (see `cephalopod.services.Settings`)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class OpsConfig:
    """What /metrics and the logs need from the settings."""

    metrics_networks: tuple[IPNetwork, ...]
    log_format: str
    log_level: str

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> OpsConfig:
        """Read a configuration that `cephalopod.settings.load` validated."""
        return cls(
            metrics_networks=tuple(
                ipaddress.ip_network(n, strict=False) for n in config["METRICS_ALLOWED_NETWORKS"]
            ),
            log_format=config["LOG_FORMAT"],
            log_level=config["LOG_LEVEL"],
        )


def address_allowed(address: str | None, networks: Iterable[IPNetwork]) -> bool:
    """Tell whether a client address lies in one of ``networks`` (False when unparsable)."""
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 from a dual-stack socket is 127.0.0.1
    return any(ip in network for network in networks)
