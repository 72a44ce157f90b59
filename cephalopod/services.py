"""What ``create_app`` builds once and every part of the app is handed: `Services`.

Views and commands get it with ``services()``; domain functions take the parts they need
as arguments. Nothing here is created lazily.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Flask, current_app

from cephalopod.background import Runner
from cephalopod.crawler.config import CrawlConfig
from cephalopod.crawler.results import Endpoint
from cephalopod.geo.locate import GeoLocator
from cephalopod.notify.config import MailConfig
from cephalopod.ops.config import OpsConfig
from cephalopod.ops.health import Health
from cephalopod.schedule import Periodic, periodic_jobs
from cephalopod.stats.fields import FieldRegistry

if TYPE_CHECKING:  # these reach the services through what they read: types only here
    from cephalopod.ops.metrics import Metrics
    from cephalopod.stats.cache import StatsCache

EXTENSION = "cephalopod"


@dataclass(frozen=True)
class Settings:
    """The validated settings, typed (the raw keys stay in ``app.config`` for Flask)."""

    fields: FieldRegistry
    crawl: CrawlConfig
    endpoints: tuple[Endpoint, ...]
    schedule: tuple[Periodic, ...]
    broker_url: str | None
    history_retention_days: int
    audit_retention_days: int
    public_statistics: bool
    ops: OpsConfig
    mail: MailConfig

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], fields: FieldRegistry, instance_path: str | Path
    ) -> Settings:
        """Type a configuration that `cephalopod.settings.load` validated."""
        mail = MailConfig.from_config(config)
        crawl = CrawlConfig.from_config(config, fields, instance_path)
        if mail.enabled and mail.failing_after:  # the crawl looks for what the mail tells
            crawl = replace(crawl, report_failing_after=mail.failing_after)
        return cls(
            fields=fields,
            crawl=crawl,
            endpoints=crawl.endpoints,
            schedule=tuple(periodic_jobs(config)),
            broker_url=config.get("CELERY_BROKER_URL") or None,
            history_retention_days=config["HISTORY_RETENTION_DAYS"],
            audit_retention_days=config["AUDIT_RETENTION_DAYS"],
            public_statistics=config["PUBLIC_STATISTICS"],
            ops=OpsConfig.from_config(config),
            mail=mail,
        )


@dataclass(frozen=True)
class Services:
    """The long-lived objects of one app."""

    settings: Settings
    runner: Runner
    geolocator: GeoLocator
    stats_cache: StatsCache
    health: Health
    metrics: Metrics


def services(app: Flask | None = None) -> Services:
    """Return the services of ``app`` (default: the current app)."""
    target = app if app is not None else current_app
    found: Services = target.extensions[EXTENSION]  # put there by create_app
    return found
