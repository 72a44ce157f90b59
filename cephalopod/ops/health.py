"""Is the hub able to work? The database answers, and the broker when one is configured.

Cheap on purpose, so that a load balancer may poll it every few seconds: ``SELECT 1`` over
the pool and a broker ``PING`` on a kept connection. Bounded on purpose, so that a server
that does not answer makes a quick 503 rather than a hung poll: each probe runs in a thread
of its own and is waited for at most its part's timeout, whatever hangs (a connect, a full
pool, a query to a frozen server); the thread of a probe that hangs is not started again
until it returns (the drivers' own connect timeouts end it), so polls cost no thread each.
The answer names the part that failed and the kind of failure (an exception's class), never
an address, a credential or anything about instances: it is served without login. The full
error goes to the log, once when a part fails and once when it recovers.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

log = logging.getLogger(__name__)

#: Seconds a broker may take to connect and to answer the ping.
BROKER_TIMEOUT = 1.0
#: Seconds the database may take to hand out a connection and answer ``SELECT 1`` (a new
#: PostgreSQL connection forks a server process: more than a broker's ping).
DATABASE_TIMEOUT = 2.0
#: What the wait for a probe's thread adds to the probe's own timeout (its driver's
#: timeout, when it has one, fires first and names the failure).
GRACE = 0.5
REDIS_SCHEMES = ("redis", "rediss", "unix")


@dataclass(frozen=True)
class Check:
    """The outcome of checking one part."""

    name: str
    ok: bool
    seconds: float
    error: str | None = None  # the exception's class: served
    detail: str | None = None  # its message: logged, never served

    def as_json(self) -> dict[str, Any]:
        """The part's entry in the reply."""
        entry: dict[str, Any] = {"status": "ok" if self.ok else "fail"}
        if self.error:
            entry["error"] = self.error
        entry["seconds"] = round(self.seconds, 4)
        return entry


def run_check(name: str, probe: Callable[[], object]) -> Check:
    """Time ``probe``; any exception is this part's failure."""
    start = time.perf_counter()
    try:
        probe()
    except Exception as exc:
        return Check(name, False, time.perf_counter() - start, type(exc).__name__, str(exc))
    return Check(name, True, time.perf_counter() - start)


def database_probe(engine: Callable[[], sa.Engine]) -> Callable[[], object]:
    """``SELECT 1`` on a pooled connection (pre-pinged on PostgreSQL) of ``engine()``."""

    def probe() -> object:
        with engine().connect() as conn:
            return conn.execute(sa.text("SELECT 1")).scalar_one()

    return probe


def broker_probe(url: str, timeout: float = BROKER_TIMEOUT) -> Callable[[], object]:
    """A ping of the broker at ``url`` that gives up after ``timeout`` seconds.

    Redis is asked with redis-py on a connection kept between polls; another broker
    (RabbitMQ...) is connected to with kombu, Celery's own transport library.
    """
    scheme = url.partition("://")[0].lower()
    # imported here, not at the top: only a hub with a broker checks one, and it imports
    # Celery (which brings these) anyway; the others would pay 70 ms for nothing
    if scheme in REDIS_SCHEMES:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        client = redis.Redis.from_url(
            url,
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
            retry=Retry(NoBackoff(), 0),  # one try: the poller asks again soon enough
            health_check_interval=0,
        )
        return client.ping

    import kombu

    def probe() -> object:
        with kombu.Connection(url, connect_timeout=timeout) as conn:
            conn.ensure_connection(max_retries=1)  # connect_timeout bounds the try
        return True

    return probe


class _Flight:
    """One run of a probe in a thread of its own; every caller meanwhile waits for it."""

    def __init__(self, name: str, probe: Callable[[], object]) -> None:
        self.started = time.monotonic()
        self.done = threading.Event()
        self.error: BaseException | None = None
        context = contextvars.copy_context()  # the caller's app context (Flask: contextvars)

        def run() -> None:
            try:
                context.run(probe)
            except BaseException as exc:  # the caller re-raises it as the part's failure
                self.error = exc
            finally:
                self.done.set()

        threading.Thread(target=run, name=f"cephalopod-health-{name}", daemon=True).start()


class Bounded:
    """Wrap a probe so that a call returns within ``timeout`` seconds, or raises TimeoutError.

    One run at a time: a call while a run is under way waits for that run (until its own
    deadline); a run that overran its deadline fails every call at once until it returns.
    """

    def __init__(self, name: str, probe: Callable[[], object], timeout: float) -> None:
        self.name = name
        self.probe = probe
        self.timeout = timeout
        self._flight: _Flight | None = None
        self._lock = threading.Lock()

    def __call__(self) -> None:
        with self._lock:
            flight = self._flight
            if flight is None or flight.done.is_set():
                flight = self._flight = _Flight(self.name, self.probe)
        remaining = flight.started + self.timeout - time.monotonic()
        if not flight.done.wait(max(0.0, remaining)):
            raise TimeoutError(f"no answer within {self.timeout:g} s")
        if flight.error is not None:
            raise flight.error


class Health:
    """The probes of one app, and what each last answered (to log changes, not every poll)."""

    def __init__(self, probes: dict[str, Callable[[], object]]) -> None:
        self.probes = probes
        self._failing: set[str] = set()
        self._lock = threading.Lock()

    @classmethod
    def for_app(cls, engine: Callable[[], sa.Engine], broker_url: str | None) -> Health:
        """The database, plus the broker when one is configured."""
        probes: dict[str, Callable[[], object]] = {
            "database": Bounded("database", database_probe(engine), DATABASE_TIMEOUT)
        }
        if broker_url:
            probe = broker_probe(broker_url, BROKER_TIMEOUT)
            probes["broker"] = Bounded("broker", probe, BROKER_TIMEOUT + GRACE)
        return cls(probes)

    def check(self) -> list[Check]:
        """Check every part now, one after the other."""
        checks = [run_check(name, probe) for name, probe in self.probes.items()]
        self._log_changes(checks)
        return checks

    def _log_changes(self, checks: Iterable[Check]) -> None:
        with self._lock:
            for check in checks:
                if not check.ok and check.name not in self._failing:
                    self._failing.add(check.name)
                    reason = f"{check.error}: {check.detail}"
                    log.warning("Health: the %s fails: %s", check.name, reason)
                elif check.ok and check.name in self._failing:
                    self._failing.discard(check.name)
                    log.warning("Health: the %s answers again", check.name)


def report(checks: Iterable[Check]) -> tuple[dict[str, Any], int]:
    """The JSON reply and its status: 200 when every part answered, else 503."""
    checks = list(checks)
    failed = [c.name for c in checks if not c.ok]
    body: dict[str, Any] = {"status": "fail" if failed else "ok"}
    if failed:
        body["failed"] = failed
    body["checks"] = {c.name: c.as_json() for c in checks}
    return body, 503 if failed else 200
