"""The operations settings: validated with a message naming the key, typed once."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from cephalopod.ops.config import OpsConfig, address_allowed
from cephalopod.settings import load_settings
from tests.refused_settings import Refused, assert_refused, each_refused

#: (overrides, the key as named in the message, the bad value's repr, a piece of what is accepted)
INVALID: list[Refused] = [
    ({"METRICS_ALLOWED_NETWORKS": "127.0.0.1"}, "METRICS_ALLOWED_NETWORKS", "'127.0.0.1'", "CIDR"),
    (
        {"METRICS_ALLOWED_NETWORKS": ["localhost"]},
        "METRICS_ALLOWED_NETWORKS",
        "'localhost'",
        "CIDR",
    ),
]


@each_refused(INVALID)
def test_invalid_values_name_key_value_and_accepted(
    overrides: dict[str, Any], key: str, value: str, accepted: str
) -> None:
    assert_refused(overrides, key, value, accepted)


def test_defaults() -> None:
    config = OpsConfig.from_config(load_settings())
    assert config.metrics_networks == (
        ipaddress.ip_network("127.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
    )
    assert (config.log_format, config.log_level) == ("text", "INFO")


def test_log_level_is_case_insensitive() -> None:
    assert OpsConfig.from_config(load_settings(overrides={"LOG_LEVEL": "debug"})).log_level == (
        "DEBUG"
    )


NETS = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("2001:db8::/32"))


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::ffff:127.0.0.1", True),  # a dual-stack socket's IPv4 client
        ("2001:db8::5", True),
        ("fe80::1%eth0", False),
        ("10.0.0.1", False),
        ("::1", False),
        ("", False),
        (None, False),
        ("not an address", False),
    ],
)
def test_address_allowed(address: str | None, allowed: bool) -> None:
    assert address_allowed(address, NETS) is allowed
