"""The mail settings: each mistake named with its key, the accepted forms normalised."""

from __future__ import annotations

from typing import Any

import pytest

from cephalopod.notify.config import MailConfig
from cephalopod.settings import SettingsError, load_settings
from tests.refused_settings import Refused, assert_refused, each_refused

MAIL = {"NOTIFY_EMAILS": ["maint@example.org"], "MAIL_DEFAULT_SENDER": "hub@example.org"}

#: (overrides, the key as named in the message, the bad value's repr, a piece of what is accepted)
INVALID: list[Refused] = [
    ({"MAIL_SERVER": ""}, "MAIL_SERVER", "''", "a host name"),
    ({"MAIL_PORT": 0}, "MAIL_PORT", "0", "a port from 1 to 65535"),
    ({"MAIL_PORT": "25"}, "MAIL_PORT", "'25'", "a port"),
    ({"MAIL_USE_TLS": "yes"}, "MAIL_USE_TLS", "'yes'", "True or False"),
    ({"MAIL_USERNAME": 5}, "MAIL_USERNAME", "5", "a string or None"),
    ({"NOTIFY_MODE": "weekly"}, "NOTIFY_MODE", "'weekly'", "'each', 'daily'"),
    ({"NOTIFY_FAILING_AFTER": -1}, "NOTIFY_FAILING_AFTER", "-1", "from 1 to 100000, or 0 or None"),
    ({"NOTIFY_FAILING_AFTER": 100_001}, "NOTIFY_FAILING_AFTER", "100001", "from 1 to 100000"),
    ({"NOTIFY_FAILING_AFTER": "5"}, "NOTIFY_FAILING_AFTER", "'5'", "successful crawls"),
    ({"NOTIFY_FAILING_AFTER": True}, "NOTIFY_FAILING_AFTER", "True", "successful crawls"),
    ({"NOTIFY_FAILING_AFTER": 2.5}, "NOTIFY_FAILING_AFTER", "2.5", "successful crawls"),
    ({"NOTIFY_EMAILS": "maint@example.org"}, "NOTIFY_EMAILS", "'maint@example.org'", "a list"),
    ({**MAIL, "NOTIFY_EMAILS": ["not an address"]}, "NOTIFY_EMAILS", "'not an address'", "e-mail"),
    ({**MAIL, "MAIL_DEFAULT_SENDER": "hub"}, "MAIL_DEFAULT_SENDER", "'hub'", "e-mail address"),
    ({"BASE_URL": "hub.example.org"}, "BASE_URL", "'hub.example.org'", "https://hub"),
    ({"BASE_URL": "ftp://hub.example.org"}, "BASE_URL", "'ftp://hub.example.org'", "https://"),
]


@each_refused(INVALID)
def test_invalid_values_name_key_value_and_accepted(
    overrides: dict[str, Any], key: str, value: str, accepted: str
) -> None:
    assert_refused(overrides, key, value, accepted)


def test_recipients_need_a_sender() -> None:
    with pytest.raises(SettingsError, match="MAIL_DEFAULT_SENDER must be too"):
        load_settings(overrides={"NOTIFY_EMAILS": ["maint@example.org"]})


def test_tls_and_ssl_exclude_each_other() -> None:
    with pytest.raises(SettingsError, match=r"MAIL_USE_TLS.*MAIL_USE_SSL"):
        load_settings(overrides={"MAIL_USE_TLS": True, "MAIL_USE_SSL": True})


@pytest.mark.parametrize(
    ("sender", "expected"),
    [
        ("hub@example.org", "hub@example.org"),
        ("Cephalopod <hub@example.org>", "Cephalopod <hub@example.org>"),
        (("Cephalopod", "hub@example.org"), "Cephalopod <hub@example.org>"),  # Flask-Mail's
    ],
)
def test_sender_forms(sender: Any, expected: str) -> None:
    config = load_settings(overrides={**MAIL, "MAIL_DEFAULT_SENDER": sender})
    assert MailConfig.from_config(config).sender == expected


@pytest.mark.parametrize(
    ("value", "expected"), [(None, None), (0, None), (1, 1), (100_000, 100_000)]
)
def test_failing_after_is_off_at_0_or_none(value: int | None, expected: int | None) -> None:
    assert MailConfig.from_config(load_settings()).failing_after is None  # the default
    config = load_settings(overrides={**MAIL, "NOTIFY_FAILING_AFTER": value})
    assert MailConfig.from_config(config).failing_after == expected


def test_defaults_send_nothing_and_base_url_loses_its_slash() -> None:
    assert not MailConfig.from_config(load_settings()).enabled
    config = MailConfig.from_config(
        load_settings(overrides={**MAIL, "BASE_URL": "https://h.example.org/"})
    )
    assert config.enabled
    assert config.base_url == "https://h.example.org"
    assert config.recipients == ("maint@example.org",)
