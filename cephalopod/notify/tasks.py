"""The mail tasks, by name (`TASKS`), and the hooks that queue them.

A registration never waits for the mail server: its signal (sent after the commit) only
submits a task to the background runner, which sends it from the embedded worker thread
or a Celery worker. The task reads the instance afresh (a deleted one gets no mail) and,
when the server fails, logs why and submits itself again later, with a growing delay,
up to `MAX_ATTEMPTS` in all. Likewise a crawl's signal that instances started failing
(NOTIFY_FAILING_AFTER) queues one mail per stored batch that has any.
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

import sqlalchemy as sa
from flask import Flask

from cephalopod.crawler.signals import instances_started_failing
from cephalopod.db import Meta, db, utcnow
from cephalopod.instances.models import Instance
from cephalopod.instances.operations import get_instance, instance_registered
from cephalopod.notify.config import MailConfig
from cephalopod.notify.mail import (
    Failure,
    Registration,
    digest_message,
    failing_message,
    registration_message,
    send,
)
from cephalopod.ops.logs import log_context
from cephalopod.schedule import NOTIFY_DIGEST, NOTIFY_FAILING, NOTIFY_REGISTRATION
from cephalopod.services import services

log = logging.getLogger(__name__)

#: Seconds before each retry: the n-th failure waits RETRY_DELAYS[n - 1].
RETRY_DELAYS: tuple[float, ...] = (30.0, 120.0, 600.0)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
#: Until when the last digest told of registrations (ISO time, in ``meta``).
DIGEST_UNTIL = "notify:digest_until"
#: What a mail server or the way to it may raise.
SEND_ERRORS = (smtplib.SMTPException, OSError, UnicodeError)


def registration_of(instance: Instance) -> Registration:
    """What a mail tells of an instance."""
    return Registration(
        uuid=str(instance.uuid),
        organization=instance.organization,
        url=instance.url,
        contact=instance.contact,
        email=instance.email,
        registered_at=instance.registered_at,
    )


def _deliver(
    app: Flask, message: EmailMessage, what: str, attempt: int, retry: Callable[[float], None]
) -> bool:
    """Send ``message``; on failure log the reason and retry later. True when sent.

    The session's reads are over once the message is made: its connection goes back to the
    pool first, rather than stay checked out (in a transaction) while a slow mail server
    answers, and be found still in use when the app's engine is disposed.
    """
    config = services(app).settings.mail
    db.session.close()
    try:
        send(config, message)
    except SEND_ERRORS as exc:
        reason = f"{type(exc).__name__}: {exc}"
        if attempt < MAX_ATTEMPTS:
            delay = RETRY_DELAYS[attempt - 1]
            log.warning(
                "Could not send the mail about %s (attempt %d of %d): %s; trying again in %g s",
                what, attempt, MAX_ATTEMPTS, reason, delay,
            )  # fmt: skip
            retry(delay)
        else:
            log.error(
                "Could not send the mail about %s: %s; gave up after %d attempts",
                what, reason, MAX_ATTEMPTS,
            )  # fmt: skip
        return False
    log.info("Sent the mail about %s to %d recipient(s)", what, len(config.recipients))
    return True


def notify_registration(app: Flask, uuid: str, attempt: int = 1) -> bool:
    """Mail the maintainers about one registration; True when sent."""
    config = services(app).settings.mail
    with log_context(instance_uuid=uuid):
        if not config.enabled:
            return False
        instance = get_instance(uuid)
        if instance is None:
            log.info("No mail about registration %s: the instance is gone", uuid)
            return False
        message = registration_message(config, registration_of(instance))

        def retry(delay: float) -> None:
            services(app).runner.submit_later(
                delay, NOTIFY_REGISTRATION, uuid=uuid, attempt=attempt + 1
            )

        return _deliver(app, message, "the registration", attempt, retry)


def new_registrations(since: datetime, until: datetime) -> Sequence[Registration]:
    """The instances registered in [since, until), oldest first."""
    query = (
        sa.select(Instance)
        .where(Instance.registered_at >= since, Instance.registered_at < until)
        .order_by(Instance.registered_at, Instance.id)
    )
    return [registration_of(i) for i in db.session.scalars(query)]


def daily_digest(app: Flask, attempt: int = 1, until: str | None = None) -> int:
    """Mail the registrations since the last digest; return how many it listed (0: no mail).

    ``until`` fixes the end of the period across retries, so that a retry sends the same
    list and the next digest starts where this one ended.
    """
    config = services(app).settings.mail
    if not config.enabled:
        return 0
    end = datetime.fromisoformat(until) if until else utcnow()
    stored = db.session.get(Meta, DIGEST_UNTIL)
    since = datetime.fromisoformat(stored.value) if stored else end - timedelta(days=1)
    registrations = new_registrations(since, end)
    if registrations:

        def retry(delay: float) -> None:
            services(app).runner.submit_later(
                delay, NOTIFY_DIGEST, attempt=attempt + 1, until=end.isoformat()
            )

        message = digest_message(config, registrations, since)
        if not _deliver(app, message, "the registrations of the day", attempt, retry):
            return 0
    db.session.merge(Meta(key=DIGEST_UNTIL, value=end.isoformat()))
    db.session.commit()
    return len(registrations)


def failures_of(ids: Sequence[int]) -> list[Failure]:
    """The instances among ``ids`` that still fail, by id (deleted or recovered ones left out)."""
    query = (
        sa.select(Instance)
        .where(Instance.id.in_(list(ids)), Instance.consecutive_failures > 0)
        .order_by(Instance.id)
    )
    return [
        Failure(
            registration=registration_of(i),
            error=i.crawl_error or "unknown error",
            failed_at=i.last_crawl_at or utcnow(),
            successes=i.success_streak,
            last_success_at=i.last_success_at,
        )
        for i in db.session.scalars(query)
    ]


def notify_failing(app: Flask, ids: list[int], attempt: int = 1) -> bool:
    """Mail the maintainers about instances that started failing; True when sent.

    Read when the mail is made: an instance deleted or crawled successfully again since is
    left out (no mail at all when none is left).
    """
    config = services(app).settings.mail
    if not config.enabled or not config.failing_after:
        return False
    failures = failures_of(ids)
    if not failures:
        log.info("No mail about %d failing instance(s): gone or recovered since", len(ids))
        return False
    message = failing_message(config, failures)

    def retry(delay: float) -> None:
        services(app).runner.submit_later(delay, NOTIFY_FAILING, ids=ids, attempt=attempt + 1)

    if len(failures) > 1:
        return _deliver(app, message, f"{len(failures)} failing instances", attempt, retry)
    with log_context(instance_uuid=failures[0].registration.uuid):
        return _deliver(app, message, "the failing instance", attempt, retry)


def _on_started_failing(app: Flask, ids: list[int], **_extra: Any) -> None:
    """Queue the mail about instances that started failing (never fail or slow the crawl)."""
    try:
        svc = services(app)
        config: MailConfig = svc.settings.mail
        if config.enabled and config.failing_after:
            svc.runner.submit(NOTIFY_FAILING, ids=list(ids))
    except Exception:  # the broker down, say: the crawl goes on, the mail is lost
        log.exception("Could not queue the mail about %d failing instance(s)", len(ids))


def _on_registered(instance: Instance, **_extra: Any) -> None:
    """Queue the mail about a registration (never fail or slow the registration)."""
    try:
        svc = services()
        config: MailConfig = svc.settings.mail
        if config.enabled and config.mode == "each":
            svc.runner.submit(NOTIFY_REGISTRATION, uuid=str(instance.uuid))
    except Exception:  # the broker down, say: the registration stands, the mail is lost
        log.exception("Could not queue the mail about registration %s", instance.uuid)


def connect_signals() -> None:
    """Mail about every registration, and about instances that start failing, as the
    settings say."""
    instance_registered.connect(_on_registered, weak=False)
    instances_started_failing.connect(_on_started_failing, weak=False)


#: Task name → function, added to the runners' registry (see `cephalopod.app`).
TASKS: dict[str, Callable[..., Any]] = {
    NOTIFY_REGISTRATION: notify_registration,
    NOTIFY_DIGEST: daily_digest,
    NOTIFY_FAILING: notify_failing,
}
