"""The crawl's writer: parses batches of raw replies and stores each in one transaction.

A child process for a crawl of all instances (database work off the event loop's core and
GIL), a thread for small crawls. Knows no HTTP client: it gets `FetchResult` objects.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from functools import partial
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from cephalopod.crawler.config import CrawlConfig
from cephalopod.crawler.models import ChunkDelivery
from cephalopod.crawler.results import FetchResult, decode_result
from cephalopod.crawler.store import BatchOutcome, store_results
from cephalopod.db import check_connections_on_checkout, retrying, sqlite_pragmas
from cephalopod.geo.locate import GeoLocator

log = logging.getLogger(__name__)

WRITER_NICENESS = 10
UNSTORABLE = "the reply could not be stored"
#: Where stored batches are counted: (job id, chunk), see `store_results`.
JobCounter = tuple[str | None, ChunkDelivery | None]

_gc_lock = threading.Lock()
_gc_holders = 0


@contextmanager
def long_lived_objects_frozen() -> Iterator[None]:
    """Hide the objects that exist now from the garbage collector while the block runs.

    A crawl allocates millions of short-lived objects, which keeps triggering collections;
    each full one walks every object of the loaded application (Flask, SQLAlchemy, Celery:
    hundreds of thousands) although none of them is garbage. Measured on the benchmark, that
    was a quarter of the crawl's CPU. Reference counting still frees what the crawl drops;
    only cyclic garbage older than the block waits for its end. Nested uses (a crawl of one
    instance during a crawl of all) unfreeze when the last one ends.
    """
    global _gc_holders
    with _gc_lock:
        _gc_holders += 1
        gc.freeze()
    try:
        yield
    finally:
        with _gc_lock:
            _gc_holders -= 1
            if _gc_holders == 0:
                gc.unfreeze()


# --- the writer: a child process for big crawls, a thread for small ones ---------------------

#: The writer process's own engine, registry and geolocator (set by its initializer).
_process_state: dict[str, Any] = {}


def _init_writer_process(config: CrawlConfig) -> None:
    """Set up a writer process: its own engine and geolocator, no Flask app needed.

    It runs at a lower CPU priority: the fetches are latency-bound and must not wait for a
    core, while storing can use whatever the fetches leave idle (batches queue meanwhile).
    """
    os.nice(WRITER_NICENESS)
    # the parent decides when the writer ends (after the batches it was handed are stored):
    # a SIGTERM or Ctrl-C sent to the whole process group (systemd's default) must not kill
    # it under the parent's feet; it still ends with its parent, when its queue closes
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    engine = sa.create_engine(config.database_uri, **config.engine_options)
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", sqlite_pragmas)
    check_connections_on_checkout(engine)  # across a database restart
    locator = GeoLocator.from_config(config.geoip_database, config.geoip_dir)
    _process_state.update(engine=engine, config=config, locator=locator)
    gc.freeze()  # this process lives for one crawl: see long_lived_objects_frozen


def _store(
    engine: Engine,
    config: CrawlConfig,
    locator: GeoLocator | None,
    job: JobCounter,
    batch: list[FetchResult[int]],
) -> BatchOutcome:
    """Parse the batch's raw replies and store the batch in one transaction.

    JSON is parsed here, in the writer, rather than by the fetcher: that is CPU the event
    loop's core does not have to spare.
    """
    for result in batch:
        decode_result(result, config.endpoints, config.limits)
    # a database restarting or unreachable: the batch is one transaction, stored whole or
    # not at all, so it is tried again until the database is back (or the retries run out,
    # and the crawl fails: nothing of this batch is stored)
    return retrying(_write, what=f"storing {len(batch)} crawl results")(
        engine, config, locator, job, batch
    )


def _write(
    engine: Engine,
    config: CrawlConfig,
    locator: GeoLocator | None,
    job: JobCounter,
    batch: list[FetchResult[int]],
) -> BatchOutcome:
    dbapi = engine.dialect.loaded_dbapi
    # what the database refuses in the data itself (the hot path uses the driver directly),
    # or the driver before sending it (UnicodeEncodeError and other ValueErrors): the
    # fetcher's checks should leave neither, but one reply must never stop the crawl
    refused = (
        sa.exc.DataError,
        sa.exc.IntegrityError,
        dbapi.DataError,
        dbapi.IntegrityError,
        ValueError,
    )
    watch = config.report_failing_after
    try:
        with engine.begin() as conn:
            return store_results(conn, batch, config.registry, locator, *job, failing_after=watch)
    except refused as exc:
        # Something in one reply the database refuses: it must not cost the others theirs.
        log.warning(
            "storing %d crawl results failed (%s); storing them one by one", len(batch), exc
        )
    outcome = BatchOutcome()
    for result in batch:
        try:
            with engine.begin() as conn:
                stored = store_results(
                    conn, [result], config.registry, locator, *job, failing_after=watch
                )
        except refused as exc:
            log.warning("the crawl result of instance %s cannot be stored: %s", result.key, exc)
            failed = replace(result, ok=False, data=None, error=UNSTORABLE, bodies=None)
            with engine.begin() as conn:
                stored = store_results(
                    conn, [failed], config.registry, locator, *job, failing_after=watch
                )
        outcome.add(stored)
    return outcome


def _store_in_process(job: JobCounter, batch: list[FetchResult[int]]) -> BatchOutcome:
    state = _process_state
    return _store(state["engine"], state["config"], state["locator"], job, batch)


def writer(
    config: CrawlConfig,
    engine: Engine,
    locator: GeoLocator,
    job: JobCounter,
    use_process: bool,
) -> tuple[Executor, Callable[[list[FetchResult[int]]], BatchOutcome]]:
    """Return (executor, store function); ``job`` is where batches count (job id, chunk).

    A child process keeps database work off the event loop's core and GIL, which is what
    lets a big crawl keep up with the network; a daemonic process (a Celery worker child)
    may not have one, and a crawl of a few instances is not worth starting one.
    """
    if use_process and not multiprocessing.current_process().daemon:
        # fork is instant and shares the imported code, but is only safe while this process
        # has a single thread (the CLI); a server's threads may hold locks a fork would copy
        method = "fork" if threading.active_count() == 1 else "spawn"
        executor: Executor = ProcessPoolExecutor(
            1,
            mp_context=multiprocessing.get_context(method),
            initializer=_init_writer_process,
            initargs=(config,),
        )
        executor.submit(int)  # start the process now: it boots while the first fetches run
        log.debug("The crawl's writer is a child process (%s)", method)
        return executor, partial(_store_in_process, job)
    executor = ThreadPoolExecutor(1, thread_name_prefix="crawl-writer")
    return executor, partial(_store, engine, config, locator, job)
