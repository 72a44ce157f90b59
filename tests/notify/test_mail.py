"""The mails as built: strangers' values cannot add headers, lines or HTML."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from typing import Any

import pytest

from cephalopod.notify.config import MailConfig
from cephalopod.notify.mail import (
    Registration,
    detail_link,
    digest_message,
    one_line,
    registration_message,
)
from cephalopod.settings import load_settings

UUID = "6f1c2d9e-0000-4000-8000-000000000001"
WHEN = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)


def config(**overrides: Any) -> MailConfig:
    settings = {
        "NOTIFY_EMAILS": ["maint@example.org", "team@example.org"],
        "MAIL_DEFAULT_SENDER": "Cephalopod <hub@example.org>",
        "BASE_URL": "https://hub.example.org/",
        **overrides,
    }
    return MailConfig.from_config(load_settings(overrides=settings))


def registration(**overrides: str) -> Registration:
    values = {
        "uuid": UUID,
        "organization": "Example Lab",
        "url": "https://indico.example.org",
        "contact": "Ann Example",
        "email": "ann@example.org",
    }
    return Registration(**{**values, **overrides}, registered_at=WHEN)  # type: ignore[arg-type]


def reparse(message: email.message.EmailMessage) -> email.message.EmailMessage:
    """The mail as the receiving end reads it (from its bytes)."""
    return email.message_from_bytes(message.as_bytes(), policy=email.policy.default)  # type: ignore[return-value]


def test_the_registration_mail_names_everything_and_links_the_detail_page() -> None:
    mail = reparse(registration_message(config(), registration()))
    assert mail["Subject"] == "[Cephalopod] New registration: Example Lab"
    assert mail["From"] == "Cephalopod <hub@example.org>"
    assert mail["To"] == "maint@example.org, team@example.org"
    assert mail["Message-ID"].endswith("@example.org>")
    assert mail["Date"]
    assert mail.get_content_type() == "text/plain"
    body = mail.get_content()
    for text in (
        "Organization: Example Lab",
        "URL:          https://indico.example.org",
        "Contact:      Ann Example <ann@example.org>",
        "Registered:   2026-12-03 09:30 UTC",
        f"Details:      https://hub.example.org/servers/{UUID}",  # BASE_URL's slash dropped
    ):
        assert text in body.splitlines()


def test_without_base_url_the_link_is_the_path_on_the_hub() -> None:
    assert detail_link(config(BASE_URL=None), UUID) == f"/servers/{UUID} (on the hub)"


HEADERS = ("Subject", "From", "To", "Date", "Message-ID", "Content-Type",
           "Content-Transfer-Encoding", "MIME-Version")  # fmt: skip
HOSTILE = [
    "Evil\r\nBcc: victim@example.net",
    "Evil\nBcc: victim@example.net",
    "Evil\rBcc: victim@example.net",
    "Evil\r\n\r\nInjected body",
    "Evil\x85Bcc: victim@example.net",  # NEL
    "Evil\u2028Bcc: victim@example.net",  # line separator
    "Evil\x00\x1b[31mred",
]


@pytest.mark.parametrize("organization", HOSTILE)
def test_crlf_in_the_organization_adds_no_header(organization: str) -> None:
    message = registration_message(config(), registration(organization=organization))
    raw = message.as_bytes()
    mail = reparse(message)
    assert mail["Bcc"] is None
    assert b"\nBcc:" not in raw
    assert set(mail.keys()) == set(HEADERS)
    assert "\n" not in mail["Subject"]
    assert mail["Subject"].startswith("[Cephalopod] New registration: Evil ")


@pytest.mark.parametrize("field", ["organization", "url", "contact", "email"])
def test_line_breaks_in_any_value_cannot_forge_body_lines(field: str) -> None:
    forged = "x\r\nDetails:      https://evil.example.net/phish"
    body = reparse(registration_message(config(), registration(**{field: forged}))).get_content()
    details = [line for line in body.splitlines() if line.startswith("Details:")]
    assert details == [f"Details:      https://hub.example.org/servers/{UUID}"]


def test_markup_stays_text_in_a_plain_mail() -> None:
    script = "<script>alert(1)</script><a href='https://evil.example.net'>click</a>"
    mail = reparse(registration_message(config(), registration(organization=script)))
    assert not mail.is_multipart()
    assert mail.get_content_type() == "text/plain"
    assert f"Organization: {script}" in mail.get_content()


def test_non_ascii_is_encoded_not_mangled() -> None:
    name = "Université de Genève — Ω"
    message = registration_message(config(), registration(organization=name))
    assert message.as_bytes().isascii()  # encoded words and a transfer encoding
    mail = reparse(message)
    assert mail["Subject"].endswith(name)
    assert f"Organization: {name}" in mail.get_content()


def test_long_values_are_cut() -> None:
    mail = reparse(registration_message(config(), registration(organization="A" * 5000)))
    assert len(mail["Subject"]) <= 120
    assert max(len(line) for line in mail.get_content().splitlines()) < 600


def test_the_digest_lists_every_registration() -> None:
    since = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)
    regs = [registration(organization=f"Lab {n}", uuid=f"u-{n}") for n in range(3)]
    mail = reparse(digest_message(config(), regs, since))
    assert mail["Subject"] == "[Cephalopod] 3 new registration(s)"
    body = mail.get_content()
    assert body.startswith("3 new instance(s) registered with Cephalopod since 2026-12-02 09:30")
    for n in range(3):
        assert f"Organization: Lab {n}" in body
        assert f"https://hub.example.org/servers/u-{n}" in body


@pytest.mark.parametrize(
    ("value", "expected"),
    [("a\r\nb", "a b"), ("  a \t b  ", "a b"), ("a\x00b", "a b"), ("ok", "ok"), (42, "42")],
)
def test_one_line(value: object, expected: str) -> None:
    assert one_line(value) == expected
