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

import json
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from operator import itemgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cephalopod.crawler.fetch import FetchResult
from cephalopod.crawler.models import ChunkDelivery, CrawlJob, CrawlJobChunk
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

_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_SQLITE_MAX_VARIABLES = 999  # bound variables per statement in every SQLite version
_LOCATION_COLUMNS = ("country_code", "country_name", "city", "latitude", "longitude")


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

    text = _ENCODE(swap(data))
    for n, spelling in enumerate(spellings):
        text = text.replace(f'"\\u0000{n}"', spelling, 1)
    return text


@dataclass
class BatchOutcome:
    """What a stored batch counted: for progress lines and the final summary."""

    ok: int = 0
    failed: int = 0
    errors: Counter[str] = field(default_factory=Counter)


class _Sql:
    """The statements of one dialect, with its placeholder style and value encodings."""

    # S608 below: the SQL is built from constant names and placeholders; values are bound.
    def __init__(self, dialect: str) -> None:
        self.postgres = dialect == "postgresql"
        mark = "%s" if self.postgres else "?"
        # The health (and data) updates, by (ok, located). PostgreSQL: one statement per batch,
        # its rows in one JSON parameter; statement by statement, each row cost a round of
        # parsing, planning and executor start-up. SQLite: one row per execution.
        self.update = {
            (ok, locate): (
                (
                    "UPDATE instances AS i SET "  # noqa: S608
                    + (
                        "crawled_data = v.data, last_crawl_at = v.at, last_success_at = v.at, "
                        "crawl_status = 'ok', crawl_error = NULL, consecutive_failures = 0, "
                        # SET sees the row as locked (the latest version): the flag returned
                        # below holds even when another crawl stored this instance meanwhile
                        "data_changed_at = CASE WHEN i.crawled_data IS DISTINCT FROM v.data "
                        "THEN v.at ELSE i.data_changed_at END"
                        if ok
                        else "crawl_error = v.error, last_crawl_at = v.at, "
                        "crawl_status = 'error', consecutive_failures = i.consecutive_failures + 1"
                    )
                    + ", ip = COALESCE(v.ip, i.ip)"
                    + "".join(f", {col} = v.{col}" for col in _LOCATION_COLUMNS if locate)
                    + " FROM jsonb_to_recordset(CAST(%s AS jsonb)) AS v (id bigint, data jsonb, "
                    "error text, at timestamptz, ip text, country_code text, country_name text, "
                    "city text, latitude float8, longitude float8) WHERE i.id = v.id"
                    + (" RETURNING i.id, i.data_changed_at IS NOT DISTINCT FROM v.at" if ok else "")
                )
                if self.postgres
                else (
                    "UPDATE instances SET "  # noqa: S608
                    + (
                        "crawled_data = ?, last_crawl_at = ?, last_success_at = ?, "
                        "crawl_status = 'ok', crawl_error = NULL, consecutive_failures = 0, "
                        "data_changed_at = COALESCE(?, data_changed_at)"
                        if ok
                        else "crawl_error = ?, last_crawl_at = ?, crawl_status = 'error', "
                        "consecutive_failures = consecutive_failures + 1"
                    )
                    + ", ip = COALESCE(?, ip)"
                    + "".join(f", {col} = ?" for col in _LOCATION_COLUMNS if locate)
                    + " WHERE id = ?"
                )
            )
            for ok in (True, False)
            for locate in (True, False)
        }
        self.insert_fields = (
            "INSERT INTO instance_fields (instance_id, field, value_text, value_num) "  # noqa: S608
            f"VALUES ({mark}, {mark}, {mark}, {mark})"
        )
        self.delete_field = (
            f"DELETE FROM instance_fields WHERE instance_id = {mark} AND field = {mark}"  # noqa: S608
        )
        self.copy_fields = (
            "COPY instance_fields (instance_id, field, value_text, value_num) FROM STDIN"
        )
        columns = "instance_id, field, value_text, value_num"
        self.select_values = (
            f"SELECT {columns} FROM instance_fields WHERE instance_id = ANY(%s)"  # noqa: S608
            if self.postgres
            else f"SELECT {columns} FROM instance_fields WHERE instance_id IN ({{}})"  # noqa: S608
        )
        # SQLite keeps crawled_data as the very JSON text the crawler wrote (PostgreSQL as jsonb)
        self.select_data = "SELECT id, crawled_data FROM instances WHERE id IN ({})"
        self.select_ids = (
            "SELECT id FROM instances WHERE id = ANY(%s)"
            if self.postgres
            else "SELECT id FROM instances WHERE id IN ({})"
        )
        # the day's snapshots: on PostgreSQL copied from the rows just updated (no second
        # parse of the JSON), one statement per day
        self.upsert_snapshot = (
            "INSERT INTO snapshots (instance_id, day, data) "  # noqa: S608
            + (
                "SELECT id, CAST(%s AS date), crawled_data FROM instances WHERE id = ANY(%s) "
                if self.postgres
                else "VALUES (?, ?, ?) "
            )
            + "ON CONFLICT (instance_id, day) DO UPDATE SET data = excluded.data "
            # a recrawl the same day mostly finds the same data: then no new row version
            + (
                "WHERE snapshots.data IS DISTINCT FROM excluded.data"
                if self.postgres
                else "WHERE snapshots.data IS NOT excluded.data"
            )
        )

        # For the rest of the transaction (PostgreSQL). Crawl results can be crawled again:
        # not waiting for the WAL flush at each commit is a fair trade (a crash loses at most
        # the last batches, never consistency). Every statement here finds its rows by the
        # batch's ids, so index look-ups are always the right plan; left to statistics, the
        # planner reads and hashes whole tables instead, each batch, whenever the statistics
        # are missing (tables just filled) or say that a join input is tiny (unnest(),
        # jsonb_to_recordset() are estimated at 10 and 100 rows).
        self.transaction_settings = (
            "SELECT set_config('synchronous_commit', 'off', true), "
            + ", ".join(
                f"set_config('{name}', 'off', true)"
                for name in ("enable_seqscan", "enable_hashjoin", "enable_mergejoin")
            )
        )

    def by_ids(self, cursor: Any, template: str, ids: list[int]) -> list[tuple[Any, ...]]:
        """Run a ``WHERE ... IN`` query for many ids and return all rows.

        PostgreSQL takes them as one array parameter; SQLite in groups of placeholders
        within its limit on bound variables.
        """
        if self.postgres:
            cursor.execute(template, (ids,))
            return cursor.fetchall()
        rows = []
        for start in range(0, len(ids), _SQLITE_MAX_VARIABLES):
            part = ids[start : start + _SQLITE_MAX_VARIABLES]
            rows += cursor.execute(template.format(",".join("?" * len(part))), part).fetchall()
        return rows

    def timestamp(self, value: datetime) -> str:
        """Encode a timestamp as SQLite's UTCDateTime column stores it, or in ISO 8601."""
        value = value.astimezone(UTC)
        return value.isoformat() if self.postgres else value.strftime("%Y-%m-%d %H:%M:%S.%f")

    def day(self, value: date) -> str:
        """Encode a date as the Date column stores it (and PostgreSQL reads it)."""
        return value.isoformat()

    def write_updates(
        self, cursor: Any, key: tuple[bool, bool], rows: list[tuple[Any, ...]]
    ) -> int | list[tuple[int, bool]]:
        """Apply the health (and data) updates of one kind.

        Returns the number of rows updated, except for PostgreSQL's successes: (id, whether
        the data changed) of each row updated.
        """
        if not self.postgres:
            cursor.executemany(self.update[key], rows)
            return cursor.rowcount
        ok, locate = key
        names = ["data" if ok else "error", "at", *(["at"] if ok else []), "ip"]
        names += [*(_LOCATION_COLUMNS if locate else ()), "id"]
        cursor.execute(self.update[key], (_json_rows(names, rows, raw=0 if ok else None),))
        return cursor.fetchall() if ok else cursor.rowcount

    def write_snapshots(self, cursor: Any, rows: list[tuple[Any, ...]]) -> None:
        """Upsert the day's snapshots ((instance id, day, JSON text) rows).

        On PostgreSQL the data comes from the instance rows, which this transaction has just
        updated with that very JSON and holds locked.
        """
        if not self.postgres:
            cursor.executemany(self.upsert_snapshot, rows)
            return
        by_day: dict[str, set[int]] = {}  # an upsert may meet each conflict key only once
        for instance_id, day, _text in rows:
            by_day.setdefault(day, set()).add(instance_id)
        for day, ids in by_day.items():
            cursor.execute(self.upsert_snapshot, (day, sorted(ids)))


