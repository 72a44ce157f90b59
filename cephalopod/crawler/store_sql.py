"""The crawl store's SQL, per database: PostgreSQL (COPY, set-based UPDATE) and SQLite.

Statements are built once per dialect from constant names and placeholders; values are bound.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Protocol, Self

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from cephalopod.crawler.models import CrawlJob, CrawlJobChunk
from cephalopod.instances.models import Instance, InstanceField

ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
LOCATION_COLUMNS = ("country_code", "country_name", "city", "latitude", "longitude")
_SQLITE_MAX_VARIABLES = 999  # bound variables per statement in every SQLite version
jobs = CrawlJob.__table__
chunks = CrawlJobChunk.__table__
fields_table = InstanceField.__table__
instances = Instance.__table__

if TYPE_CHECKING:
    from psycopg import Copy


class Cursor(Protocol):
    """What the store uses of a driver's own cursor, sqlite3's or psycopg's (both give lists)."""

    @property
    def rowcount(self) -> int: ...
    def execute(self, query: str, params: Sequence[Any] = ..., /) -> Self: ...
    def executemany(self, query: str, params_seq: Iterable[Sequence[Any]], /) -> object: ...
    def fetchall(self) -> list[Any]: ...
    def copy(self, statement: str, /) -> AbstractContextManager[Copy]: ...  # psycopg only
    def close(self) -> None: ...


def driver_cursor(conn: Connection) -> Cursor:
    """A cursor of the driver itself: executemany, array parameters and COPY, unwrapped."""
    driver = conn.connection.driver_connection
    if driver is None:  # only a closed or invalidated connection has none
        raise sa.exc.ResourceClosedError("the connection has no driver connection")
    cursor: Cursor = driver.cursor()
    return cursor


