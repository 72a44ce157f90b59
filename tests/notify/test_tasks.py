"""Mail on registration against a real SMTP server (aiosmtpd): sent, retried, never blocking."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from cephalopod.db import db
from cephalopod.instances import operations as instance_ops
from cephalopod.instances.models import Instance
from cephalopod.notify import tasks as notify_tasks
from cephalopod.schedule import NOTIFY_DIGEST, periodic_jobs
from cephalopod.services import services
from tests.faults.services import PrivateRedis
from tests.notify.smtp import free_port, make_certificate, smtp_server

RECIPIENTS = ["maint@example.org", "team@example.org"]
SENDER = "Cephalopod <hub@example.org>"
BODY = {"url": "https://indico.example.org", "contact": "Ann", "email": "ann@example.org"}
FAST_RETRIES = (0.2, 0.4, 0.8)


def mail_settings(port: int, **overrides: Any) -> dict[str, Any]:
    return {
        "NOTIFY_EMAILS": RECIPIENTS,
        "MAIL_DEFAULT_SENDER": SENDER,
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": port,
        "BASE_URL": "https://hub.example.org",
        **overrides,
    }


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> tuple[float, ...]:
    """Retry after fractions of a second (the real delays are minutes)."""
    monkeypatch.setattr(notify_tasks, "RETRY_DELAYS", FAST_RETRIES)
    monkeypatch.setattr(notify_tasks, "MAX_ATTEMPTS", len(FAST_RETRIES) + 1)
    return FAST_RETRIES


def register(client: FlaskClient, organization: str = "Example Lab") -> tuple[str, float]:
    """Register through the protocol; return the uuid and how long the reply took."""
    start = time.monotonic()
    response = client.post("/api/instance/", json={**BODY, "organization": organization})
    elapsed = time.monotonic() - start
    assert response.status_code == 201, response.get_json()
    return response.get_json()["uuid"], elapsed


def wait_for_log(caplog: pytest.LogCaptureFixture, text: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not any(text in r.getMessage() for r in caplog.records):
        if time.monotonic() > deadline:
            raise AssertionError(f"no log line with {text!r}: {caplog.text}")
        time.sleep(0.05)


def mail_lines(caplog: pytest.LogCaptureFixture) -> list[Any]:
    return [r for r in caplog.records if r.name == notify_tasks.__name__]


def test_a_registration_mails_the_maintainers(make_app: Callable[..., Flask]) -> None:
    with smtp_server() as (port, inbox):
        app = make_app(**mail_settings(port))
        uuid, _ = register(app.test_client())
        (mail,) = inbox.wait(1)
    envelope = inbox.envelopes[0]
    assert envelope.mail_from == "hub@example.org"
    assert envelope.rcpt_tos == RECIPIENTS
    assert mail["Subject"] == "[Cephalopod] New registration: Example Lab"
    body = mail.get_content()
    assert "Contact:      Ann <ann@example.org>" in body
    assert f"https://hub.example.org/servers/{uuid}" in body


def test_no_recipients_no_mail(make_app: Callable[..., Flask]) -> None:
    with smtp_server() as (port, inbox):
        app = make_app(**mail_settings(port, NOTIFY_EMAILS=[], MAIL_DEFAULT_SENDER=None))
        register(app.test_client())
        assert services(app).runner.join(timeout=10)  # type: ignore[attr-defined]
        time.sleep(0.2)
    assert inbox.envelopes == []


def test_crlf_from_a_stranger_reaches_no_header(make_app: Callable[..., Flask]) -> None:
    with smtp_server() as (port, inbox):
        app = make_app(**mail_settings(port))
        uuid, _ = register(app.test_client())
        inbox.wait(1)
        # the protocol refuses control characters; the mail guards itself all the same
        # (a row written by hand, by an older version, or an admin's edit)
        with app.app_context():
            instance = instance_ops.get_instance(uuid)
            assert instance is not None
            instance.organization = "Evil\r\nBcc: victim@example.net\r\n\r\n<b>x</b>"
            db.session.commit()
        services(app).runner.submit(notify_tasks.NOTIFY_REGISTRATION, uuid=uuid)
        mails = inbox.wait(2)
    envelope = inbox.envelopes[1]
    assert envelope.rcpt_tos == RECIPIENTS  # nobody added
    assert b"\nBcc:" not in envelope.original_content
    assert mails[1]["Bcc"] is None
    assert mails[1].get_content_type() == "text/plain"
    assert "Organization: Evil Bcc: victim@example.net <b>x</b>" in mails[1].get_content()


@pytest.mark.slow
def test_a_server_down_is_retried_with_backoff_then_given_up(
    make_app: Callable[..., Flask],
    caplog: pytest.LogCaptureFixture,
    fast_retries: tuple[float, ...],
) -> None:
    app = make_app(**mail_settings(free_port()))  # nothing listens there
    with caplog.at_level("INFO"):
        _uuid, elapsed = register(app.test_client())
        assert elapsed < 5  # the reply never waits for the mail server
        wait_for_log(caplog, "gave up")
    lines = mail_lines(caplog)
    assert [r.levelname for r in lines] == ["WARNING", "WARNING", "WARNING", "ERROR"]
    for n, record in enumerate(lines[:3], start=1):
        assert f"(attempt {n} of 4)" in record.getMessage()
        assert "ConnectionRefusedError" in record.getMessage()
    # each retry waited at least its own delay (a loaded machine only lengthens the gaps,
    # so their order is not compared: the delays' is, below)
    gaps = [b.created - a.created for a, b in itertools.pairwise(lines)]
    for gap, delay in zip(gaps, fast_retries, strict=True):
        assert gap >= delay * 0.9


def test_retry_delays_back_off() -> None:
    """Each retry of a mail waits longer than the one before (minutes, not seconds)."""
    delays = notify_tasks.RETRY_DELAYS
    assert all(a < b for a, b in itertools.pairwise(delays))
    assert delays[0] >= 10
    assert len(delays) + 1 == notify_tasks.MAX_ATTEMPTS


@pytest.mark.slow
def test_a_server_back_before_the_retries_end_gets_the_mail(
    make_app: Callable[..., Flask],
    caplog: pytest.LogCaptureFixture,
    fast_retries: tuple[float, ...],
) -> None:
    port = free_port()
    app = make_app(**mail_settings(port))
    with caplog.at_level("INFO"):
        uuid, _ = register(app.test_client())
        wait_for_log(caplog, "attempt 1 of 4")
        with smtp_server(port) as (_port, inbox):
            (mail,) = inbox.wait(1)
            wait_for_log(caplog, "Sent the mail")
    assert uuid in mail.get_content()
    assert not any("gave up" in r.getMessage() for r in caplog.records)


@pytest.mark.slow
def test_a_hung_server_delays_no_registration(
    make_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture, silent_port: int
) -> None:
    app = make_app(**mail_settings(silent_port))
    client = app.test_client()
    with caplog.at_level("INFO"):
        for n in range(3):
            _uuid, elapsed = register(client, f"Lab {n}")
            assert elapsed < 5  # while the worker waits for a greeting that never comes
        wait_for_log(caplog, "attempt 1 of 4", timeout=60)
    assert "timed out" in caplog.text


def test_login_and_no_password_in_the_logs(
    make_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    secret = "smtp-pa55-word"
    with smtp_server(login=("hub", secret)) as (port, inbox), caplog.at_level("DEBUG"):
        app = make_app(**mail_settings(port, MAIL_USERNAME="hub", MAIL_PASSWORD=secret))
        register(app.test_client())
        inbox.wait(1)
        # the worker's task is over (its lines logged, its connection back in the pool)
        # before the test goes on and its apps' engines are disposed
        assert services(app).runner.join(timeout=10)  # type: ignore[attr-defined]
        wrong = make_app(**mail_settings(port, MAIL_USERNAME="hub", MAIL_PASSWORD="not-it"))
        with wrong.app_context():
            uuid = str(db.session.scalars(sa.select(Instance.uuid)).one())
            assert notify_tasks.notify_registration(wrong, uuid, attempt=4) is False
    assert inbox.logins[0] == ("hub", secret)
    assert set(inbox.logins[1:]) == {("hub", "not-it")}  # smtplib tries PLAIN, then LOGIN
    assert "SMTPAuthenticationError" in caplog.text
    assert secret not in caplog.text
    assert "not-it" not in caplog.text


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("smtp-tls"))


@pytest.mark.parametrize("mode", ["starttls", "smtps"])
def test_tls_with_a_trusted_certificate(
    make_app: Callable[..., Flask],
    monkeypatch: pytest.MonkeyPatch,
    certificate: tuple[Path, Path],
    mode: str,
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))  # trusted as a CA would be
    smtps = mode == "smtps"
    with smtp_server(certificate=certificate, implicit_tls=smtps) as (port, inbox):
        app = make_app(**mail_settings(port, MAIL_USE_TLS=not smtps, MAIL_USE_SSL=smtps))
        with app.app_context():
            instance = instance_ops.register_instance({**BODY, "organization": "TLS Lab"})
        inbox.wait(1)
    assert str(instance.uuid) in inbox.messages[0].get_content()


def test_tls_refuses_an_untrusted_certificate(
    make_app: Callable[..., Flask],
    make_instance: Callable[..., Any],
    caplog: pytest.LogCaptureFixture,
    certificate: tuple[Path, Path],
) -> None:
    uuid = str(make_instance().uuid)  # on the app without mail: nothing queued
    with smtp_server(certificate=certificate) as (port, inbox), caplog.at_level("INFO"):
        app = make_app(**mail_settings(port, MAIL_USE_TLS=True))
        with app.app_context():
            assert notify_tasks.notify_registration(app, uuid, attempt=4) is False
    assert "SSLCertVerificationError" in caplog.text
    assert inbox.envelopes == []


def test_a_deleted_instance_gets_no_mail(
    app: Flask, make_app: Callable[..., Flask], make_instance: Callable[..., Any]
) -> None:
    with smtp_server() as (port, inbox):
        mailing = make_app(**mail_settings(port))
        instance = make_instance()  # on the app without mail: nothing queued
        with mailing.app_context():
            instance_ops.delete_instance(instance_ops.get_instance(str(instance.uuid)))
            assert notify_tasks.notify_registration(mailing, str(instance.uuid)) is False
    assert inbox.envelopes == []


def test_daily_mode_mails_one_digest(make_app: Callable[..., Flask]) -> None:
    with smtp_server() as (port, inbox):
        app = make_app(**mail_settings(port, NOTIFY_MODE="daily"))
        assert NOTIFY_DIGEST in [job.task for job in services(app).settings.schedule]
        client = app.test_client()
        uuids = [register(client, f"Lab {n}")[0] for n in range(3)]
        assert services(app).runner.join(timeout=10)  # type: ignore[attr-defined]
        assert inbox.envelopes == []  # nothing per registration
        with app.app_context():
            assert notify_tasks.daily_digest(app) == 3
            assert notify_tasks.daily_digest(app) == 0  # told already: no second mail
            register(client, "Lab 3")
            assert notify_tasks.daily_digest(app) == 1
        first, second = inbox.wait(2)
    assert first["Subject"] == "[Cephalopod] 3 new registration(s)"
    for uuid in uuids:
        assert f"https://hub.example.org/servers/{uuid}" in first.get_content()
    assert "Organization: Lab 3" in second.get_content()
    assert "Lab 0" not in second.get_content()


def test_the_digest_is_scheduled_only_in_daily_mode() -> None:
    base = {"CELERYBEAT_SCHEDULE": {}, "NOTIFY_EMAILS": RECIPIENTS}
    assert NOTIFY_DIGEST in [j.task for j in periodic_jobs({**base, "NOTIFY_MODE": "daily"})]
    assert NOTIFY_DIGEST not in [j.task for j in periodic_jobs({**base, "NOTIFY_MODE": "each"})]
    none = {**base, "NOTIFY_EMAILS": [], "NOTIFY_MODE": "daily"}
    assert NOTIFY_DIGEST not in [j.task for j in periodic_jobs(none)]


# --- through a real Celery worker -------------------------------------------------------------


@pytest.fixture
def worker(
    postgres_url: str, tmp_path: Path, broker: PrivateRedis
) -> Iterator[Callable[[int], None]]:
    """Start `cephalopod runworker` with mail settings for a port; stop it afterwards.

    On a Redis of the test's own (``broker``): no other pytest process shares its queue.
    """
    processes: list[subprocess.Popen[str]] = []

    def start(port: int) -> None:
        settings = tmp_path / "worker.cfg"
        lines = [f"{k} = {v!r}" for k, v in mail_settings(port).items()]
        lines += [
            f"SQLALCHEMY_DATABASE_URI = {postgres_url!r}",
            f"CELERY_BROKER_URL = {broker.url!r}",
            "SECRET_KEY = 'worker-test'",
        ]
        settings.write_text("\n".join(lines) + "\n")
        env = {**os.environ, "CEPHALOPOD_SETTINGS": str(settings)}
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "cephalopod", "runworker", "1", "--no-beat"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
        )

    yield start
    for process in processes:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.slow
def test_a_celery_worker_sends_the_mail(
    make_pg_app: Callable[..., Flask], worker: Callable[[int], None], broker: PrivateRedis
) -> None:
    with smtp_server() as (port, inbox):
        app = make_pg_app(CELERY_BROKER_URL=broker.url, **mail_settings(port))
        worker(port)
        uuid, elapsed = register(app.test_client())
        assert elapsed < 5
        (mail,) = inbox.wait(1, timeout=90)
    assert f"https://hub.example.org/servers/{uuid}" in mail.get_content()
