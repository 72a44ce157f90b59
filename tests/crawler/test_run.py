"""A whole crawl against a real local fleet, stored in a real database.

The store alone, without a crawl, is tested in test_store.py.
"""

from __future__ import annotations

import gc
import json
import threading
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from benchmarks.fleet import (
    ANSWERS,
    ENDPOINTS,
    FAILS,
    FIELD_SETTINGS,
    HANGS,
    FleetPlan,
    FleetProtocol,
    stats,
    system_info,
)
from cephalopod.crawler import run, store, writer
from cephalopod.crawler.results import FetchResult
from cephalopod.crawler.run import crawl, long_lived_objects_frozen
from cephalopod.crawler.store import store_results
from cephalopod.db import db, utcnow
from cephalopod.instances.models import Instance, InstanceField, Snapshot
from cephalopod.instances.operations import register_instance
from cephalopod.services import services
from cephalopod.stats.fields import parse_field_settings
from tests.crawler.servers import ServerLoop
from tests.databases import wait_for_lock_waits
from tests.geo.mmdb import LOOPBACK_RECORDS, build_test_mmdb


@pytest.fixture
def crawl_app(make_app: Callable[..., Flask]) -> Flask:
    return make_app(
        CRAWLING_ENDPOINTS=ENDPOINTS,
        CRAWLED_FIELDS_SETTINGS={**FIELD_SETTINGS, "users": None},
        CRAWLER_TOTAL_TIMEOUT=2.0,
        CRAWLER_BATCH_SIZE=3,
    )


def _register(app: Flask, make_instance: Callable[..., Any], url: str, **kw: Any) -> Any:
    return make_instance(url=url, **kw)


def test_crawl_stores_data_values_and_snapshots(
    crawl_app: Flask, make_instance: Callable[..., Any], fleet: str
) -> None:
    good = [make_instance(url=f"{fleet}/i/{n}") for n in range(7)]
    broken = make_instance(url=f"{fleet}/nothing-here")
    disabled = make_instance(url=f"{fleet}/i/99", enabled=False)

    summary = crawl(crawl_app)

    assert (summary.total, summary.ok, summary.failed) == (8, 7, 1)
    assert 0 < summary.cpu < 60
    assert summary.errors == {"HTTP 404 from /system-info": 1}
    with crawl_app.app_context():
        rows = {i.id: i for i in db.session.scalars(sa.select(Instance))}
        for n, inst in enumerate(good):
            row = rows[inst.id]
            expected = {**system_info(n), **stats(n)}
            del expected["users"]  # hidden by the settings: never stored
            assert row.crawled_data == expected
            assert row.crawl_status == "ok"
            assert row.consecutive_failures == 0
            assert row.last_success_at == row.last_crawl_at
            assert row.ip == "127.0.0.1"
        assert rows[broken.id].crawl_status == "error"
        assert rows[broken.id].crawl_error == "HTTP 404 from /system-info"
        assert rows[broken.id].consecutive_failures == 1
        assert rows[broken.id].crawled_data is None
        assert rows[disabled.id].crawl_status == "never"
        values = {
            (v.instance_id, v.field): (v.value_text, v.value_num)
            for v in db.session.scalars(sa.select(InstanceField))
        }
        first = good[1].id
        assert values[(first, "indico_version")] == ('"3.3.6"', None)
        assert values[(first, "contributions")] == ("11", 11.0)  # 1 + 3 + 7, aggregation sum
        assert values[(first, "debug")] == ("false", None)
        assert not any(field == "users" for _, field in values)
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Snapshot)) == 7


