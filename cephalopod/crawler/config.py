"""The crawl configuration: everything a crawl needs from the settings, read once.

Built by ``create_app`` (see `cephalopod.services`) and handed to every crawl; a crawl never
reads ``app.config`` again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cephalopod.crawler.results import Endpoint, FetchLimits
from cephalopod.stats.fields import FieldRegistry


@dataclass(frozen=True)
class CrawlConfig:
    """Everything a crawl needs from the settings."""

    endpoints: tuple[Endpoint, ...]
    limits: FetchLimits
    concurrency: int
    allowed_networks: tuple[str, ...]
    user_agent: str
    batch_size: int
    chunk_size: int
    registry: FieldRegistry
    database_uri: str
    engine_options: dict[str, Any]
    geoip_database: Any
    geoip_dir: Path
    #: tell which instances start failing after at least this many successes in a row
    #: (`BatchOutcome.started_failing`, signal `instances_started_failing`); None: don't look.
    #: Set for whoever listens (the mail's NOTIFY_FAILING_AFTER, see `cephalopod.services`).
    report_failing_after: int | None = None

    @classmethod
    def from_config(
        cls, c: Mapping[str, Any], registry: FieldRegistry, instance_path: str | Path
    ) -> CrawlConfig:
        """Read the crawler settings of a validated configuration."""
        return cls(
            endpoints=tuple(Endpoint(e["url"], e["headers"]) for e in c["CRAWLING_ENDPOINTS"]),
            limits=FetchLimits(
                connect_timeout=float(c["CRAWLER_CONNECT_TIMEOUT"]),
                total_timeout=float(c["CRAWLER_TOTAL_TIMEOUT"]),
                max_bytes=c["CRAWLER_MAX_BYTES"],
                max_redirects=c["CRAWLER_MAX_REDIRECTS"],
                max_depth=c["CRAWLER_MAX_DEPTH"],
                max_keys=c["CRAWLER_MAX_KEYS"],
            ),
            concurrency=c["CRAWLER_CONCURRENCY"],
            allowed_networks=tuple(c["CRAWLER_ALLOWED_NETWORKS"]),
            user_agent=c["CRAWLER_USER_AGENT"],
            batch_size=c["CRAWLER_BATCH_SIZE"],
            chunk_size=c["CRAWLER_CHUNK_SIZE"],
            registry=registry,
            database_uri=c["SQLALCHEMY_DATABASE_URI"],
            engine_options=dict(c.get("SQLALCHEMY_ENGINE_OPTIONS") or {}),
            geoip_database=c["GEOIP_DATABASE"],
            geoip_dir=Path(instance_path) / "geoip",
        )
