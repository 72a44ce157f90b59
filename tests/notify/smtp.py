"""A real SMTP server for the tests: aiosmtpd on a free loopback port, in its own thread."""

from __future__ import annotations

import email
import email.policy
import gc
import socket
import ssl
import subprocess
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


def free_port() -> int:
    """A loopback TCP port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Inbox:
    """What the server received: envelopes and parsed messages."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []
        self.logins: list[tuple[str, str]] = []
        self._arrived = threading.Condition()

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's name
        with self._arrived:
            self.envelopes.append(envelope)
            self._arrived.notify_all()
        return "250 Message accepted"

    @property
    def messages(self) -> list[EmailMessage]:
        return [
            email.message_from_bytes(e.original_content, policy=email.policy.default)  # type: ignore[misc]
            for e in self.envelopes
        ]

    def wait(self, count: int = 1, timeout: float = 30) -> list[EmailMessage]:
        """Wait until ``count`` mails arrived; return them (fail after ``timeout`` s)."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self.envelopes) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(self.envelopes)} of {count} mails arrived")
                self._arrived.wait(left)
        return self.messages


@contextmanager
def smtp_server(
    port: int | None = None,
    *,
    login: tuple[str, str] | None = None,
    certificate: tuple[Path, Path] | None = None,
    implicit_tls: bool = False,
) -> Iterator[tuple[int, Inbox]]:
    """Run an SMTP server on 127.0.0.1 (with AUTH, STARTTLS or SMTPS as asked)."""
    inbox = Inbox()
    port = port or free_port()
    kwargs: dict[str, Any] = {}
    if login is not None:

        def authenticate(
            _server: Any, _session: Any, _envelope: Any, _mechanism: str, data: Any
        ) -> AuthResult:
            given = (data.login.decode(), data.password.decode())
            inbox.logins.append(given)
            return AuthResult(success=given == login, handled=False)

        kwargs |= {"authenticator": authenticate, "auth_require_tls": certificate is not None}
    if certificate is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*certificate)
        kwargs |= {"ssl_context": context} if implicit_tls else {"tls_context": context}
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()
        if certificate is not None:
            # aiosmtpd leaves transports unclosed around TLS (the plain one STARTTLS moves
            # away from, its own readiness probe over SMTPS: its bugs, on the server's
            # side): collect them now, silently, or their ResourceWarning fails whichever
            # later test the garbage collector happens to run in
            del controller
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ResourceWarning)
                gc.collect()


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (the openssl command)."""
    cert, key = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return cert, key