class DialectSql:
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
                        "success_streak = CASE WHEN i.consecutive_failures = 0 "
                        "THEN i.success_streak + 1 ELSE 1 END, "
                        # SET sees the row as locked (the latest version): the flag returned
                        # below holds even when another crawl stored this instance meanwhile
                        "data_changed_at = CASE WHEN i.crawled_data IS DISTINCT FROM v.data "
                        "THEN v.at ELSE i.data_changed_at END"
                        if ok
                        else "crawl_error = v.error, last_crawl_at = v.at, "
                        "crawl_status = 'error', consecutive_failures = i.consecutive_failures + 1"
                    )
                    + ", last_crawl_seconds = v.seconds, ip = COALESCE(v.ip, i.ip)"
                    + "".join(f", {col} = v.{col}" for col in LOCATION_COLUMNS if locate)
                    + " FROM jsonb_to_recordset(CAST(%s AS jsonb)) AS v (id bigint, data jsonb, "
                    "error text, at timestamptz, seconds float8, ip text, country_code text, "
                    "country_name text, city text, latitude float8, longitude float8) "
                    "WHERE i.id = v.id"
                    + (" RETURNING i.id, i.data_changed_at IS NOT DISTINCT FROM v.at" if ok else "")
                )
                if self.postgres
                else (
                    "UPDATE instances SET "  # noqa: S608
                    + (
                        "crawled_data = ?, last_crawl_at = ?, last_success_at = ?, "
                        "crawl_status = 'ok', crawl_error = NULL, consecutive_failures = 0, "
                        "success_streak = CASE WHEN consecutive_failures = 0 "
                        "THEN success_streak + 1 ELSE 1 END, "
                        "data_changed_at = COALESCE(?, data_changed_at)"
                        if ok
                        else "crawl_error = ?, last_crawl_at = ?, crawl_status = 'error', "
                        "consecutive_failures = consecutive_failures + 1"
                    )
                    + ", last_crawl_seconds = ?, ip = COALESCE(?, ip)"
                    + "".join(f", {col} = ?" for col in LOCATION_COLUMNS if locate)
                    + " WHERE id = ?"
                )
            )
            for ok in (True, False)
            for locate in (True, False)
        }
        # The failures' updates that also tell which instances started failing after at least
        # a given number of successes in a row: this update made their consecutive_failures 1
        # (SET sees the latest row version, so a flip is reported once, whoever stores it).
        # PostgreSQL: the update's own RETURNING, filtered; SQLite: the rows read just before
        # (the write lock is held since `touch_data_version`).
        self.update_watching_flips = {
            locate: (
                f"WITH stored AS ({self.update[False, locate]} "  # noqa: S608
                "RETURNING i.id, i.consecutive_failures, i.success_streak) "
                "SELECT id FROM stored WHERE consecutive_failures = 1 AND success_streak >= %s"
            )
            for locate in (True, False)
        }
        self.select_flipping = (  # SQLite only
            "SELECT id FROM instances "
            "WHERE consecutive_failures = 0 AND success_streak >= ? AND id IN ({})"
        )
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

    def by_ids(
        self, cursor: Cursor, template: str, ids: list[int], before: Sequence[Any] = ()
    ) -> list[tuple[Any, ...]]:
        """Run a ``WHERE ... IN`` query for many ids and return all rows.

        PostgreSQL takes them as one array parameter; SQLite in groups of placeholders
        within its limit on bound variables. ``before``: the parameters ahead of the ids.
        """
        if self.postgres:
            cursor.execute(template, (*before, ids))
            return cursor.fetchall()
        rows = []
        size = _SQLITE_MAX_VARIABLES - len(before)
        for start in range(0, len(ids), size):
            part = ids[start : start + size]
            query = template.format(",".join("?" * len(part)))
            rows += cursor.execute(query, [*before, *part]).fetchall()
        return rows

    def timestamp(self, value: datetime) -> str:
        """Encode a timestamp as SQLite's UTCDateTime column stores it, or in ISO 8601."""
        value = value.astimezone(UTC)
        return value.isoformat() if self.postgres else value.strftime("%Y-%m-%d %H:%M:%S.%f")

    def day(self, value: date) -> str:
        """Encode a date as the Date column stores it (and PostgreSQL reads it)."""
        return value.isoformat()

    def write_updates(
        self, cursor: Cursor, key: tuple[bool, bool], rows: list[tuple[Any, ...]]
    ) -> int | list[tuple[int, bool]]:
        """Apply the health (and data) updates of one kind.

        Returns the number of rows updated, except for PostgreSQL's successes: (id, whether
        the data changed) of each row updated.
        """
        if not self.postgres:
            cursor.executemany(self.update[key], rows)
            return cursor.rowcount
        ok, _locate = key
        records = _json_rows(_update_names(*key), rows, raw=0 if ok else None)
        cursor.execute(self.update[key], (records,))
        return cursor.fetchall() if ok else cursor.rowcount

    def write_failures_watching_flips(
        self, cursor: Cursor, locate: bool, rows: list[tuple[Any, ...]], successes: int
    ) -> list[int]:
        """Apply failures' health updates; return the ids of the instances that started
        failing after at least ``successes`` successful crawls in a row."""
        if self.postgres:
            records = _json_rows(_update_names(False, locate), rows, raw=None)
            cursor.execute(self.update_watching_flips[locate], (records, successes))
            return [iid for (iid,) in cursor.fetchall()]
        ids = [row[-1] for row in rows]  # the id is the rows' last value
        flipping = [iid for (iid,) in self.by_ids(cursor, self.select_flipping, ids, (successes,))]
        cursor.executemany(self.update[False, locate], rows)
        return flipping

    def write_snapshots(self, cursor: Cursor, rows: list[tuple[Any, ...]]) -> None:
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


def _update_names(ok: bool, locate: bool) -> list[str]:
    """The names of a health update's values, in the order of its rows (PostgreSQL's JSON)."""
    names = ["data" if ok else "error", "at", *(["at"] if ok else []), "seconds", "ip"]
    return [*names, *(LOCATION_COLUMNS if locate else ()), "id"]


def _json_rows(names: Sequence[str], rows: list[tuple[Any, ...]], raw: int | None) -> str:
    """Encode rows as a JSON array of objects; column ``raw`` already holds JSON text."""
    parts = []
    for row in rows:
        values = dict(zip(names, row, strict=True))
        if raw is None:
            parts.append(ENCODE(values))
        else:  # splice the JSON text in rather than decode and encode it again
            text = values.pop(names[raw])
            parts.append(f'{ENCODE(values)[:-1]},"{names[raw]}":{text}}}')
    return f"[{','.join(parts)}]"


_SQL: dict[str, DialectSql] = {}


def dialect_sql(conn: Connection) -> DialectSql:
    name = conn.dialect.name
    if name not in _SQL:
        _SQL[name] = DialectSql(name)
    return _SQL[name]