def test_failed_crawl_keeps_previous_data(
    crawl_app: Flask, make_instance: Callable[..., Any], fleet: str
) -> None:
    inst = make_instance(url=f"{fleet}/i/3")
    crawl(crawl_app)
    with crawl_app.app_context():
        before = db.session.get(Instance, inst.id).crawled_data
        db.session.execute(
            sa.update(Instance).where(Instance.id == inst.id).values(url=f"{fleet}/gone")
        )
        db.session.commit()
    summary = crawl(crawl_app)
    summary2 = crawl(crawl_app)
    assert summary.failed == summary2.failed == 1
    with crawl_app.app_context():
        row = db.session.get(Instance, inst.id)
        assert row.crawled_data == before
        assert row.crawl_status == "error"
        assert row.consecutive_failures == 2
        assert row.last_success_at < row.last_crawl_at
        fields = db.session.scalar(
            sa.select(sa.func.count())
            .select_from(InstanceField)
            .where(InstanceField.instance_id == inst.id)
        )
        assert fields == len(before)  # display values untouched by the failures
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Snapshot)) == 1


def test_crawl_by_ids_includes_disabled(
    crawl_app: Flask, make_instance: Callable[..., Any], fleet: str
) -> None:
    disabled = make_instance(url=f"{fleet}/i/5", enabled=False)
    other = make_instance(url=f"{fleet}/i/6")
    summary = crawl(crawl_app, [disabled.id])
    assert (summary.total, summary.ok) == (1, 1)
    with crawl_app.app_context():
        assert db.session.get(Instance, disabled.id).crawl_status == "ok"
        assert db.session.get(Instance, other.id).crawl_status == "never"


def test_every_attempt_locates_the_address_connected_to(
    make_app: Callable[..., Flask],
    make_instance: Callable[..., Any],
    make_fleet: Callable[[str], str],
    tmp_path: Path,
) -> None:
    geo = build_test_mmdb(tmp_path / "geo.mmdb", LOOPBACK_RECORDS)
    app = make_app(CRAWLING_ENDPOINTS=ENDPOINTS, GEOIP_DATABASE=str(geo))
    berlin = make_instance(url=f"{make_fleet('127.0.0.2')}/i/1")
    france = make_instance(url=f"{make_fleet('127.0.0.3')}/missing")  # fails, still located
    nowhere = make_instance(url=f"{make_fleet('127.0.0.4')}/i/2")
    summary = crawl(app)
    assert (summary.ok, summary.failed) == (2, 1)
    with app.app_context():
        rows = {i.id: i for i in db.session.scalars(sa.select(Instance))}
    b, f, n = rows[berlin.id], rows[france.id], rows[nowhere.id]
    assert (b.ip, b.country_code, b.country_name, b.city) == (
        "127.0.0.2",
        "DE",
        "Germany",
        "Berlin",
    )
    assert (b.latitude, b.longitude) == pytest.approx((52.52, 13.405))
    assert (f.crawl_status, f.country_code, f.country_name, f.city) == (
        "error",
        "FR",
        "France",
        None,
    )
    assert f.latitude is not None  # the country's centre
    assert (n.ip, n.country_code, n.latitude) == ("127.0.0.4", None, None)


def test_without_geolocation_data_known_locations_are_kept(
    make_app: Callable[..., Flask], make_instance: Callable[..., Any], fleet: str
) -> None:
    app = make_app(CRAWLING_ENDPOINTS=ENDPOINTS)  # no GEOIP_DATABASE, empty geoip folder
    inst = make_instance(url=f"{fleet}/i/1", country_code="CH", country_name="Switzerland")
    crawl(app, [inst.id])
    with app.app_context():
        row = db.session.get(Instance, inst.id)
    assert (row.ip, row.country_code, row.country_name) == ("127.0.0.1", "CH", "Switzerland")


def test_a_crawl_freezes_the_collector_only_while_it_runs(
    crawl_app: Flask, make_instance: Callable[..., Any], fleet: str
) -> None:
    make_instance(url=f"{fleet}/i/1")
    seen: list[int] = []

    def progress(_total: int, _outcome: Any) -> None:
        seen.append(gc.get_freeze_count())

    assert gc.get_freeze_count() == 0
    with long_lived_objects_frozen():
        crawl(crawl_app, progress=progress)  # nested: the outer block still holds it
        assert gc.get_freeze_count() > 0
    assert seen
    assert all(count > 0 for count in seen)
    assert gc.get_freeze_count() == 0


