"""Celery tasks. ``cephalopod.crawler.crawl_all`` keeps the name old settings files use.

``crawl_all`` splits the enabled instances into chunks of ids and queues one
``crawl_chunk`` per chunk, so any number of workers share a crawl; each chunk stores its
own results and counts itself done; the last one closes the job.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import sqlalchemy as sa
from celery import shared_task
from flask import Flask, current_app
from sqlalchemy.dialects import postgresql, sqlite

from cephalopod.crawler import jobs
from cephalopod.crawler.models import ChunkDelivery, CrawlJob, CrawlJobChunk
from cephalopod.crawler.run import crawl
from cephalopod.db import db, utcnow
from cephalopod.instances.models import Instance
from cephalopod.schedule import CRAWL_ALL, CRAWL_INSTANCE, PRUNE_HISTORY

log = logging.getLogger(__name__)

job_table = CrawlJob.__table__
chunk_table = CrawlJobChunk.__table__


def _app() -> Flask:
    return current_app._get_current_object()  # type: ignore[attr-defined]


@shared_task(name=CRAWL_ALL)
def crawl_all(job_id: str | None = None) -> str | None:
    """Fan a crawl of every enabled instance out into chunk tasks; skip if one is running."""
    if job_id is None:
        job_id = jobs.create_job()
        if job_id is None:
            log.info("A crawl is already running; this periodic crawl is skipped")
            return None
    chunks: list[list[int]] = []
    query = sa.select(Instance.id).where(Instance.enabled).order_by(Instance.id)
    for partition in (
        db.session.execute(query).scalars().partitions(_app().config["CRAWLER_CHUNK_SIZE"])
    ):
        chunks.append(list(partition))
    total = sum(len(chunk) for chunk in chunks)
    values = {"state": "running", "started_at": utcnow(), "total": total}
    values |= {"chunks_total": len(chunks), "chunks_done": 0}
    if not chunks:
        values |= {"state": "done", "finished_at": utcnow()}
    with db.engine.begin() as conn:
        conn.execute(sa.update(job_table).where(job_table.c.id == job_id).values(**values))
    for chunk in chunks:
        crawl_chunk.delay(job_id, chunk)
    return job_id


@shared_task(name="cephalopod.crawler.crawl_chunk")
def crawl_chunk(job_id: str, ids: list[int]) -> None:
    """Crawl a chunk of instances; the last chunk of a job marks it done.

    A chunk that fails still counts as finished (its error is kept on the job), so one bad
    chunk cannot leave the job "running" and block the next crawls until it goes stale.
    Delivered again (``acks_late``: its worker died), a chunk starts its count over: see
    `CrawlJobChunk`.
    """
    chunk = ChunkDelivery(min(ids, default=0), uuid.uuid4().hex)
    try:
        _start_chunk(job_id, chunk)
        crawl(_app(), ids, job_id=job_id, chunk=chunk)
    except Exception as exc:
        log.exception("Chunk of job %s failed", job_id)
        with db.engine.begin() as conn:
            conn.execute(
                sa.update(job_table)
                .where(job_table.c.id == job_id)
                .values(error=f"a chunk failed: {exc}"[:500])
            )
        raise
    finally:
        _finish_chunk(job_id, chunk)


def _set_chunk(
    conn: sa.Connection, job_id: str, chunk: ChunkDelivery, values: dict[str, Any], taking: bool
) -> None:
    """Write a chunk's progress row, creating it if need be (one per chunk, ever).

    ``taking``: this delivery takes the chunk over; otherwise the row changes only if this
    delivery still holds it.
    """
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    row = {"done": 0, "ok": 0, "failed": 0, "finished": False, **values}
    insert = dialect.insert(chunk_table).values(
        job_id=job_id, first_id=chunk.first_id, delivery=chunk.delivery, **row
    )
    conn.execute(
        insert.on_conflict_do_update(
            index_elements=[chunk_table.c.job_id, chunk_table.c.first_id],
            set_={**values, "delivery": chunk.delivery} if taking else values,
            where=None if taking else chunk_table.c.delivery == chunk.delivery,
        )
    )


def _start_chunk(job_id: str, chunk: ChunkDelivery) -> None:
    """Give the chunk a fresh progress row under this delivery, however often it comes."""
    with db.engine.begin() as conn:
        fresh = {"done": 0, "ok": 0, "failed": 0, "finished": False}
        _set_chunk(conn, job_id, chunk, fresh, taking=True)


def _finish_chunk(job_id: str, chunk: ChunkDelivery) -> None:
    """Mark the chunk finished; sum the job's chunks into it, and end it after the last."""
    job = job_table.c.id == job_id
    with db.engine.begin() as conn:
        # even if it never started; not if a later delivery took it over (that one will)
        _set_chunk(conn, job_id, chunk, {"finished": True}, taking=False)
        # chunks finishing at once on several workers take turns (on SQLite the write above
        # already does), so that each one's sums below see the chunks finished before it
        conn.execute(sa.select(job_table.c.id).where(job).with_for_update())
        done, ok, failed, finished = jobs.chunk_totals(conn, job_id)
        conn.execute(
            sa.update(job_table)
            .where(job)
            .values(chunks_done=finished, done=done, ok=ok, failed=failed)
        )
        conn.execute(
            sa.update(job_table)
            .where(
                job,
                job_table.c.chunks_done >= job_table.c.chunks_total,
                job_table.c.state == "running",
            )
            .values(state="done", finished_at=utcnow())
        )


@shared_task(name=CRAWL_INSTANCE)
def crawl_instance(uuid: str) -> bool:
    """Crawl one instance by UUID; False when it does not exist."""
    from cephalopod.instances.operations import get_instance

    instance = get_instance(uuid)
    if instance is None:
        return False
    jobs.crawl_one(_app(), instance.id)
    return True


@shared_task(name=PRUNE_HISTORY)
def prune_history() -> int:
    """Delete snapshots beyond the retention period."""
    return jobs.prune_history(_app())
