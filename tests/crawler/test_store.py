"""The crawl store on its own: batches of `FetchResult` written with `store_results`.

No HTTP and no crawl: each test builds the results a fetcher would hand over and stores
them in a transaction of its own, on SQLite and on PostgreSQL (the ``db_url`` fixture).
What a whole crawl adds (the writer, its process, its per-instance retry) is tested in
``test_run.py``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from cephalopod.crawler import store_sql
from cephalopod.crawler.models import ChunkDelivery, CrawlJob, CrawlJobChunk
from cephalopod.crawler.results import FetchResult
from cephalopod.crawler.store import MAX_ERROR_CHARS, BatchOutcome, store_results
from cephalopod.db import Meta, db, utcnow
from cephalopod.geo.locate import GeoLocator
from cephalopod.instances.models import Instance, InstanceField, Snapshot
from cephalopod.stats.cache import DATA_VERSION
from cephalopod.stats.fields import FieldRegistry, parse_field_settings
from tests.geo.mmdb import LOOPBACK_RECORDS, build_test_mmdb

#: "cores" summed, "secret" hidden (never stored), anything else shown as it is
REGISTRY = parse_field_settings({"cores": {"aggregation": "sum"}, "secret": None})


def ok(instance: Any, data: dict[str, Any], at: datetime, ip: str | None = "127.0.0.1") -> Any:
    return FetchResult(instance.id, True, data, None, ip, at, 0.1)


def failed(instance: Any, error: str | None, at: datetime, ip: str | None = None) -> Any:
    return FetchResult(instance.id, False, None, error, ip, at, 0.1)


def store(
    app: Flask,
    results: Sequence[FetchResult],
    registry: FieldRegistry = REGISTRY,
    **kwargs: Any,
) -> BatchOutcome:
    """Store one batch in one transaction, as the writer does."""
    with app.app_context(), db.engine.begin() as conn:
        return store_results(conn, results, registry, **kwargs)


def rows(app: Flask) -> dict[int, Instance]:
    with app.app_context():
        found = {i.id: i for i in db.session.scalars(sa.select(Instance))}
        db.session.expunge_all()
        return found


def values(app: Flask) -> dict[tuple[int, str], tuple[str | None, float | None]]:
    with app.app_context():
        query = sa.select(
            InstanceField.instance_id,
            InstanceField.field,
            InstanceField.value_text,
            InstanceField.value_num,
        )
        return {(iid, name): (text, num) for iid, name, text, num in db.session.execute(query)}


def snapshots(app: Flask) -> list[tuple[int, Any, dict[str, Any]]]:
    with app.app_context():
        query = sa.select(Snapshot.instance_id, Snapshot.day, Snapshot.data)
        return sorted(tuple(row) for row in db.session.execute(query))  # type: ignore[misc]


def test_a_batch_stores_health_data_display_values_and_snapshots(
    app: Flask, make_instance: Callable[..., Any]
) -> None:
    first, second, broken, untouched = (make_instance() for _ in range(4))
    at = utcnow()
    outcome = store(
        app,
        [
            ok(first, {"version": "3.3", "cores": [1, 2], "secret": "s3cr3t"}, at),
            ok(second, {"version": "3.2", "debug": False}, at, ip="127.0.0.9"),
            failed(broken, "HTTP 404 from /system-info", at),
        ],
    )

    assert (outcome.ok, outcome.failed) == (2, 1)
    assert outcome.errors == {"HTTP 404 from /system-info": 1}
    found = rows(app)
    one, two, bad = found[first.id], found[second.id], found[broken.id]
    assert one.crawled_data == {"version": "3.3", "cores": [1, 2]}  # the hidden field: never
    assert two.crawled_data == {"version": "3.2", "debug": False}
    for row in (one, two):
        assert (row.crawl_status, row.crawl_error, row.consecutive_failures) == ("ok", None, 0)
        assert row.last_crawl_at == row.last_success_at == row.data_changed_at == at
    assert (one.ip, two.ip) == ("127.0.0.1", "127.0.0.9")
    assert (bad.crawl_status, bad.crawl_error, bad.consecutive_failures) == (
        "error",
        "HTTP 404 from /system-info",
        1,
    )
    assert (bad.crawled_data, bad.last_success_at, bad.last_crawl_at) == (None, None, at)
    assert found[untouched.id].crawl_status == "never"
    assert found[untouched.id].last_crawl_at is None
    assert values(app) == {
        (first.id, "version"): ('"3.3"', None),
        (first.id, "cores"): ("3", 3.0),  # summed
        (second.id, "version"): ('"3.2"', None),
        (second.id, "debug"): ("false", None),
    }
    assert snapshots(app) == sorted(
        [
            (first.id, at.date(), {"version": "3.3", "cores": [1, 2]}),
            (second.id, at.date(), {"version": "3.2", "debug": False}),
        ]
    )


def test_a_failed_result_keeps_the_previous_data(
    app: Flask, make_instance: Callable[..., Any]
) -> None:
    inst = make_instance()
    start = utcnow()
    data = {"version": "3.3", "cores": [4]}
    store(app, [ok(inst, data, start, ip="127.0.0.5")])
    kept_values, kept_snapshots = values(app), snapshots(app)

    later = [start + timedelta(minutes=m) for m in (1, 2, 3)]
    store(app, [failed(inst, "timeout after 15 s", later[0])])
    store(app, [failed(inst, "x" * (MAX_ERROR_CHARS + 100), later[1])])  # cut to the column
    row = rows(app)[inst.id]
    assert row.crawled_data == data
    assert (row.crawl_status, row.consecutive_failures) == ("error", 2)
    assert row.crawl_error == "x" * MAX_ERROR_CHARS
    assert (row.last_success_at, row.last_crawl_at, row.data_changed_at) == (
        start,
        later[1],
        start,
    )
    assert row.ip == "127.0.0.5"  # a failure without an address keeps the known one
    assert values(app) == kept_values
    assert snapshots(app) == kept_snapshots

    outcome = store(app, [failed(inst, None, later[2])])
    assert outcome.errors == {"unknown error": 1}
    assert rows(app)[inst.id].crawl_error == "unknown error"

    store(app, [ok(inst, data, later[2] + timedelta(minutes=1))])  # a success resets it
    row = rows(app)[inst.id]
    assert (row.crawl_status, row.crawl_error, row.consecutive_failures) == ("ok", None, 0)
    assert row.data_changed_at == start  # the same data as before


def test_streaks_and_the_flip_to_failing_told_once(
    app: Flask, make_instance: Callable[..., Any]
) -> None:
    """A first failure after at least N successes in a row is reported, once per flip."""
    steady, flaky, never = make_instance(), make_instance(), make_instance()
    at = iter(utcnow() + timedelta(minutes=m) for m in range(100))

    def crawl(*failing: Any, watch: int | None = 3) -> list[int]:
        results = [
            failed(i, "HTTP 500", next(at)) if i in failing else ok(i, {"v": 1}, next(at))
            for i in (steady, flaky, never)
        ]
        return store(app, results, failing_after=watch).started_failing

    def streaks() -> list[tuple[int, int]]:
        found = rows(app)
        return [(found[i.id].success_streak, found[i.id].consecutive_failures) for i in
                (steady, flaky, never)]  # fmt: skip

    assert crawl(never) == []  # never ran successfully: nothing to tell
    assert crawl(never) == []
    assert crawl(flaky, never) == []  # 2 successes are fewer than 3
    assert streaks() == [(3, 0), (2, 1), (0, 3)]
    assert [crawl(never) for _ in range(3)] == [[], [], []]
    assert streaks() == [(6, 0), (3, 0), (0, 6)]
    assert crawl(flaky, never) == [flaky.id]  # the flip, told
    assert crawl(flaky, never) == []  # still failing: told already
    assert streaks() == [(8, 0), (3, 2), (0, 8)]  # a failure leaves the streak
    assert crawl(never) == []  # recovered: a new streak starts
    assert streaks() == [(9, 0), (1, 0), (0, 9)]
    assert crawl(flaky, never) == []  # 1 success since: not told
    assert [crawl(never) for _ in range(3)] == [[], [], []]
    assert sorted(crawl(steady, flaky, never)) == [steady.id, flaky.id]  # both in one batch
    assert [crawl(never) for _ in range(3)] == [[], [], []]
    assert streaks() == [(3, 0), (3, 0), (0, 17)]
    assert crawl(flaky, never, watch=None) == []  # not looked for: not told (nor later)
    assert crawl(flaky, never) == []
    assert streaks() == [(5, 0), (3, 2), (0, 19)]


def test_every_stored_batch_replaces_the_data_version(
    app: Flask, make_instance: Callable[..., Any]
) -> None:
    inst = make_instance()

    def version() -> str | None:
        with app.app_context():
            return db.session.scalar(sa.select(Meta.value).where(Meta.key == DATA_VERSION))

    before = version()
    assert store(app, []) == BatchOutcome()
    assert version() == before  # an empty batch changes nothing
    store(app, [failed(inst, "HTTP 500", utcnow())])
    after_failure = version()
    assert after_failure not in (None, before)  # health counts too (the statistics show it)
    store(app, [ok(inst, {"v": 1}, utcnow())])
    assert version() not in (None, after_failure)


def test_a_batch_counts_in_its_job_or_in_its_chunks_delivery(
    app: Flask, make_instance: Callable[..., Any]
) -> None:
    good, bad = make_instance(), make_instance()
    job_id = str(uuid.uuid4())
    with app.app_context():
        db.session.add(CrawlJob(id=job_id, state="running", total=2))
        db.session.add(CrawlJobChunk(job_id=job_id, first_id=good.id, delivery="latest"))
        db.session.commit()
    batch = [ok(good, {"v": 1}, utcnow()), failed(bad, "HTTP 500", utcnow())]

    store(app, batch, job_id=job_id)
    store(app, batch, job_id=job_id, chunk=ChunkDelivery(good.id, "latest"))
    # an earlier delivery of the chunk, still running after the chunk was delivered again
    store(app, batch, job_id=job_id, chunk=ChunkDelivery(good.id, "given-up"))
    store(app, [], job_id=job_id)

    with app.app_context():
        job = db.session.get(CrawlJob, job_id)
        chunk = db.session.get(CrawlJobChunk, (job_id, good.id))
        assert (job.done, job.ok, job.failed) == (2, 1, 1)
        assert (chunk.done, chunk.ok, chunk.failed) == (2, 1, 1)


def test_every_attempt_is_located_and_without_data_locations_are_kept(
    app: Flask, make_instance: Callable[..., Any], tmp_path: Path
) -> None:
    locator = GeoLocator([build_test_mmdb(tmp_path / "geo.mmdb", LOOPBACK_RECORDS)])
    berlin, france, nowhere = make_instance(), make_instance(), make_instance()
    known = make_instance(country_code="CH", country_name="Switzerland")
    at = utcnow()
    store(
        app,
        [
            ok(berlin, {"v": 1}, at, ip="127.0.0.2"),
            failed(france, "HTTP 500", at, ip="127.0.0.3"),  # a failure is located too
            ok(nowhere, {"v": 1}, at, ip="127.0.0.4"),  # unknown to the data: unknown
        ],
        locator=locator,
    )
    # no geolocation data: the location stays as it was
    store(app, [ok(known, {"v": 1}, at, ip="127.0.0.2")], locator=GeoLocator([]))
    found = rows(app)
    b, f, n, k = (found[i.id] for i in (berlin, france, nowhere, known))
    assert (b.country_code, b.country_name, b.city) == ("DE", "Germany", "Berlin")
    assert (b.latitude, b.longitude) == pytest.approx((52.52, 13.405))
    assert (f.ip, f.country_code, f.city, f.crawl_status) == ("127.0.0.3", "FR", None, "error")
    assert f.latitude is not None  # the country's centre
    assert (n.ip, n.country_code, n.country_name, n.latitude) == ("127.0.0.4", None, None, None)
    assert (k.ip, k.country_code, k.country_name) == ("127.0.0.2", "CH", "Switzerland")


def test_a_nul_is_refused_with_its_batch_on_postgresql_and_alone_per_instance(
    app: Flask, make_instance: Callable[..., Any]
) -> None:
    made = [make_instance() for _ in range(3)]
    at = utcnow()
    data = [{"v": "1"}, {"v": "x\x00y"}, {"v": "3"}]  # no PostgreSQL text holds a NUL
    batch = [ok(inst, d, at) for inst, d in zip(made, data, strict=True)]
    with app.app_context():
        postgres = db.engine.dialect.name == "postgresql"
        refused = (sa.exc.DataError, db.engine.dialect.loaded_dbapi.DataError)
    if not postgres:  # SQLite keeps it, and gives it back
        assert store(app, batch).ok == 3
        assert rows(app)[made[1].id].crawled_data == data[1]
        assert values(app)[made[1].id, "v"] == ('"x\\u0000y"', None)
        return
    with pytest.raises(refused):
        store(app, batch)
    assert {row.crawl_status for row in rows(app).values()} == {"never"}  # the batch: none
    assert values(app) == {}
    assert snapshots(app) == []
    # stored one by one (what the writer then does), only the instance with the NUL fails
    for result in batch:
        if result.key == made[1].id:
            with pytest.raises(refused):
                store(app, [result])
        else:
            assert store(app, [result]).ok == 1
    found = rows(app)
    assert [found[inst.id].crawl_status for inst in made] == ["ok", "never", "ok"]
    assert sorted(iid for iid, _day, _data in snapshots(app)) == [made[0].id, made[2].id]


def test_an_instance_deleted_during_its_crawl_is_skipped(
    make_app: Callable[..., Flask], make_instance: Callable[..., Any]
) -> None:
    app = make_app()
    kept, gone = make_instance(), make_instance()
    with app.app_context():
        db.session.execute(sa.delete(Instance).where(Instance.id == gone.id))
        db.session.commit()
        results = [
            FetchResult(i.id, True, {"v": "1"}, None, "127.0.0.1", utcnow(), 0.1)
            for i in (kept, gone)
        ]
        with db.engine.begin() as conn:
            outcome = store_results(conn, results, parse_field_settings({}))
        assert outcome.ok == 2
        assert db.session.scalars(sa.select(Snapshot.instance_id)).all() == [kept.id]
        assert db.session.scalars(sa.select(InstanceField.instance_id)).all() == [kept.id]


def test_snapshots_keep_the_latest_crawl_of_each_day(
    make_app: Callable[..., Flask], make_instance: Callable[..., Any]
) -> None:
    app = make_app()
    inst, other = make_instance(), make_instance()
    registry = parse_field_settings({"hidden": None})
    today = utcnow()
    yesterday = today - timedelta(days=1)

    def store(*crawls: tuple[Any, dict[str, Any], datetime]) -> None:
        results = [FetchResult(i.id, True, data, None, None, at, 0.1) for i, data, at in crawls]
        with app.app_context(), db.engine.begin() as conn:
            store_results(conn, results, registry)

    store((inst, {"v": 1}, yesterday), (other, {"v": 9}, today))
    store((inst, {"v": 2, "hidden": "x"}, today))
    store((inst, {"v": 3, "hidden": "x"}, today))  # the latest of the day wins
    with app.app_context():
        kept = db.session.execute(
            sa.select(Snapshot.instance_id, Snapshot.day, Snapshot.data)
        ).all()
        assert sorted(kept) == sorted(
            [
                (inst.id, yesterday.date(), {"v": 1}),
                (other.id, today.date(), {"v": 9}),
                (inst.id, today.date(), {"v": 3}),  # a hidden field is not kept either
            ]
        )
        assert db.session.get(Instance, inst.id).crawled_data == {"v": 3}


def test_the_store_reads_only_the_batch_rows_by_index(
    app: Flask, make_instance: Callable[..., Any]
) -> None:
    """No statement of a batch scans a whole table, whatever the planner's statistics say.

    On a few rows (as on tables a bulk load left without statistics) PostgreSQL prefers
    sequential scans and hash joins, which make every batch cost the size of the tables.
    """
    ids = [make_instance().id for _ in range(3)]
    with app.app_context(), db.engine.begin() as conn:
        sql = store_sql.dialect_sql(conn)
        cursor = conn.connection.driver_connection.cursor()
        if sql.postgres:
            conn.exec_driver_sql(sql.transaction_settings)
            rows = [{"id": i, "data": {}, "at": "2026-01-01T00:00:00+00:00"} for i in ids]
            failures = [{"id": i, "error": "x", "at": "2026-01-01T00:00:00+00:00"} for i in ids]
            statements = [
                (sql.update[True, False], (json.dumps(rows),)),
                (sql.update_watching_flips[False], (json.dumps(failures), 3)),
                (sql.select_values, (ids,)),
                (sql.select_ids, (ids,)),
                (sql.upsert_snapshot, ("2026-01-01", ids)),
            ]
            explain, whole_table = "EXPLAIN ", ("Seq Scan", "Hash Join", "Merge Join")
        else:
            marks = ",".join("?" * len(ids))
            statements = [
                (sql.update[True, False], ("{}", "t", "t", None, 0.1, None, ids[0])),
                (sql.select_values.format(marks), ids),
                (sql.select_data.format(marks), ids),
                (sql.select_ids.format(marks), ids),
                (sql.select_flipping.format(marks), [3, *ids]),
            ]
            explain, whole_table = "EXPLAIN QUERY PLAN ", ("SCAN instance", "SCAN snapshots")
        for statement, params in statements:
            plan = "\n".join(str(row) for row in cursor.execute(explain + statement, params))
            assert not any(scan in plan for scan in whole_table), (statement, plan)
            assert "ndex" in plan or "PRIMARY KEY" in plan, (statement, plan)  # an index


def test_a_recrawl_rewrites_only_changed_display_values(
    make_app: Callable[..., Flask], make_instance: Callable[..., Any]
) -> None:
    app = make_app()
    inst = make_instance()
    registry = parse_field_settings({"cores": {"aggregation": "sum"}})

    def store(data: dict[str, Any]) -> dict[str, tuple[str | None, float | None]]:
        result = FetchResult(inst.id, True, data, None, "127.0.0.1", utcnow(), 0.1)
        with app.app_context():
            with db.engine.begin() as conn:
                store_results(conn, [result], registry)
            rows = db.session.execute(
                sa.select(InstanceField.field, InstanceField.value_text, InstanceField.value_num)
            ).all()
        return {field: (text, num) for field, text, num in rows}

    assert store({"a": 1, "b": "x", "cores": [1, 2]}) == {
        "a": ("1", 1.0),
        "b": ('"x"', None),
        "cores": ("3", 3.0),
    }
    assert store({"a": 2, "c": True, "cores": [1, 2], "d": [1]}) == {
        "a": ("2", 2.0),
        "c": ("true", None),
        "cores": ("3", 3.0),
    }
    assert store({"a": 2, "c": True, "cores": [1, 2]}) == {
        "a": ("2", 2.0),
        "c": ("true", None),
        "cores": ("3", 3.0),
    }


def test_the_same_crawled_data_skips_the_display_values(
    make_app: Callable[..., Flask], make_instance: Callable[..., Any]
) -> None:
    app = make_app()
    inst = make_instance()
    registry = parse_field_settings({})
    start = utcnow()

    def store(data: dict[str, Any], at: datetime) -> tuple[str | None, datetime | None]:
        result = FetchResult(inst.id, True, data, None, "127.0.0.1", at, 0.1)
        with app.app_context():
            with db.engine.begin() as conn:
                store_results(conn, [result], registry)
            changed_at = db.session.get(Instance, inst.id).data_changed_at
            db.session.remove()
            return db.session.scalar(sa.select(InstanceField.value_text)), changed_at

    first, second, third = (start + timedelta(minutes=m) for m in (1, 2, 3))
    assert store({"a": 1, "b": [1, 2]}, first) == ("1", first)
    with app.app_context():  # a marker only a rewrite of the display values would remove
        db.session.execute(
            sa.update(InstanceField).where(InstanceField.field == "a").values(value_text="marker")
        )
        db.session.commit()
    # the same data (SQLite compares the stored JSON text, PostgreSQL the jsonb value):
    # values left alone, the time of the change kept
    assert store({"a": 1, "b": [1, 2]}, second) == ("marker", first)
    assert store({"a": 2, "b": [1, 2]}, third) == ("2", third)


def test_queries_by_many_ids_stay_within_the_bound_variable_limit(
    app: Flask, make_instance: Callable[..., Any]
) -> None:
    made = [make_instance().id for _ in range(3)]
    ids = [*range(10_000, 12_500), *made]  # 2,503 ids: three groups of placeholders on SQLite
    with app.app_context(), db.engine.connect() as conn:
        sql = store_sql.dialect_sql(conn)
        cursor = conn.connection.driver_connection.cursor()
        rows = sql.by_ids(cursor, sql.select_ids, ids)
        if not sql.postgres:  # SQLite's read of the flips: a parameter before the ids
            flipping = sql.by_ids(cursor, sql.select_flipping, ids, (0,))
            assert sorted(row[0] for row in flipping) == sorted(made)
    assert sorted(row[0] for row in rows) == sorted(made)


def test_json_rows_splice_the_raw_column_into_valid_json() -> None:
    rows = [
        ('{"a":[1,"x"],"é":null}', "2026-11-28T00:00:00+00:00", None, 'quote " back\\ \n', 7),
        ("{}", "t", "127.0.0.1", "", 8),
    ]
    names = ("data", "at", "ip", "city", "id")
    decoded = json.loads(store_sql._json_rows(names, rows, raw=0))
    assert decoded == [
        {
            "data": {"a": [1, "x"], "é": None},
            "at": rows[0][1],
            "ip": None,
            "city": rows[0][3],
            "id": 7,
        },
        {"data": {}, "at": "t", "ip": "127.0.0.1", "city": "", "id": 8},
    ]
    plain = json.loads(store_sql._json_rows(("error", "id"), [("HTTP 500", 1)], raw=None))
    assert plain == [{"error": "HTTP 500", "id": 1}]
