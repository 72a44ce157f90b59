"""One crawl, end to end: stream instances, fetch concurrently, store in batches.

A single asyncio loop drives the fetches; batches of results go to one writer thread, so
database writes overlap the network instead of stalling it. The instance list is read in
chunks of ids (keyset pagination), so memory stays flat however many instances there are.
No chunk waits for the one before it to end: a fetch slot takes the next instance as soon as
it is free, from whichever chunk. The instances whose last crawl was slow start first: begun
last, they would end the crawl late, every other slot idle by then.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import Flask
from sqlalchemy.engine import Engine

from cephalopod.crawler.config import CrawlConfig
from cephalopod.crawler.models import ChunkDelivery
from cephalopod.crawler.results import FetchResult
from cephalopod.crawler.signals import instances_started_failing
from cephalopod.crawler.store import BatchOutcome
from cephalopod.crawler.targets import Targets
from cephalopod.crawler.writer import long_lived_objects_frozen, writer
from cephalopod.db import db, retrying
from cephalopod.instances.models import Instance
from cephalopod.services import services

if TYPE_CHECKING:  # imported by crawl(), see there
    from cephalopod.crawler.fetch import Fetcher

log = logging.getLogger(__name__)

CHUNK = 1000
FLUSH_SECONDS = 2.0
#: Batches handed to the writer and not yet stored: enough to ride out a slow commit
#: without stalling the fetches, few enough to bound memory.
MAX_PENDING_WRITES = 8
#: Raw reply bytes in one batch: with the above, bounds what waits for the writer even when
#: every instance sends replies of the maximum size.
MAX_BATCH_BYTES = 16 << 20
#: Batch size once every instance has been started: the last results are stored as they
#: come rather than all at once after the last reply (that write was the crawl's tail).
DRAIN_BATCH = 25
MAX_DISTINCT_ERRORS = 1000
#: Instances whose last crawl took at least this long start first (the slowest first), at
#: most SLOW_FIRST_MAX of them; the rest follow in id order. A few per cent of a real fleet.
SLOW_FIRST_SECONDS = 2.0
SLOW_FIRST_MAX = 10_000

instances = Instance.__table__
Target = tuple[int, str]
Progress = Callable[[int, BatchOutcome], None]
Tell = Callable[[list[int]], None]


@dataclass
class CrawlSummary:
    """The counts a person or a script wants after a crawl."""

    total: int = 0
    ok: int = 0
    failed: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    duration: float = 0.0
    #: CPU seconds of this process and of its writer process during the crawl
    cpu: float = 0.0

    @property
    def rate(self) -> float:
        """Instances per second."""
        return self.total / self.duration if self.duration > 0 else 0.0

    def add(self, outcome: BatchOutcome) -> None:
        """Count a stored batch."""
        self.ok += outcome.ok
        self.failed += outcome.failed
        self.total += outcome.ok + outcome.failed
        for error, count in outcome.errors.items():
            if error in self.errors or len(self.errors) < MAX_DISTINCT_ERRORS:
                self.errors[error] += count


def count_enabled(engine: Engine) -> int:
    """Return the number of enabled instances (the size of a full crawl)."""
    with engine.connect() as conn:
        query = sa.select(sa.func.count()).select_from(instances).where(instances.c.enabled)
        return conn.scalar(query) or 0


def _load_chunk(engine: Engine, after_id: int) -> list[Target]:
    query = (
        sa.select(instances.c.id, instances.c.url)
        .where(instances.c.enabled, instances.c.id > after_id)
        .order_by(instances.c.id)
        .limit(CHUNK)
    )
    with engine.connect() as conn:
        return [(row.id, row.url) for row in conn.execute(query)]


def _slow(*columns: sa.ColumnElement[Any]) -> sa.Select[Any]:
    """The enabled instances whose last crawl was slow, the slowest first."""
    seconds = instances.c.last_crawl_seconds
    return (
        sa.select(*columns)
        .where(instances.c.enabled, seconds >= SLOW_FIRST_SECONDS)
        .order_by(seconds.desc(), instances.c.id)
        .limit(SLOW_FIRST_MAX)
    )


def _load_slow(engine: Engine) -> list[Target]:
    with engine.connect() as conn:
        return [(row.id, row.url) for row in conn.execute(_slow(instances.c.id, instances.c.url))]


def load_targets(engine: Engine, ids: Sequence[int]) -> list[Target]:
    """Return (id, url) of the given instances, enabled or not (they were asked for by name),
    in the order given (a chunk lists the slow ones first)."""
    query = sa.select(instances.c.id, instances.c.url).where(instances.c.id.in_(list(ids)))
    with engine.connect() as conn:
        urls = {row.id: row.url for row in conn.execute(query)}
    return [(key, urls[key]) for key in dict.fromkeys(ids) if key in urls]


def slow_ids(conn: sa.Connection) -> list[int]:
    """The ids of the enabled instances whose last crawl was slow, the slowest first."""
    return list(conn.scalars(_slow(instances.c.id)))


async def _stream_enabled(
    engine: Engine, reader: ThreadPoolExecutor
) -> AsyncIterator[list[Target]]:
    """Yield the enabled instances in chunks, each read while the previous one is crawled:
    first those that were slow last time, then the others in id order."""
    loop = asyncio.get_running_loop()
    load = retrying(_load_chunk, what="reading the instances to crawl")  # across a restart
    load_slow = retrying(_load_slow, what="reading the instances to crawl")
    slow = await loop.run_in_executor(reader, load_slow, engine)
    started = {key for key, _url in slow}  # read once: the writer updates the rows meanwhile
    following = loop.run_in_executor(reader, load, engine, 0)
    if slow:
        try:
            yield slow
        except BaseException:
            following.cancel()
            raise
    chunk = await following
    while chunk:
        following = loop.run_in_executor(reader, load, engine, chunk[-1][0])
        try:
            yield [target for target in chunk if target[0] not in started] if started else chunk
        except BaseException:
            following.cancel()
            raise
        chunk = await following


def crawl(
    app: Flask,
    ids: Sequence[int] | None = None,
    *,
    job_id: str | None = None,
    chunk: ChunkDelivery | None = None,
    progress: Progress | None = None,
    writer_process: bool | None = None,
    alongside: AbstractContextManager[object] | None = None,
) -> CrawlSummary:
    """Crawl the given instances (default: every enabled one) and store the results.

    Stored results are counted in job ``job_id``, or in its chunk ``chunk`` (Celery).

    ``writer_process`` (default: for crawls of all instances) stores the results from a
    child process; crawls of given ids store from a thread of this process.

    ``alongside`` (a job's heartbeat) is entered once the writer has started and left when
    the crawl ends: a thread started before it would make the writer a spawned process,
    which imports the whole application again (a second of CPU), instead of a fork.
    """
    # here, not at the top: create_app imports this module (through the tasks) in every web
    # process and command, and aiohttp costs it 0.1 to 0.2 s; only a crawl needs it. Before
    # the clocks start, as when the command imported the crawler at its start.
    from cephalopod.crawler.fetch import Fetcher

    svc = services(app)
    config, locator = svc.settings.crawl, svc.geolocator
    with app.app_context():
        engine = db.engine
    use_process = ids is None if writer_process is None else writer_process
    fetcher = Fetcher(
        config.endpoints,
        config.limits,
        concurrency=config.concurrency,
        allowed_networks=config.allowed_networks,
        user_agent=config.user_agent,
        decode=False,
    )
    cpu = _cpu_seconds()

    def tell(started_failing: list[int]) -> None:
        try:
            instances_started_failing.send(app, ids=started_failing)
        except Exception:  # a listener's trouble is never the crawl's
            log.exception("Could not tell that instances %s started failing", started_failing)

    with long_lived_objects_frozen():  # before the writer forks, so that it inherits it
        executor, store = writer(config, engine, locator, (job_id, chunk), use_process)
        with executor, alongside or nullcontext():
            summary = asyncio.run(
                _crawl(engine, config, ids, progress, fetcher, executor, store, tell)
            )
    summary.cpu = _cpu_seconds() - cpu  # the writer process has ended: it is counted now
    return summary


def _cpu_seconds() -> float:
    """CPU seconds used so far by this process and its children that have ended."""
    usages = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(usage.ru_utime + usage.ru_stime for usage in usages)


async def _crawl(
    engine: Engine,
    config: CrawlConfig,
    ids: Sequence[int] | None,
    progress: Progress | None,
    fetcher: Fetcher,
    writer: Executor,
    store: Callable[[list[FetchResult[int]]], BatchOutcome],
    tell: Tell,
) -> CrawlSummary:
    summary = CrawlSummary()
    start = time.monotonic()
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(1, thread_name_prefix="crawl-reader") as reader:

        def write(batch: list[FetchResult[int]]) -> asyncio.Future[BatchOutcome]:
            return loop.run_in_executor(writer, store, batch)

        pending: deque[asyncio.Future[BatchOutcome]] = deque()

        async def settle(limit: int) -> None:
            while len(pending) > limit:
                outcome = await pending.popleft()
                summary.add(outcome)
                if outcome.started_failing:  # stored and committed: listeners may read them
                    tell(outcome.started_failing)
                if progress is not None:
                    progress(summary.total, outcome)

        if ids is None:
            targets: Targets[int] = _stream_enabled(engine, reader)
        else:
            load = retrying(load_targets, what="reading the instances to crawl")
            targets = await loop.run_in_executor(reader, load, engine, ids)
        batch: list[FetchResult[int]] = []
        flushed = time.monotonic()
        async with fetcher:
            size = 0
            async for result in fetcher.fetch_all(targets, chunked=ids is None):
                batch.append(result)
                size += result.size
                if (
                    len(batch) >= config.batch_size
                    or size > MAX_BATCH_BYTES
                    or time.monotonic() - flushed > FLUSH_SECONDS
                    or (fetcher.targets_exhausted and len(batch) >= DRAIN_BATCH)
                ):
                    pending.append(write(batch))
                    batch, flushed, size = [], time.monotonic(), 0
                    await settle(MAX_PENDING_WRITES - 1)
        if batch:
            pending.append(write(batch))
        await settle(0)
    summary.duration = time.monotonic() - start
    return summary
