"""Background crawl jobs on the embedded worker, progress, overlap, history pruning."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from benchmarks.fleet import ENDPOINTS
from cephalopod.crawler import jobs
from cephalopod.crawler.models import ChunkDelivery, CrawlJob
from cephalopod.crawler.results import FetchResult
from cephalopod.crawler.store import store_results
from cephalopod.db import db, utcnow
from cephalopod.instances.models import Instance, InstanceField, Snapshot
from cephalopod.services import services
from cephalopod.stats.fields import parse_field_settings
from tests.databases import wait_for_lock_waits


def test_start_crawl_all_runs_in_background_and_reports_progress(
    make_app: Callable[..., Flask], make_instance: Callable[..., Any], fleet: str
) -> None:
    app = make_app(CRAWLING_ENDPOINTS=ENDPOINTS)
    for n in range(5):
        make_instance(url=f"{fleet}/i/{n}")
    make_instance(url=f"{fleet}/broken")
    make_instance(url=f"{fleet}/i/9", enabled=False)

    with app.app_context():
        job_id = jobs.start_crawl_all(services(app).runner)
    assert services(app).runner.join(timeout=30)  # type: ignore[attr-defined]

    with app.app_context():
        assert jobs.job_status(job_id) == {
            "state": "done",
            "total": 6,
            "done": 6,
            "ok": 5,
            "failed": 1,
        }
        statuses = db.session.scalars(sa.select(Instance.crawl_status)).all()
        assert sorted(statuses) == ["error", "never", "ok", "ok", "ok", "ok", "ok"]
        assert jobs.job_status("no-such-job") is None


def test_a_second_crawl_all_joins_the_active_one(
    app: Flask, make_instance: Callable[..., Any]
) -> None:
    with app.app_context():
        active = jobs.create_job()
        assert active is not None
        assert jobs.create_job() is None
        assert jobs.start_crawl_all(services(app).runner) == active


def test_a_stale_active_job_does_not_block_forever(app: Flask) -> None:
    with app.app_context():
        old = CrawlJob(id="old", state="running", created_at=utcnow() - timedelta(days=2))
        db.session.add(old)
        db.session.commit()
        assert jobs.create_job() is not None


def test_prune_history_keeps_the_retention_window(
    make_app: Callable[..., Flask], make_instance: Callable[..., Any]
) -> None:
    app = make_app(HISTORY_RETENTION_DAYS=30)
    inst = make_instance()
    today = utcnow().date()
    days = [today, today - timedelta(days=30), today - timedelta(days=31), date(2020, 1, 1)]
    with app.app_context():
        db.session.add_all(Snapshot(instance_id=inst.id, day=d, data={"v": 1}) for d in days)
        db.session.commit()
    assert jobs.prune_history(app, 30) == 2
    with app.app_context():
        kept = sorted(db.session.scalars(sa.select(Snapshot.day)).all())
    assert kept == sorted(days[:2])


def test_prune_history_drops_display_values_of_deleted_instances(
    app: Flask, make_instance: Callable[..., Any]
) -> None:
    kept, gone = make_instance(), make_instance()
    with app.app_context():
        db.session.add_all(
            InstanceField(instance_id=inst.id, field="version", value_text='"1.0"')
            for inst in (kept, gone)
        )
        db.session.commit()
        # deleted by hand, as a person with a SQL prompt might: nothing cascades
        db.session.execute(sa.delete(Instance).where(Instance.id == gone.id))
        db.session.commit()
    jobs.prune_history(app, 730)
    with app.app_context():
        left = db.session.scalars(sa.select(InstanceField.instance_id)).all()
    assert left == [kept.id]


@pytest.mark.parametrize("step", ["crawl", "_start_chunk"])
def test_a_failed_chunk_still_counts_so_the_job_ends(
    app: Flask, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    import cephalopod.crawler.tasks as tasks

    with app.app_context():
        db.session.add(CrawlJob(id="j", state="running", chunks_total=2, created_at=utcnow()))
        db.session.commit()

        def broken(*_args: Any, **_kwargs: Any) -> None:
            raise RuntimeError("database went away")

        with monkeypatch.context() as patch:
            patch.setattr(tasks, step, broken)
            with pytest.raises(RuntimeError):
                tasks.crawl_chunk(app, "j", [1])
        tasks.crawl_chunk(app, "j", [])
        db.session.expire_all()
        job = db.session.get(CrawlJob, "j")
        assert (job.state, job.chunks_done) == ("done", 2)
        assert job.error == "a chunk failed: database went away"


def test_a_chunk_delivered_again_is_counted_once(
    make_app: Callable[..., Flask], make_instance: Callable[..., Any], fleet: str
) -> None:
    """Celery delivers a chunk again when its worker died (``acks_late``), or even after it
    finished when the acknowledgement was lost: its instances count once, the job ends once
    every distinct chunk has finished, not after as many deliveries. A delivery that was
    taken over counts nothing more, even if it still runs."""
    import cephalopod.crawler.tasks as tasks

    app = make_app(CRAWLING_ENDPOINTS=ENDPOINTS)
    ids = [make_instance(url=f"{fleet}/i/{n}").id for n in range(3)]
    ids.append(make_instance(url=f"{fleet}/broken").id)
    first, second = ids[:2], ids[2:]
    earlier = ChunkDelivery(min(first), "earlier")
    registry = parse_field_settings({})

    def status() -> tuple[Any, ...]:
        db.session.expire_all()
        return tuple(jobs.job_status("j").values())  # type: ignore[union-attr]

    def store_late(iid: int) -> None:  # what the earlier delivery's writer does meanwhile
        stored = FetchResult(iid, True, {"v": 1}, None, None, utcnow(), 0.1)
        with db.engine.begin() as conn:
            store_results(conn, [stored], registry, None, "j", earlier)

    with app.app_context():
        db.session.add(
            CrawlJob(id="j", state="running", total=4, chunks_total=2, created_at=utcnow())
        )
        db.session.commit()
        tasks._start_chunk("j", earlier)  # a first delivery stores one batch...
        store_late(first[0])
        assert status() == ("running", 4, 1, 1, 0)
        tasks.crawl_chunk(app, "j", first)  # ...is given up for lost, and the chunk counts anew
        assert status() == ("running", 4, 2, 2, 0)
        store_late(first[1])  # the first delivery was alive after all
        tasks._finish_chunk("j", earlier)
        assert status() == ("running", 4, 2, 2, 0)
        tasks.crawl_chunk(app, "j", first)  # once more, after it finished
        assert status() == ("running", 4, 2, 2, 0)
        tasks.crawl_chunk(app, "j", second)
        assert status() == ("done", 4, 4, 3, 1)
        job = db.session.get(CrawlJob, "j")
        assert (job.chunks_done, job.done, job.ok, job.failed) == (2, 4, 3, 1)


def test_the_last_chunks_finishing_together_still_end_the_job(
    make_pg_app: Callable[..., Flask],
) -> None:
    """Two workers finish the last two chunks at once: each must count the other's.

    Without taking turns, each would sum the chunks in its own snapshot, see one of two
    finished, and the job would stay "running" (and block crawls) until it went stale.
    """
    import cephalopod.crawler.tasks as tasks

    app = make_pg_app()
    with app.app_context():
        db.session.add(CrawlJob(id="j", state="running", chunks_total=2, created_at=utcnow()))
        db.session.commit()
        chunks = {n: ChunkDelivery(n, f"delivery {n}") for n in (1, 2)}
        for chunk in chunks.values():
            tasks._start_chunk("j", chunk)
        errors: list[BaseException] = []

        def finish(first: int) -> None:
            try:
                with app.app_context():
                    tasks._finish_chunk("j", chunks[first])
            except BaseException as exc:  # reported below
                errors.append(exc)

        with db.engine.connect() as holder, db.engine.connect() as watch:
            holder.begin()  # both finish while someone else holds the job's row
            holder.execute(sa.text("SELECT id FROM crawl_jobs WHERE id = 'j' FOR UPDATE"))
            threads = [threading.Thread(target=finish, args=(n,)) for n in (1, 2)]
            for thread in threads:
                thread.start()
            wait_for_lock_waits(watch, 2, "the chunks never waited for the job's row")
            holder.commit()
            for thread in threads:
                thread.join(10)
        assert not errors
        db.session.expire_all()
        job = db.session.get(CrawlJob, "j")
        assert (job.state, job.chunks_done) == ("done", 2)