@pytest.mark.parametrize("writer_process", [True, False], ids=["writer-process", "writer-thread"])
def test_replies_parsed_by_the_writer_fail_their_instance_alone(
    make_app: Callable[..., Flask],
    make_instance: Callable[..., Any],
    base: str,
    writer_process: bool,
) -> None:
    # the one endpoint is "?": each instance's URL picks its own (mis)behaviour
    app = make_app(CRAWLING_ENDPOINTS=[{"url": "?", "headers": {}}], CRAWLER_BATCH_SIZE=2)
    paths = {
        "/ok": None,
        "/invalid": "invalid JSON from ?",
        "/list": "response is not a JSON object",
        "/empty": "invalid JSON from ?",
        "/bigint": "invalid JSON from ?",
        "/nan": "invalid JSON from ?",  # stored, it would make the admin API's JSON invalid
        "/data?a=x%00y": "JSON contains a NUL character",  # no PostgreSQL text can hold it
        "/surrogate": "JSON contains an unpaired surrogate",  # nor any UTF-8 text this
        "/rawsurrogate": "JSON contains an unpaired surrogate",
    }
    made = {path: make_instance(url=base + path) for path in paths}

    summary = crawl(app, writer_process=writer_process)

    assert (summary.ok, summary.failed) == (1, 8)
    with app.app_context():
        for path, error in paths.items():
            row = db.session.get(Instance, made[path].id)
            assert row.crawl_error == error, path
            assert row.crawl_status == ("ok" if error is None else "error")
            assert (row.crawled_data is None) == (error is not None)


@pytest.mark.parametrize("poison", ["nul", "surrogate"])
def test_a_result_the_database_refuses_fails_alone(
    crawl_app: Flask, make_instance: Callable[..., Any], fleet: str, poison: str
) -> None:
    made = [make_instance(url=f"{fleet}/i/{n}") for n in range(3)]
    # past the fetcher's checks by construction: what a database (or its driver) may still
    # refuse; no PostgreSQL text holds a NUL (SQLite's does), no UTF-8 text a lone surrogate
    bad = {"nul": "x\x00y", "surrogate": "x\ud800y"}[poison]
    data = [{"version": "1"}, {"version": bad}, {"version": "3"}]
    batch = [
        FetchResult(inst.id, True, d, None, "127.0.0.1", utcnow(), 0.1)
        for inst, d in zip(made, data, strict=True)
    ]
    config = services(crawl_app).settings.crawl
    with crawl_app.app_context():
        outcome = writer._store(db.engine, config, None, (None, None), batch)
        rows = [db.session.get(Instance, inst.id) for inst in made]
        refused = poison == "surrogate" or db.engine.dialect.name == "postgresql"
    assert [row.crawl_status for row in rows[::2]] == ["ok", "ok"]
    assert [row.crawled_data for row in rows[::2]] == [data[0], data[2]]
    if refused:
        assert (outcome.ok, outcome.failed) == (2, 1)
        assert outcome.errors == {writer.UNSTORABLE: 1}
        assert (rows[1].crawl_status, rows[1].crawl_error) == ("error", writer.UNSTORABLE)
        assert rows[1].crawled_data is None
    else:
        assert (outcome.ok, outcome.failed) == (3, 0)
        assert rows[1].crawled_data == data[1]
    # alone in its batch (a crawl of one instance), it fails the same way, without raising
    alone = FetchResult(made[1].id, True, data[1], None, "127.0.0.1", utcnow(), 0.1)
    with crawl_app.app_context():
        outcome = writer._store(db.engine, config, None, (None, None), [alone])
    assert (outcome.ok, outcome.failed) == ((0, 1) if refused else (1, 0))


def test_the_last_results_are_stored_as_they_come(
    make_app: Callable[..., Flask], make_instance: Callable[..., Any], fleet: str
) -> None:
    """Once every instance has been started, batches shrink: the last replies' write is small
    instead of a whole batch waiting for the last reply (the tail of every crawl and chunk)."""
    app = make_app(CRAWLING_ENDPOINTS=ENDPOINTS, CRAWLER_BATCH_SIZE=1000, CRAWLER_CONCURRENCY=10)
    for n in range(60):
        make_instance(url=f"{fleet}/i/{n}")
    sizes: list[int] = []
    summary = crawl(app, progress=lambda _done, outcome: sizes.append(outcome.ok + outcome.failed))
    assert summary.ok == sum(sizes) == 60
    assert len(sizes) >= 2, sizes
    assert all(size <= run.DRAIN_BATCH for size in sizes[1:]), sizes


