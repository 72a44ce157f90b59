"""A small cache of computed statistics, keyed by everything they are a function of.

Statistics depend on the field settings (their fingerprint), the status asked for and the
data. The data's part of the key is read from the database on every request, cheaply:

- ``data_version``: a token in ``meta`` that writers replace in the transaction that changes
  what statistics count (``touch_data_version``): the crawl store, the recompute of display
  values, and (through the operation signals) registration, edit and deletion;
- a guard computed from ``instances`` through indexes: the number of rows and the largest
  id, which also move when a registration or a deletion forgets the token. (The latest crawl
  attempt is not part of it: ``last_crawl_at`` has no index, so that crawls can update
  their rows in place, and the crawl store always replaces the token.)

A page view after a change therefore costs one computation, later ones a dictionary look-up.
The cache lives in the process (each web worker has its own) and an entry is never served
after ``MAX_AGE`` seconds, the bound on staleness for writes that bypass both (manual SQL).

Parts that a crawl never changes — which instances are registered, when, and which are
enabled — are cached apart (``cached_registry``), keyed by ``registry_version`` (replaced
by registration, edit and deletion only) and the guard: the first statistics after a crawl
batch recompute the charts and countries, not the registrations. (An entry may then be used
by a result cached later: the bound for writes that bypass the tokens is twice MAX_AGE.)
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from cephalopod.db import Meta, db
from cephalopod.instances.models import Instance
from cephalopod.instances.operations import instance_deleted, instance_updated
from cephalopod.services import services

DATA_VERSION = "data_version"
REGISTRY_VERSION = "registry_version"
VERSIONS = (DATA_VERSION, REGISTRY_VERSION)
MAX_AGE = 60.0
MAX_ENTRIES = 16

T = TypeVar("T")

meta = Meta.__table__
instances = Instance.__table__


def _touch(conn: Connection, *keys: str) -> None:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    insert = dialect.insert(meta).values([{"key": key, "value": uuid.uuid4().hex} for key in keys])
    conn.execute(
        insert.on_conflict_do_update(
            index_elements=[meta.c.key], set_={"value": insert.excluded.value}
        )
    )


def touch_data_version(conn: Connection) -> None:
    """Mark the data as changed, inside the caller's transaction (after its writes)."""
    _touch(conn, DATA_VERSION)


class DataState(NamedTuple):
    """The part of the cache key that moves whenever the counted data changes."""

    data: str | None  #: ``data_version``
    registry: str | None  #: ``registry_version``
    rows: int  #: the guard: rows in ``instances`` and the largest id
    largest: int | None

    def registry_key(self) -> tuple[Any, ...]:
        """The part that moves when instances are registered, edited or deleted."""
        return (self.registry, self.rows, self.largest)


def data_state() -> DataState:
    """Read the tokens and the guard (two index look-ups)."""
    tokens = dict(
        db.session.execute(
            sa.select(meta.c.key, meta.c.value).where(meta.c.key.in_(VERSIONS))
        ).all()
    )
    rows, largest = db.session.execute(
        sa.select(sa.func.count(), sa.func.max(instances.c.id))
    ).one()
    return DataState(tokens.get(DATA_VERSION), tokens.get(REGISTRY_VERSION), rows, largest)


class StatsCache:
    """Computed results by key, the newest MAX_ENTRIES, each at most MAX_AGE seconds old."""

    def __init__(self) -> None:
        self._entries: OrderedDict[tuple[Any, ...], tuple[float, object]] = OrderedDict()
        self._lock = threading.Lock()

    def get_or_compute(self, key: tuple[Any, ...], compute: Callable[[], T]) -> T:
        """Return the cached value of ``key``, computing and keeping it when absent or old."""
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and now - entry[0] < MAX_AGE:
                self._entries.move_to_end(key)
                return cast(T, entry[1])  # the key names the computation that stored it
        value = compute()  # outside the lock: two misses may compute twice, never block
        with self._lock:
            self._entries[key] = (now, value)
            self._entries.move_to_end(key)
            while len(self._entries) > MAX_ENTRIES:
                self._entries.popitem(last=False)
        return value

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._entries.clear()


def cached(
    name: str,
    parts: tuple[Any, ...],
    compute: Callable[[], T],
    state: DataState | None = None,
) -> T:
    """Return ``compute()`` for (name, parts, data state), from the app's cache.

    ``state`` is the ``data_state()`` the caller read already (else it is read here).
    """
    key = (name, *parts, *(state or data_state()))
    return services().stats_cache.get_or_compute(key, compute)


def cached_registry(name: str, compute: Callable[[], T], state: DataState) -> T:
    """Return ``compute()``, a function of the registered instances that no crawl changes."""
    return services().stats_cache.get_or_compute((name, *state.registry_key()), compute)


def _on_instance_change(sender: Any, **_extra: Any) -> None:
    with db.engine.begin() as conn:
        _touch(conn, DATA_VERSION, REGISTRY_VERSION)


def connect_signals() -> None:
    """Replace both tokens after every edit and deletion of an instance.

    Not after a registration: it moves the guard of `data_state` (the count and the largest
    id) already. Touching the version too cost each registration a second commit on the one
    ``meta`` row that every registration then waited for (measured: registrations queued
    behind each other's fsync at 200/s).
    """
    for signal in (instance_updated, instance_deleted):
        signal.connect(_on_instance_change, weak=False)
