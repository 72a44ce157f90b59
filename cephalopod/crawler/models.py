"""Crawl jobs: the progress of a background crawl that a person, a script or a schedule started."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from cephalopod.db import Model, UTCDateTime, utcnow

JOB_STATES = ("queued", "running", "done", "failed")
#: A crawl of all enabled instances, or of one instance (the admin API's "crawl now").
ALL, INSTANCE = "all", "instance"


class CrawlJob(Model):
    """One run of a crawl; counters are updated as batches are stored, by any worker.

    Only jobs of kind ``all`` keep another crawl of all from starting (`active_job`). A job
    whose process died (its ``owner`` is gone, or its ``heartbeat_at`` is old) is ended as
    failed when it is next looked at, so it never blocks the next crawl.
    """

    __tablename__ = "crawl_jobs"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(10), default=ALL, server_default=ALL)
    instance_id: Mapped[int | None] = mapped_column()
    state: Mapped[str] = mapped_column(sa.String(10), default="queued")
    total: Mapped[int] = mapped_column(default=0)
    done: Mapped[int] = mapped_column(default=0)
    ok: Mapped[int] = mapped_column(default=0)
    failed: Mapped[int] = mapped_column(default=0)
    chunks_total: Mapped[int] = mapped_column(default=0)
    chunks_done: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    error: Mapped[str | None] = mapped_column(sa.String(500))
    #: ``host:pid:token`` of the process running the job (None when Celery workers share it)
    owner: Mapped[str | None] = mapped_column(sa.String(300))
    #: touched every few seconds while a process works on the job: see `jobs.job_is_dead`
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    def __repr__(self) -> str:
        return f"<CrawlJob {self.id} {self.state} {self.done}/{self.total}>"


class CrawlJobChunk(Model):
    """The progress of one chunk of a job that Celery workers share.

    Celery may deliver a chunk again (a worker killed mid-chunk: ``acks_late``); the chunk
    then starts its row over under a new ``delivery`` token, and only the delivery holding
    the token counts (an earlier one still running counts nothing more), so its instances
    are counted once and the job ends only when every distinct chunk has finished. A chunk
    is known by its first (smallest) instance id.
    """

    __tablename__ = "crawl_job_chunks"

    job_id: Mapped[str] = mapped_column(
        sa.String(36), sa.ForeignKey("crawl_jobs.id", ondelete="CASCADE"), primary_key=True
    )
    first_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    done: Mapped[int] = mapped_column(default=0)
    ok: Mapped[int] = mapped_column(default=0)
    failed: Mapped[int] = mapped_column(default=0)
    finished: Mapped[bool] = mapped_column(default=False)
    delivery: Mapped[str] = mapped_column(sa.String(32), default="")

    def __repr__(self) -> str:
        return f"<CrawlJobChunk {self.job_id} {self.first_id} {self.done}>"


@dataclass(frozen=True)
class ChunkDelivery:
    """One delivery of a chunk: where a crawl of the chunk counts what it stores."""

    first_id: int
    delivery: str