def test_a_recrawl_updates_rows_in_place(make_pg_app: Callable[..., Flask]) -> None:
    """Every crawl rewrites every instance row: a recrawl must add no index entry (HOT).

    Fails as soon as an index covers a column a recrawl changes, or the rows get no room.
    The same-day snapshot of the same data is left alone altogether.
    """
    app = make_pg_app()
    registry = parse_field_settings({})
    with app.app_context():
        ids = []
        for n in range(3):
            inst = register_instance(
                {
                    "url": f"https://{n}.example.org",
                    "contact": "C",
                    "email": "c@example.org",
                    "organization": "O",
                }
            )
            db.session.commit()
            ids.append(inst.id)
    same, changed, failing = ids

    def results(data: dict[str, Any]) -> list[FetchResult]:
        at = utcnow()
        return [
            FetchResult(same, True, {"v": 1}, None, "127.0.0.2", at, 0.1),
            FetchResult(changed, True, data, None, "127.0.0.2", at, 0.1),
            FetchResult(failing, False, None, "HTTP 500 from /x", "127.0.0.2", at, 0.1),
        ]

    def updates(conn: sa.Connection, table: str) -> tuple[int, int]:
        """Rows updated, and of those in place, by this backend: not yet reported ones too."""
        counts = "SELECT pg_stat_get_xact_tuples_updated(CAST(:t AS regclass)), "
        counts += "pg_stat_get_xact_tuples_hot_updated(CAST(:t AS regclass))"
        updated, hot = conn.execute(sa.text(counts), {"t": table}).one()
        return updated, hot

    with app.app_context():
        with db.engine.begin() as conn:  # the first crawl: status and address change
            store_results(conn, results({"v": 1}), registry)
        with db.engine.begin() as conn:  # counts only move within one transaction
            before = {table: updates(conn, table) for table in ("instances", "snapshots")}
            store_results(conn, results({"v": 2}), registry)
            after = {table: updates(conn, table) for table in ("instances", "snapshots")}
        assert after["instances"] == (before["instances"][0] + 3, before["instances"][1] + 3)
        assert after["snapshots"] == (before["snapshots"][0] + 1, before["snapshots"][1] + 1)
        assert db.session.get(Instance, changed).crawled_data == {"v": 2}
        assert db.session.get(Instance, failing).consecutive_failures == 2
        assert db.session.execute(
            sa.select(Snapshot.instance_id, Snapshot.data).order_by(Snapshot.instance_id)
        ).all() == [(same, {"v": 1}), (changed, {"v": 2})]


def test_a_crawl_stored_meanwhile_counts_as_the_previous_data(
    make_pg_app: Callable[..., Flask],
) -> None:
    """Two crawls storing one instance at once leave display values matching its data.

    The second waits for the first's row lock, then must compare its data with what the
    first stored, not with what it saw when it started: here it brings back the old data,
    which only a comparison with the latest row tells apart from "unchanged".
    """
    app = make_pg_app()
    registry = parse_field_settings({})
    with app.app_context():
        inst = register_instance(
            {
                "url": "https://a.example.org",
                "contact": "C",
                "email": "c@example.org",
                "organization": "O",
            }
        )
        db.session.commit()
        iid = inst.id

    def result(version: str) -> FetchResult:
        return FetchResult(iid, True, {"v": version}, None, None, utcnow(), 0.1)

    with app.app_context(), db.engine.begin() as conn:
        store_results(conn, [result("old")], registry)
    with app.app_context(), db.engine.connect() as first, db.engine.connect() as watch:
        first.begin()
        store_results(first, [result("new")], registry)  # holds the row lock, uncommitted

        errors: list[BaseException] = []

        def second() -> None:
            try:
                with app.app_context(), db.engine.begin() as conn:
                    store_results(conn, [result("old")], registry)
            except BaseException as exc:  # reported below
                errors.append(exc)

        thread = threading.Thread(target=second)
        thread.start()
        wait_for_lock_waits(watch, 1, "the second crawl never waited for the first")
        first.commit()
        thread.join(10)
    assert not thread.is_alive()
    assert not errors
    with app.app_context():
        assert db.session.get(Instance, iid).crawled_data == {"v": "old"}
        assert db.session.scalars(sa.select(InstanceField.value_text)).all() == ['"old"']


