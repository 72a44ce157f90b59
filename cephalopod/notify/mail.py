"""The mails themselves: built from strangers' data without letting it shape them, and sent.

Strangers write the organization, URL and contact of a registration. Every such value is
flattened to one line of printable text before it goes anywhere (no CR/LF can start a new
header or a forged body line), headers are set through `email.message.EmailMessage`
(which encodes non-ASCII and refuses line breaks on its own too), and the mail is plain
text only: no HTML part for markup to live in.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr

from cephalopod.notify.config import MailConfig

#: Seconds to connect to the mail server and for each of its answers.
MAIL_TIMEOUT = 10.0
SUBJECT_LIMIT = 120
VALUE_LIMIT = 500
#: Control characters, and Unicode's line and paragraph separators.
_BREAKS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


@dataclass(frozen=True)
class Registration:
    """What a mail says about one registered instance."""

    uuid: str
    organization: str
    url: str
    contact: str
    email: str
    registered_at: datetime


@dataclass(frozen=True)
class Failure:
    """What a mail says about an instance that started failing."""

    registration: Registration
    error: str
    failed_at: datetime
    successes: int  # the successful crawls in a row before it failed
    last_success_at: datetime | None


def one_line(value: object, limit: int = VALUE_LIMIT) -> str:
    """The value as one line of printable text, at most ``limit`` characters."""
    text = " ".join(_BREAKS.sub(" ", str(value)).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def detail_link(config: MailConfig, uuid: str) -> str:
    """The instance's detail page: a full URL with BASE_URL, else the path on the hub."""
    path = f"/servers/{uuid}"
    return f"{config.base_url}{path}" if config.base_url else f"{path} (on the hub)"


def _time(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")


def _describe(config: MailConfig, registration: Registration) -> list[str]:
    r = registration
    return [
        f"Organization: {one_line(r.organization)}",
        f"URL:          {one_line(r.url)}",
        f"Contact:      {one_line(r.contact)} <{one_line(r.email)}>",
        f"Registered:   {_time(r.registered_at)}",
        f"Details:      {detail_link(config, r.uuid)}",
    ]


def _message(config: MailConfig, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = one_line(subject, SUBJECT_LIMIT)
    message["From"] = config.sender or ""
    message["To"] = ", ".join(config.recipients)
    message["Date"] = formatdate(usegmt=True)
    domain = parseaddr(config.sender or "")[1].rpartition("@")[2] or None
    message["Message-ID"] = make_msgid(domain=domain)
    message.set_content(body)  # text/plain; charset=utf-8
    return message


def registration_message(config: MailConfig, registration: Registration) -> EmailMessage:
    """The mail about one new registration."""
    organization = one_line(registration.organization, 80)
    lines = [
        f"A new instance registered with {config.app_name}.",
        "",
        *_describe(config, registration),
    ]
    return _message(
        config, f"[{config.app_name}] New registration: {organization}", "\n".join(lines) + "\n"
    )


def digest_message(
    config: MailConfig, registrations: Sequence[Registration], since: datetime
) -> EmailMessage:
    """The daily mail listing the registrations since ``since``."""
    count = len(registrations)
    lines = [
        f"{count} new instance(s) registered with {config.app_name} since {_time(since)}.",
    ]
    for registration in registrations:
        lines += ["", *_describe(config, registration)]
    subject = f"[{config.app_name}] {count} new registration(s)"
    return _message(config, subject, "\n".join(lines) + "\n")


#: Instances a mail about failures lists one by one; it counts the others.
FAILURES_LISTED = 50


def failing_message(config: MailConfig, failures: Sequence[Failure]) -> EmailMessage:
    """The mail about instances that failed after a run of successful crawls."""
    count = len(failures)
    first = failures[0].registration
    subject = (
        f"[{config.app_name}] Failing: {one_line(first.organization, 80)}"
        if count == 1
        else f"[{config.app_name}] {count} instances started failing"
    )
    lines = [
        f"The crawler of {config.app_name} could not crawl "
        + ("this instance" if count == 1 else f"these {count} instances")
        + f", which it had crawled successfully at least {config.failing_after} times in a row.",
    ]
    for failure in failures[:FAILURES_LISTED]:
        lines += [
            "",
            *_describe(config, failure.registration),
            f"Error:        {one_line(failure.error)} ({_time(failure.failed_at)})",
            f"Before:       {failure.successes} successful crawls in a row"
            + (f", the last {_time(failure.last_success_at)}" if failure.last_success_at else ""),
        ]
    if count > FAILURES_LISTED:
        lines += ["", f"... and {count - FAILURES_LISTED} more (health 'error' in the list)."]
    return _message(config, subject, "\n".join(lines) + "\n")


def send(config: MailConfig, message: EmailMessage, timeout: float = MAIL_TIMEOUT) -> None:
    """Hand the mail to the configured server (TLS verified); raise on any failure."""
    context = ssl.create_default_context()
    smtp: smtplib.SMTP
    if config.use_ssl:
        smtp = smtplib.SMTP_SSL(config.server, config.port, timeout=timeout, context=context)
    else:
        smtp = smtplib.SMTP(config.server, config.port, timeout=timeout)
    with smtp:
        if config.use_tls:
            smtp.starttls(context=context)
        if config.username:
            smtp.login(config.username, config.password or "")
        smtp.send_message(message)
