"""``/metrics`` in Prometheus' text format: the hub's state from the database, HTTP in-process.

Two sources, so that every number is right however many processes serve and crawl:

- What lives in the database (instances by status and health, registrations, the last crawl
  of all, the running crawl's progress, crawl failures by reason) is read from it at scrape
  time by `DatabaseCollector`: any web process answers the same.
- HTTP requests (by endpoint name, method and status, with latency histograms) happen in
  each web process. With one process a plain registry per app counts them. With several
  (gunicorn workers), set ``PROMETHEUS_MULTIPROC_DIR`` to an empty folder before they start:
  prometheus-client's multiprocess mode then keeps each process's counts in files there, and
  whichever process is scraped sums them all.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy.dialects import postgresql, sqlite

from cephalopod.crawler import jobs
from cephalopod.crawler.models import ALL, CrawlJob
from cephalopod.db import Meta, db
from cephalopod.instances.models import CRAWL_STATUSES, Instance
from cephalopod.instances.operations import instance_deleted

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: The meta row counting deleted instances: registrations are the instances plus these.
DELETIONS = "instances_deleted"
#: Methods counted by name; anything else a stranger sends is "other" (bounded labels).
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: Requests no route matched (their raw paths would be unbounded labels).
UNMATCHED = "unmatched"

#: Crawl error text (see cephalopod.crawler.fetch) → a reason, first match wins.
FAILURE_REASONS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (reason, re.compile(pattern))
    for reason, pattern in (
        ("timeout", r"^(connect )?timeout after"),
        ("dns", r"^cannot resolve host"),
        ("tls", r"^TLS "),
        ("not_public", r"^address .* is not public$"),
        ("connect", r"^(connection (refused|reset|error)|(network|host) unreachable|cannot con)"),
        ("http_4xx", r"^HTTP 4\d\d "),
        ("http_5xx", r"^HTTP 5\d\d "),
        ("http_other", r"^HTTP \d+ "),
        ("redirect", r"^(too many redirects|invalid redirect location)"),
        ("too_large", r"^response larger than"),
        ("invalid_json", r"^(invalid JSON|response is not a JSON object|JSON )"),
        ("protocol", r"^(server disconnected|malformed response body|invalid HTTP response)"),
        ("invalid_url", r"^(invalid URL|unsupported URL scheme)"),
        ("unstorable", r"^the reply could not be stored"),
        ("internal", r"^internal error"),
    )
)


def failure_reason(error: str | None) -> str:
    """Return the bounded reason label of a crawl error ("other" when none fits)."""
    for reason, pattern in FAILURE_REASONS:
        if error and pattern.search(error):
            return reason
    return "other"


def method_label(method: str) -> str:
    """The method as a label: standard ones by name, others folded into "other"."""
    return method if method in METHODS else "other"


# --- the database, read at scrape time ----------------------------------------------------------


def count_deletion(conn: sa.Connection) -> None:
    """Add one to the deleted-instances counter (created at the first deletion)."""
    meta = Meta.__table__
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    insert = dialect.insert(meta).values(key=DELETIONS, value="1")
    bumped = sa.cast(sa.cast(meta.c.value, sa.Integer) + 1, sa.Text)
    conn.execute(insert.on_conflict_do_update(index_elements=[meta.c.key], set_={"value": bumped}))


def _on_deleted(sender: Any, **_extra: Any) -> None:
    try:
        with db.engine.begin() as conn:
            count_deletion(conn)
    except sa.exc.SQLAlchemyError:  # the deletion itself is committed: never fail it
        log.exception("Could not count a deletion in the metrics")


def connect_signals() -> None:
    """Count deletions, so that registrations (instances + deletions) only add up.

    Not registrations themselves: a counter row bumped by every registration is one row
    that all of them lock in turn, each through its own commit's fsync (measured: at
    200 registrations/s they queued behind each other, p99 in seconds).
    """
    instance_deleted.connect(_on_deleted, weak=False)


@dataclass(frozen=True)
class HubState:
    """What the database says at one scrape."""

    instances: Mapping[tuple[bool, str], int]
    registrations: int
    failures: Mapping[str, int]
    last_crawl: CrawlJob | None
    running: Mapping[str, Any] | None


def read_state() -> HubState:
    """Read the hub's state with a few aggregate queries (needs an app context)."""
    session = db.session
    by_status = session.execute(
        sa.select(Instance.enabled, Instance.crawl_status, sa.func.count()).group_by(
            Instance.enabled, Instance.crawl_status
        )
    ).all()
    deleted = session.scalar(sa.select(Meta.value).where(Meta.key == DELETIONS))
    registrations = sum(count for _, _, count in by_status) + int(deleted or 0)
    failures: dict[str, int] = {}
    errors = session.execute(
        sa.select(Instance.crawl_error, sa.func.count())
        .where(Instance.enabled, Instance.crawl_status == "error")
        .group_by(Instance.crawl_error)
    ).all()
    for error, count in errors:
        reason = failure_reason(error)
        failures[reason] = failures.get(reason, 0) + count
    last_crawl = session.scalar(
        sa.select(CrawlJob)
        .where(CrawlJob.kind == ALL, CrawlJob.finished_at.is_not(None))
        .where(CrawlJob.started_at.is_not(None))
        .order_by(CrawlJob.finished_at.desc())
        .limit(1)
    )
    active = jobs.active_job()
    running = jobs.job_status(active.id) if active is not None else None
    return HubState(
        instances={(bool(enabled), status): count for enabled, status, count in by_status},
        registrations=int(registrations or 0),
        failures=failures,
        last_crawl=last_crawl,
        running=running,
    )