def _store_one(app: Flask, instance_id: int, data: dict[str, Any]) -> store.BatchOutcome:
    """Store one successful crawl result as the writer does (parsing aside)."""
    result = FetchResult(instance_id, True, data, None, "127.0.0.1", utcnow(), 0.1)
    with app.app_context():
        return writer._store(db.engine, services(app).settings.crawl, None, (None, None), [result])


def test_values_longer_than_their_column_are_stored_on_both_databases(
    make_app: Callable[..., Flask], make_instance: Callable[..., Any]
) -> None:
    # display texts past the column's 1,000 characters: a 1,500-digit int, a sum of such, and
    # strings whose JSON escapes (control characters) multiply their length
    app = make_app(CRAWLED_FIELDS_SETTINGS={"total": {"aggregation": "sum"}})
    inst = make_instance()
    data = {
        "version": 10**1500,
        "total": [10**1400, 10**1400],
        "control": "\x01" * 400,
        "mixed": "\U0001f600\x1f" * 400,
        "name": "Indico",
    }
    outcome = _store_one(app, inst.id, data)
    with app.app_context():
        row = db.session.get(Instance, inst.id)
        query = sa.select(InstanceField.field, InstanceField.value_text)
        values = dict(db.session.execute(query).all())
    assert (outcome.ok, outcome.failed) == (1, 0)
    assert (row.crawl_status, row.crawled_data["version"]) == ("ok", 10**1500)
    # the ints have no display value (nothing can chart or sort them); the strings are cut
    assert set(values) == {"control", "mixed", "name"}
    assert values["name"] == '"Indico"'
    for name in ("control", "mixed"):
        assert len(values[name]) <= InstanceField.__table__.c.value_text.type.length
        shown = json.loads(values[name])
        assert shown.endswith("…")
        assert data[name].startswith(shown[:-1])


def test_floats_stay_floats_and_ints_ints(
    make_app: Callable[..., Flask], make_instance: Callable[..., Any]
) -> None:
    # jsonb keeps a number's value, not its spelling: 1e+16 (how Python writes large floats)
    # would come back as an int, and a recompute would file it under another category
    app = make_app(CRAWLED_FIELDS_SETTINGS={"total": {"aggregation": "sum"}})
    inst = make_instance()
    data = {
        "big": 1e16,
        "odd": 3.800382186078494e16,
        "total": [1.5e300, 1e16],
        "nested": {"x": [-2e20, 10**16]},
        "text": 'e+ "\\u00000"',
        "small": 2.5e-7,
    }
    outcome = _store_one(app, inst.id, data)
    with app.app_context():
        stored = db.session.get(Instance, inst.id).crawled_data
        snapshot = db.session.scalar(sa.select(Snapshot.data))
    assert outcome.ok == 1
    for read in (stored, snapshot):
        assert read == data
        assert [type(read[k]) for k in ("big", "odd", "small")] == [float, float, float]
        assert [type(n) for n in read["nested"]["x"]] == [float, int]
        assert all(type(n) is float for n in read["total"])


