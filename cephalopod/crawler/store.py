"""Store a batch of crawl results in one transaction: the database half of a crawl.

Knows no HTTP. For each result: the health columns; on success the new crawled data (hidden
fields are never stored), its display values and the day's snapshot (the latest of the day
wins); on every attempt the location of the address actually connected to. A failure never
touches the previous crawled data.

This is the crawl's hot path, so rows go to the driver's ``executemany`` as plain tuples
(SQLAlchemy's per-row parameter processing would cost more than the HTTP work) and the JSON
text is encoded once for the instance row and the snapshot alike.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC
from decimal import Decimal
from operator import itemgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cephalopod.crawler.models import ChunkDelivery, CrawlJob, CrawlJobChunk
from cephalopod.crawler.results import FetchResult
from cephalopod.crawler.store_sql import ENCODE, Cursor, DialectSql, dialect_sql, driver_cursor
from cephalopod.geo.locate import GeoLocator
from cephalopod.geo.location import Location
from cephalopod.instances.models import Instance, InstanceField
from cephalopod.stats.cache import touch_data_version
from cephalopod.stats.fields import FieldRegistry
from cephalopod.stats.values import display_tuples

log = logging.getLogger(__name__)

MAX_ERROR_CHARS = 500
jobs = CrawlJob.__table__
chunks = CrawlJobChunk.__table__
fields_table = InstanceField.__table__
instances = Instance.__table__

_SQLITE_MAX_VARIABLES = 999  # bound variables per statement in every SQLite version


def _jsonb_text(data: dict[str, Any]) -> str:
    """JSON text of ``data`` whose floats jsonb gives back as floats.

    jsonb keeps a number's value, not its spelling: 1e+16, as Python writes floats from 1e16
    up, would read back as the int 10000000000000000. Spelled 10000000000000000.0, it stays
    a float. Each such float is swapped for a placeholder string (with a NUL, which crawled
    data never holds), then the placeholder's JSON for the float's decimal spelling.
    """
    spellings: list[str] = []

    def swap(value: Any) -> Any:
        if type(value) is float and abs(value) >= 1e16:
            spellings.append(f"{Decimal(repr(value)):f}.0")
            return f"\x00{len(spellings) - 1}"
        if type(value) is dict:
            return {key: swap(member) for key, member in value.items()}
        if type(value) is list:
            return [swap(member) for member in value]
        return value

    text = ENCODE(swap(data))
    for n, spelling in enumerate(spellings):
        text = text.replace(f'"\\u0000{n}"', spelling, 1)
    return text


@dataclass
class BatchOutcome:
    """What a stored batch counted: for progress lines and the final summary."""

    ok: int = 0
    failed: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    #: ids of the instances that started failing in this batch after a run of successes
    #: (only looked for when asked: see `store_results`)
    started_failing: list[int] = field(default_factory=list)

    def add(self, other: BatchOutcome) -> None:
        """Count another batch's outcome in this one."""
        self.ok += other.ok
        self.failed += other.failed
        self.errors.update(other.errors)
        self.started_failing += other.started_failing


def _location(ip: str | None, locator: GeoLocator | None) -> tuple[Any, ...] | None:
    """The location columns to write, or None to leave them as they are.

    Without geolocation data (or without an address) known locations are not erased; an
    address the data does not know is stored as unknown, not as an error.
    """
    if ip is None or locator is None or not locator.available:
        return None
    found: Location | None = locator.locate(ip)
    if found is None:
        return (None, None, None, None, None)
    return (
        found.country_code,
        (found.country_name or "")[:100] or None,
        (found.city or "")[:200] or None,
        found.latitude,
        found.longitude,
    )


def _changed_values(
    sql: DialectSql, cursor: Cursor, ids: list[int], rows: list[tuple[Any, ...]]
) -> tuple[list[tuple[int, str]], list[tuple[Any, ...]]]:
    """Compare new display values with the stored ones: (keys to delete, rows to insert).

    A recrawl mostly finds the same values; rewriting only what changed spares the indexes
    (and PostgreSQL's dead tuples) the churn of deleting and inserting every row each time.
    """
    stored = {
        (iid, name): (text, num)
        for iid, name, text, num in sql.by_ids(cursor, sql.select_values, ids)
    }
    if not stored:  # instances crawled for the first time: nothing to compare
        return [], rows
    wanted = {(row[0], row[1]): (row[2], row[3]) for row in rows}
    stale = [key for key, value in stored.items() if wanted.get(key) != value]
    fresh = [row for row in rows if stored.get((row[0], row[1])) != (row[2], row[3])]
    return stale, fresh