def _families() -> dict[str, GaugeMetricFamily | CounterMetricFamily]:
    gauge, counter = GaugeMetricFamily, CounterMetricFamily
    return {
        "instances": gauge(
            "cephalopod_instances",
            "Registered instances by status (enabled, disabled) and crawl health",
            labels=["status", "health"],
        ),
        "registrations": counter(
            "cephalopod_registrations", "Registrations since the hub started counting them"
        ),
        "failures": gauge(
            "cephalopod_crawl_failures",
            "Enabled instances whose latest crawl failed, by reason",
            labels=["reason"],
        ),
        "duration": gauge(
            "cephalopod_last_crawl_duration_seconds", "Duration of the last crawl of all"
        ),
        "rate": gauge(
            "cephalopod_last_crawl_instances_per_second",
            "Instances crawled per second in the last crawl of all",
        ),
        "crawled": gauge(
            "cephalopod_last_crawl_instances",
            "Instances of the last crawl of all, by result",
            labels=["result"],
        ),
        "finished": gauge(
            "cephalopod_last_crawl_timestamp_seconds",
            "When the last crawl of all ended (Unix time)",
        ),
        "running": gauge(
            "cephalopod_crawl_running", "1 while a crawl of all instances is queued or running"
        ),
        "progress": gauge(
            "cephalopod_crawl_progress_instances",
            "Progress of the running crawl of all: instances done and in total",
            labels=["kind"],
        ),
        "up": gauge("cephalopod_database_up", "1 when the database answered this scrape's queries"),
    }


def state_metrics(state: HubState) -> list[Metric]:
    """Turn a `HubState` into metric families (a pure function)."""
    families = _families()
    for enabled in (True, False):
        for health in CRAWL_STATUSES:
            count = state.instances.get((enabled, health), 0)
            families["instances"].add_metric(["enabled" if enabled else "disabled", health], count)
    families["registrations"].add_metric([], state.registrations)
    for reason in sorted(state.failures):
        families["failures"].add_metric([reason], state.failures[reason])
    job = state.last_crawl
    if job is not None and job.started_at is not None and job.finished_at is not None:
        seconds = max((job.finished_at - job.started_at).total_seconds(), 0.0)
        families["duration"].add_metric([], seconds)
        families["rate"].add_metric([], job.done / seconds if seconds else 0.0)
        families["crawled"].add_metric(["ok"], job.ok)
        families["crawled"].add_metric(["failed"], job.failed)
        families["finished"].add_metric([], job.finished_at.timestamp())
    running = state.running
    families["running"].add_metric([], 1 if running is not None else 0)
    families["progress"].add_metric(["done"], running["done"] if running else 0)
    families["progress"].add_metric(["total"], running["total"] if running else 0)
    families["up"].add_metric([], 1)
    return list(families.values())


class DatabaseCollector(Collector):
    """Reads the hub's state from the database at each scrape (in the scraping request)."""

    def describe(self) -> Iterable[Metric]:
        """The families without samples: registering needs no database (nor an app context)."""
        return list(_families().values())

    def collect(self) -> Iterable[Metric]:
        """Query the database now; when it fails, say so in ``cephalopod_database_up``."""
        try:
            return state_metrics(read_state())
        except sa.exc.SQLAlchemyError as exc:
            db.session.rollback()
            log.warning("Metrics: the database did not answer (%s)", type(exc).__name__)
            up = _families()["up"]
            up.add_metric([], 0)
            return [up]


# --- HTTP requests, counted in each process -----------------------------------------------------


class HttpMetrics:
    """The request counter and latency histogram."""

    def __init__(self, registry: CollectorRegistry | None) -> None:
        labels = ["endpoint", "method", "status"]
        self.requests = Counter(
            "cephalopod_http_requests",
            "HTTP requests by endpoint (route name), method and status",
            labels,
            registry=registry,
        )
        self.latency = Histogram(
            "cephalopod_http_request_duration_seconds",
            "Time to answer HTTP requests (to the first byte of a streamed reply)",
            labels,
            registry=registry,
        )

    def observe(self, endpoint: str | None, method: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        labels = (endpoint or UNMATCHED, method_label(method), str(status))
        self.requests.labels(*labels).inc()
        self.latency.labels(*labels).observe(seconds)


_process_http: HttpMetrics | None = None
_process_lock = threading.Lock()


def _multiprocess_http() -> HttpMetrics:
    """One set per process: the files of multiprocess mode are the process's, not an app's."""
    global _process_http
    with _process_lock:
        if _process_http is None:
            _process_http = HttpMetrics(registry=None)
        return _process_http


class Metrics:
    """The metrics of one app."""

    def __init__(self, multiprocess_dir: str | None) -> None:
        self.multiprocess_dir = multiprocess_dir or None
        self.database = DatabaseCollector()
        if self.multiprocess_dir:
            self.registry = None
            self.http = _multiprocess_http()
        else:
            self.registry = CollectorRegistry()
            self.http = HttpMetrics(self.registry)
            self.registry.register(self.database)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Metrics:
        """Multiprocess mode when ``PROMETHEUS_MULTIPROC_DIR`` is set (as prometheus-client)."""
        return cls(environ.get(MULTIPROC_ENV))

    def exposition(self) -> tuple[bytes, str]:
        """The text to serve at /metrics and its content type (needs an app context)."""
        if self.registry is not None:
            return generate_latest(self.registry), CONTENT_TYPE_LATEST
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self.multiprocess_dir)
        registry.register(self.database)
        return generate_latest(registry), CONTENT_TYPE_LATEST