def test_a_hanging_instance_never_holds_back_the_next_chunks(
    make_app: Callable[..., Flask],
    make_instance: Callable[..., Any],
    servers: ServerLoop,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first instance of the first chunk never answers: the other slot crawls every later
    chunk meanwhile, none waits for the chunk before it to end."""
    timeout = 3.0
    plan = FleetPlan(0, bytes([HANGS] + [ANSWERS] * 7), array("d", [0.0] + [0.01] * 7))

    base = servers.start_protocol(lambda: FleetProtocol(0.0, plan))
    app = make_app(
        CRAWLING_ENDPOINTS=ENDPOINTS,
        CRAWLER_TOTAL_TIMEOUT=timeout,
        CRAWLER_CONCURRENCY=2,
        CRAWLER_BATCH_SIZE=2,
    )
    made = [make_instance(url=f"{base}/i/{n}") for n in range(len(plan))]
    monkeypatch.setattr(run, "CHUNK", 2)  # four chunks, the hanging instance in the first

    summary = crawl(app, writer_process=False)

    assert (summary.ok, summary.failed) == (7, 1)
    with app.app_context():
        rows = {i.id: i for i in db.session.scalars(sa.select(Instance))}
    hung = rows[made[0].id]
    assert hung.crawl_error == "timeout after 3 s"
    assert hung.last_crawl_at is not None
    for instance in made[1:]:  # each started while the hanging one still waited
        started = rows[instance.id].last_crawl_at
        assert started is not None
        assert (started - hung.last_crawl_at).total_seconds() < timeout


def test_a_recrawl_starts_the_instances_slow_last_time_first(
    make_app: Callable[..., Flask],
    make_instance: Callable[..., Any],
    servers: ServerLoop,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each crawl stores how long every instance took; the next starts the slow ones first,
    and crawls every instance once all the same."""
    plan = FleetPlan(0, bytes([ANSWERS] * 5 + [FAILS]), array("d", [0.01] * 3 + [0.4] + [0.01] * 2))
    base = servers.start_protocol(lambda: FleetProtocol(0.0, plan))
    app = make_app(CRAWLING_ENDPOINTS=ENDPOINTS, CRAWLER_CONCURRENCY=1, CRAWLER_BATCH_SIZE=2)
    made = [make_instance(url=f"{base}/i/{n}") for n in range(len(plan))]
    monkeypatch.setattr(run, "SLOW_FIRST_SECONDS", 0.5)
    monkeypatch.setattr(run, "CHUNK", 2)
    slow = made[3].id

    def crawled() -> dict[int, Instance]:
        summary = crawl(app, writer_process=False)
        assert (summary.total, summary.ok, summary.failed) == (6, 5, 1)
        with app.app_context():
            return {i.id: i for i in db.session.scalars(sa.select(Instance))}

    def order(rows: dict[int, Instance]) -> list[int]:
        return sorted(rows, key=lambda iid: rows[iid].last_crawl_at)  # type: ignore[arg-type, return-value]

    first = crawled()
    assert order(first) == [i.id for i in made]  # nothing known yet: in id order
    seconds = {iid: row.last_crawl_seconds for iid, row in first.items()}
    assert seconds[slow] is not None
    assert seconds[slow] >= 0.8  # two endpoints of 0.4 s each
    assert all(s is not None and s < 0.5 for iid, s in seconds.items() if iid != slow)
    again = crawled()
    assert order(again) == [slow] + [i.id for i in made if i.id != slow]


def test_a_crawl_of_given_ids_starts_them_in_the_order_given(
    make_app: Callable[..., Flask], make_instance: Callable[..., Any], servers: ServerLoop
) -> None:
    """A Celery chunk lists the instances slow last time first: they must start first."""
    plan = FleetPlan(0, bytes([ANSWERS] * 4), array("d", [0.01] * 4))
    base = servers.start_protocol(lambda: FleetProtocol(0.0, plan))
    app = make_app(CRAWLING_ENDPOINTS=ENDPOINTS, CRAWLER_CONCURRENCY=1, CRAWLER_BATCH_SIZE=1)
    made = [make_instance(url=f"{base}/i/{n}") for n in range(len(plan))]
    wanted = [made[2].id, made[0].id, made[3].id, made[1].id]
    summary = crawl(app, wanted, writer_process=False)
    assert (summary.total, summary.ok) == (4, 4)
    with app.app_context():
        rows = {i.id: i.last_crawl_at for i in db.session.scalars(sa.select(Instance))}
    assert sorted(rows, key=lambda iid: rows[iid]) == wanted  # type: ignore[arg-type, return-value]