def store_results(
    conn: Connection,
    results: Sequence[FetchResult[int]],
    registry: FieldRegistry,
    locator: GeoLocator | None = None,
    job_id: str | None = None,
    chunk: ChunkDelivery | None = None,
    *,
    failing_after: int | None = None,
) -> BatchOutcome:
    """Write a batch of results (keys are instance ids) in the caller's transaction.

    The batch is counted in job ``job_id``, or in its chunk ``chunk`` (see `CrawlJobChunk`).
    With ``failing_after``, the outcome lists the instances whose first failure after at
    least that many successes in a row this batch stored (`BatchOutcome.started_failing`):
    told by the failures' own UPDATE on PostgreSQL, by one read of the failed ids on SQLite.
    On PostgreSQL this sets `DialectSql.transaction_settings` for the rest of that transaction.
    """
    sql = dialect_sql(conn)
    outcome = BatchOutcome()
    updates: dict[tuple[bool, bool], list[tuple[Any, ...]]] = {k: [] for k in sql.update}
    ok_ids: list[int] = []
    crawled: list[tuple[int, dict[str, Any], str, str, bool, tuple[Any, ...]]] = []
    snapshot_rows: list[tuple[Any, ...]] = []
    for result in results:
        instance_id = int(result.key)
        at = sql.timestamp(result.started_at)
        ip = result.ip[:45] if result.ip else None
        location = _location(ip, locator)
        tail = (round(result.duration, 3), ip, *(location or ()), instance_id)
        if result.ok and result.data is not None:
            data = registry.visible(result.data)
            text = ENCODE(data)  # json.dumps with these options, minus an encoder per call
            if sql.postgres and "e+" in text:
                text = _jsonb_text(data)
            ok_ids.append(instance_id)
            crawled.append((instance_id, data, text, at, location is not None, tail))
            day = sql.day(result.started_at.astimezone(UTC).date())
            snapshot_rows.append((instance_id, day, text))
            outcome.ok += 1
        else:
            error = (result.error or "unknown error")[:MAX_ERROR_CHARS]
            updates[False, location is not None].append((error, at, *tail))
            outcome.failed += 1
            outcome.errors[error] += 1
    if sql.postgres:
        conn.exec_driver_sql(sql.transaction_settings)
    cursor = driver_cursor(conn)
    try:
        # Display values derive from the crawled data alone (a change of field settings
        # recomputes them all), so where the data is the same as before, so are they.
        # PostgreSQL tells which data changed as it updates the rows; SQLite keeps the very
        # JSON text the crawler wrote, which is compared before.
        changed_ids: set[int] = set()
        if results and not sql.postgres:
            # cached statistics are stale from this commit on. A write first: it takes
            # SQLite's write lock, which keeps what is read next true until the commit (a
            # read alone would run outside the transaction).
            touch_data_version(conn)
            previous = dict(sql.by_ids(cursor, sql.select_data, ok_ids))
            changed_ids = {iid for iid, _data, text, *_ in crawled if previous.get(iid) != text}
        for iid, _data, text, at, located, tail in crawled:
            changed_at = () if sql.postgres else (at if iid in changed_ids else None,)
            updates[True, located].append((text, at, at, *changed_at, *tail))
        updated_ok = 0
        returned: list[tuple[int, bool]] = []  # PostgreSQL: (id, data changed) of the successes
        for key, rows in updates.items():
            if rows and not key[0] and failing_after:
                flipped = sql.write_failures_watching_flips(cursor, key[1], rows, failing_after)
                outcome.started_failing += flipped
            elif rows:
                updated = sql.write_updates(cursor, key, rows)
                if isinstance(updated, list):
                    returned += updated
                    updated_ok += len(updated)
                elif key[0]:
                    updated_ok += updated
        if ok_ids:
            changed_ids.update(iid for iid, changed in returned if changed)
            if updated_ok < len(ok_ids):
                # An instance deleted while it was crawled is skipped: the UPDATEs above
                # locked the rows that still exist, so this answer holds until the commit.
                existing = (
                    {iid for iid, _changed in returned}
                    if sql.postgres
                    else {row[0] for row in sql.by_ids(cursor, sql.select_ids, ok_ids)}
                )
                changed_ids &= existing
                snapshot_rows = [row for row in snapshot_rows if row[0] in existing]
            changed = [(iid, data) for iid, data, *_ in crawled if iid in changed_ids]
            value_rows = [
                row for iid, data in changed for row in display_tuples(iid, data, registry)
            ]
            changed_list = [iid for iid, _data in changed]
            stale, value_rows = _changed_values(sql, cursor, changed_list, value_rows)
            if stale:
                cursor.executemany(sql.delete_field, stale)
            value_rows.sort(key=itemgetter(1))  # in field order the index pages stay hot
            if value_rows and sql.postgres:
                with cursor.copy(sql.copy_fields) as copy:  # far cheaper than row INSERTs
                    for row in value_rows:
                        copy.write_row(row)
            elif value_rows:
                cursor.executemany(sql.insert_fields, value_rows)
            if snapshot_rows:
                sql.write_snapshots(cursor, snapshot_rows)
    finally:
        cursor.close()
    if results and sql.postgres:
        # cached statistics are stale from this commit on; last, so that the meta row stays
        # locked briefly while other workers store their batches
        touch_data_version(conn)
    if job_id is not None and results:
        counter = (
            sa.update(jobs).where(jobs.c.id == job_id)
            if chunk is None
            else sa.update(chunks).where(
                chunks.c.job_id == job_id,
                chunks.c.first_id == chunk.first_id,
                chunks.c.delivery == chunk.delivery,  # a later delivery took the chunk over
            )
        )
        table = counter.table
        conn.execute(
            counter.values(
                done=table.c.done + len(results),
                ok=table.c.ok + outcome.ok,
                failed=table.c.failed + outcome.failed,
            )
        )
    return outcome
