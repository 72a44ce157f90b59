"""The mail settings, typed once (see `cephalopod.services.Settings`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

MODES = ("each", "daily")


@dataclass(frozen=True)
class MailConfig:
    """Where mail goes out, who gets it, and how often."""

    server: str
    port: int
    use_tls: bool  # STARTTLS after connecting
    use_ssl: bool  # TLS from the first byte (SMTPS)
    username: str | None
    password: str | None
    sender: str | None
    recipients: tuple[str, ...]
    mode: str
    base_url: str | None
    app_name: str
    #: mail when an instance fails after this many successful crawls in a row (None: never)
    failing_after: int | None = None

    @property
    def enabled(self) -> bool:
        """True when someone is to be told (NOTIFY_EMAILS is not empty)."""
        return bool(self.recipients)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> MailConfig:
        """Read a configuration that `cephalopod.settings.load` validated."""
        return cls(
            server=config["MAIL_SERVER"],
            port=config["MAIL_PORT"],
            use_tls=config["MAIL_USE_TLS"],
            use_ssl=config["MAIL_USE_SSL"],
            username=config["MAIL_USERNAME"] or None,
            password=config["MAIL_PASSWORD"] or None,
            sender=config["MAIL_DEFAULT_SENDER"],
            recipients=tuple(config["NOTIFY_EMAILS"]),
            mode=config["NOTIFY_MODE"],
            base_url=config["BASE_URL"],
            app_name=config["APP_NAME"],
            failing_after=config["NOTIFY_FAILING_AFTER"] or None,
        )
