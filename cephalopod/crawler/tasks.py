"""The background tasks, by name: `TASKS`, the registry both runners share.

Each task is a function of the app and keyword arguments; where it runs (a Celery worker,
the embedded thread) is the runner's business (`cephalopod.background`).
``cephalopod.crawler.crawl_all`` keeps the name old settings files use.

With workers to share it (Celery), ``crawl_all`` splits the enabled instances into chunks of
ids and submits one ``crawl_chunk`` per chunk; each chunk stores its own results and counts
itself done; the last one closes the job. In the embedded thread it crawls in-process.
A chunk's own rows are written with retries while the database restarts (`retrying`), and
the worker running it keeps the job's heartbeat (`jobs.heartbeat`).
"""

from __future__ import annotations

import itertools
import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.dialects import postgresql, sqlite

from cephalopod.crawler import jobs
from cephalopod.crawler.models import ChunkDelivery, CrawlJob, CrawlJobChunk
from cephalopod.crawler.run import crawl, slow_ids
from cephalopod.db import db, retrying, utcnow
from cephalopod.instances.models import Instance
from cephalopod.instances.operations import get_instance
from cephalopod.ops.logs import log_context
from cephalopod.schedule import CRAWL_ALL, CRAWL_CHUNK, CRAWL_INSTANCE, PRUNE_HISTORY
from cephalopod.services import services

log = logging.getLogger(__name__)

job_table = CrawlJob.__table__
chunk_table = CrawlJobChunk.__table__


def crawl_all(app: Flask, job_id: str | None = None) -> str | None:
    """Crawl every enabled instance; without a job (a periodic run), skip if one is running."""
    runner = services(app).runner
    if job_id is None:
        job_id = jobs.create_job(None if runner.distributed else jobs.process_owner())
        if job_id is None:
            running = jobs.active_job()
            log.info(
                "A crawl of all instances is already running (job %s); "
                "this periodic crawl is skipped",
                running.id if running else "?",
            )
            return None
    if not runner.distributed:
        jobs.run_crawl_all(app, job_id)
        return job_id
    query = sa.select(Instance.id).where(Instance.enabled).order_by(Instance.id)
    size = services(app).settings.crawl.chunk_size
    conn = db.session.connection()
    chunks = plan_chunks(slow_ids(conn), conn.scalars(query), size)
    total = sum(len(chunk) for chunk in chunks)
    values = {"state": "running", "started_at": utcnow(), "total": total, "owner": None}
    values |= {"heartbeat_at": utcnow()}  # from now on the chunks' workers keep it
    values |= {"chunks_total": len(chunks), "chunks_done": 0}
    if not chunks:
        values |= {"state": "done", "finished_at": utcnow()}
    with db.engine.begin() as conn:
        conn.execute(sa.update(job_table).where(job_table.c.id == job_id).values(**values))
    for chunk in chunks:
        runner.submit(CRAWL_CHUNK, job_id=job_id, ids=chunk)
    return job_id


def plan_chunks(slow: Sequence[int], enabled: Iterable[int], size: int) -> list[list[int]]:
    """Split the ids into chunks: the slow ones first (in the order given), then the rest.

    A chunk ends with its slowest instance, its worker's other slots idle meanwhile: spread
    by id, the few instances that hang until the time-out (1 % of a real fleet) put one in
    nearly every chunk, and every chunk then lasted the time-out. Gathered, they fill their
    own first chunks, crawled while the fast chunks run on the other workers, and those end
    with their own fast tails (what a crawl learnt: `last_crawl_seconds`).
    """
    first = list(dict.fromkeys(slow))
    taken = set(first)
    ordered = itertools.chain(first, (key for key in enabled if key not in taken))
    chunks: list[list[int]] = []
    while chunk := list(itertools.islice(ordered, size)):
        chunks.append(chunk)
    return chunks


def crawl_chunk(app: Flask, job_id: str, ids: list[int]) -> None:
    """Crawl a chunk of instances; the last chunk of a job marks it done.

    A chunk that fails still counts as finished (its error is kept on the job), so one bad
    chunk cannot leave the job "running" and block the next crawls until it goes stale.
    Delivered again (``acks_late``: its worker died), a chunk starts its count over: see
    `CrawlJobChunk`.
    """
    chunk = ChunkDelivery(min(ids, default=0), uuid.uuid4().hex)
    what = f"chunk {chunk.first_id} of crawl job {job_id}"
    try:
        retrying(_start_chunk, what=what)(job_id, chunk)
        with jobs.heartbeat(job_id):
            crawl(app, ids, job_id=job_id, chunk=chunk)
    except Exception as exc:
        log.exception("Chunk of job %s failed", job_id)
        retrying(_note_error, what=what)(job_id, f"a chunk failed: {exc}")
        raise
    finally:
        retrying(_finish_chunk, what=what)(job_id, chunk)


def _note_error(job_id: str, error: str) -> None:
    with db.engine.begin() as conn:
        conn.execute(sa.update(job_table).where(job_table.c.id == job_id).values(error=error[:500]))


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


def crawl_instance(app: Flask, uuid: str, job_id: str | None = None) -> bool:
    """Crawl one instance by UUID (counted in job ``job_id``); False when it does not exist."""
    with log_context(instance_uuid=uuid, job_id=job_id):
        instance = get_instance(uuid)
        if instance is None:
            if job_id is not None:
                jobs.fail_job(job_id, "Instance not found")
            return False
        if job_id is None:
            jobs.crawl_one(app, instance.id)
        else:
            jobs.run_crawl_one(app, job_id, instance.id)
        return True


def prune_history(app: Flask) -> int:
    """Delete snapshots beyond the retention period."""
    return jobs.prune_history(app, services(app).settings.history_retention_days)


#: Task name → function, for both runners.
TASKS: dict[str, Callable[..., Any]] = {
    CRAWL_ALL: crawl_all,
    CRAWL_CHUNK: crawl_chunk,
    CRAWL_INSTANCE: crawl_instance,
    PRUNE_HISTORY: prune_history,
}
