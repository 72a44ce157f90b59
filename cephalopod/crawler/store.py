"""Store a batch of crawl results in one transaction: the database half of a crawl.

Knows no HTTP. For each result: the health columns; on success the new crawled data (hidden
fields never stored), its display values and the day's snapshot (the latest of the day wins);
on every attempt the location of the address that was actually connected to. A failure never
touches the previous crawled data.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from cephalopod.crawler.fetch import FetchResult
from cephalopod.crawler.models import CrawlJob
from cephalopod.geo.locate import GeoLocator
from cephalopod.instances.models import Instance, InstanceField, Snapshot
from cephalopod.stats.fields import FieldRegistry
from cephalopod.stats.values import display_rows

log = logging.getLogger(__name__)

MAX_ERROR_CHARS = 500

instances = Instance.__table__
fields_table = InstanceField.__table__
snapshots = Snapshot.__table__
jobs = CrawlJob.__table__


@dataclass
class BatchOutcome:
    """What a stored batch counted: for progress lines and the final summary."""

    ok: int = 0
    failed: int = 0
    errors: Counter[str] = field(default_factory=Counter)


def store_results(
    conn: Connection,
    results: Sequence[FetchResult],
    registry: FieldRegistry,
    locator: GeoLocator | None = None,
    job_id: str | None = None,
) -> BatchOutcome:
    """Write a batch of results (keys are instance ids) in the caller's transaction."""
    outcome = BatchOutcome()
    ok_rows: list[dict[str, Any]] = []
    error_rows: list[dict[str, Any]] = []
    value_rows: list[dict[str, Any]] = []
    snapshot_rows: list[dict[str, Any]] = []
    located: list[dict[str, Any]] = []
    for result in results:
        instance_id = int(result.key)  # type: ignore[call-overload]
        if result.ip is not None:
            located.append(_location_row(instance_id, result.ip, locator))
        if result.ok and result.data is not None:
            data = registry.visible(result.data)
            ok_rows.append({"b_id": instance_id, "b_data": data, "b_at": result.started_at})
            value_rows.extend(display_rows(instance_id, data, registry))
            snapshot_rows.append(
                {"instance_id": instance_id, "day": result.started_at.date(), "data": data}
            )
            outcome.ok += 1
        else:
            error = (result.error or "unknown error")[:MAX_ERROR_CHARS]
            error_rows.append({"b_id": instance_id, "b_error": error, "b_at": result.started_at})
            outcome.failed += 1
            outcome.errors[error] += 1
    if ok_rows:
        conn.execute(_OK_UPDATE, ok_rows)
        ids = [row["b_id"] for row in ok_rows]
        conn.execute(sa.delete(fields_table).where(fields_table.c.instance_id.in_(ids)))
        if value_rows:
            conn.execute(sa.insert(fields_table), value_rows)
        conn.execute(_snapshot_upsert(conn.dialect.name), snapshot_rows)
    if error_rows:
        conn.execute(_ERROR_UPDATE, error_rows)
    if located:
        # without geolocation data only the address changes: known locations are not erased
        has_data = locator is not None and locator.available
        conn.execute(_LOCATION_UPDATE if has_data else _IP_UPDATE, located)
    if job_id is not None and results:
        conn.execute(
            sa.update(jobs)
            .where(jobs.c.id == job_id)
            .values(
                done=jobs.c.done + len(results),
                ok=jobs.c.ok + outcome.ok,
                failed=jobs.c.failed + outcome.failed,
            )
        )
    return outcome


_OK_UPDATE = (
    sa.update(instances)
    .where(instances.c.id == sa.bindparam("b_id"))
    .values(
        crawled_data=sa.bindparam("b_data", type_=instances.c.crawled_data.type),
        last_crawl_at=sa.bindparam("b_at", type_=instances.c.last_crawl_at.type),
        last_success_at=sa.bindparam("b_at", type_=instances.c.last_success_at.type),
        crawl_status="ok",
        crawl_error=None,
        consecutive_failures=0,
    )
)

_ERROR_UPDATE = (
    sa.update(instances)
    .where(instances.c.id == sa.bindparam("b_id"))
    .values(
        last_crawl_at=sa.bindparam("b_at", type_=instances.c.last_crawl_at.type),
        crawl_status="error",
        crawl_error=sa.bindparam("b_error"),
        consecutive_failures=instances.c.consecutive_failures + 1,
    )
)

_LOCATION_UPDATE = (
    sa.update(instances)
    .where(instances.c.id == sa.bindparam("b_id"))
    .values(
        ip=sa.bindparam("b_ip"),
        country_code=sa.bindparam("b_country_code"),
        country_name=sa.bindparam("b_country_name"),
        city=sa.bindparam("b_city"),
        latitude=sa.bindparam("b_latitude"),
        longitude=sa.bindparam("b_longitude"),
    )
)


_IP_UPDATE = (
    sa.update(instances)
    .where(instances.c.id == sa.bindparam("b_id"))
    .values(ip=sa.bindparam("b_ip"))
)


def _location_row(instance_id: int, ip: str, locator: GeoLocator | None) -> dict[str, Any]:
    location = locator.locate(ip) if locator is not None else None
    return {
        "b_id": instance_id,
        "b_ip": ip[:45],
        "b_country_code": location.country_code if location else None,
        "b_country_name": (location.country_name or "")[:100] or None if location else None,
        "b_city": (location.city or "")[:200] or None if location else None,
        "b_latitude": location.latitude if location else None,
        "b_longitude": location.longitude if location else None,
    }


def _snapshot_upsert(dialect: str) -> sa.Insert:
    insert = postgresql.insert(snapshots) if dialect == "postgresql" else sqlite.insert(snapshots)
    return insert.on_conflict_do_update(
        index_elements=[snapshots.c.instance_id, snapshots.c.day],
        set_={"data": insert.excluded.data},
    )