def _json_rows(names: Sequence[str], rows: list[tuple[Any, ...]], raw: int | None) -> str:
    """Encode rows as a JSON array of objects; column ``raw`` already holds JSON text."""
    parts = []
    for row in rows:
        values = dict(zip(names, row, strict=True))
        if raw is None:
            parts.append(_ENCODE(values))
        else:  # splice the JSON text in rather than decode and encode it again
            text = values.pop(names[raw])
            parts.append(f'{_ENCODE(values)[:-1]},"{names[raw]}":{text}}}')
    return f"[{','.join(parts)}]"


_SQL: dict[str, _Sql] = {}


def _sql(conn: Connection) -> _Sql:
    name = conn.dialect.name
    if name not in _SQL:
        _SQL[name] = _Sql(name)
    return _SQL[name]


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
    sql: _Sql, cursor: Any, ids: list[int], rows: list[tuple[Any, ...]]
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
    results: Sequence[FetchResult],
    registry: FieldRegistry,
    locator: GeoLocator | None = None,
    job_id: str | None = None,
    chunk: ChunkDelivery | None = None,
) -> BatchOutcome:
    """Write a batch of results (keys are instance ids) in the caller's transaction.

    The batch is counted in job ``job_id``, or in its chunk ``chunk`` (see `CrawlJobChunk`).
    On PostgreSQL this sets `_Sql.transaction_settings` for the rest of that transaction.
    """
    sql = _sql(conn)
    outcome = BatchOutcome()
    updates: dict[tuple[bool, bool], list[tuple[Any, ...]]] = {k: [] for k in sql.update}
    ok_ids: list[int] = []
    crawled: list[tuple[int, dict[str, Any], str, str, bool, tuple[Any, ...]]] = []
    snapshot_rows: list[tuple[Any, ...]] = []
    for result in results:
        instance_id = int(result.key)  # type: ignore[call-overload]
        at = sql.timestamp(result.started_at)
        ip = result.ip[:45] if result.ip else None
        location = _location(ip, locator)
        tail = (ip, *(location or ()), instance_id)
        if result.ok and result.data is not None:
            data = registry.visible(result.data)
            text = _ENCODE(data)  # json.dumps with these options, minus an encoder per call
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
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
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
            if rows:
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
