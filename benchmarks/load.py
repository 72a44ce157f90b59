"""Load: the app under a production server and PostgreSQL, driven by an aiohttp load generator.

    python -m benchmarks load [--dburl postgresql://postgres@127.0.0.1:5432/test]
                              [--num 10000] [--duration 10] [--connections 32] [--rate 200]
                              [--servers gunicorn,cheroot] [--workers 4] [--threads 4]

Creates a database of its own on the server of ``--dburl`` (dropped at the end), seeds a fleet
of ``--num`` instances (``benchmarks.seed``), then, for each server — gunicorn serving
``cephalopod.wsgi:app`` (``--workers`` processes of ``--threads`` threads, gthread; default
1 x 16, as cheroot) and ``cephalopod run``'s cheroot (16 threads) — runs, all on loopback:

1. the ceiling: a bare Flask route returning a small JSON object (``benchmarks.load_ceiling``)
   under the same server setup, closed loop (``--connections`` clients, as fast as they can);
2. ``GET /api/instance/<uuid>`` alone, closed loop, the same way;
3. the mix, closed loop: what an installed base does (registrations, PATCHes and GETs of its
   own record) and what admins do (the list, the statistics, with a token);
4. registrations alone at a fixed rate (``--rate`` per second, open loop: each latency counts
   from the moment the request was due, so a stalled server cannot hide its queue).

It prints requests/s, p50 and p99 per route and errors (any status that is not the
expected one, any failed connection), and checks the targets: ``GET /api/instance/<uuid>``
at >= 0.5x the ceiling's requests/s, registration p99 < 100 ms at 200/s, zero errors.
The generator shares the machine's cores with the servers and PostgreSQL: its own CPU
time is printed, since on 2 cores it is part of what limits the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import sqlalchemy as sa

from benchmarks.fleet import FIELD_SETTINGS, free_port, run_loop
from benchmarks.seed import seed
from benchmarks.stats import database

SERVERS = ("gunicorn", "cheroot")
PHASES = ("ceiling", "get", "mix", "register")
CEILING = "ceiling: bare Flask JSON route"
GET_OWN = "GET /api/instance/<uuid>"
REGISTER = "POST /api/instance/"
PATCH_OWN = "PATCH /api/instance/<uuid>"
LIST = "GET /api/admin/instances"
STATS = "GET /api/admin/statistics"
#: The mix: (route, weight). Installed bases mostly read their record; admins look now and then.
MIX = [(REGISTER, 1), (PATCH_OWN, 1), (GET_OWN, 6), (LIST, 1), (STATS, 1)]
EXPECTED = {REGISTER: 201}
TARGET_RATIO = 0.5
TARGET_P99_MS = 100.0


@dataclass
class Sample:
    """The latencies (seconds) and errors of one route in one phase."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str | None = None

    def add(self, seconds: float, error: str | None) -> None:
        if error is None:
            self.latencies.append(seconds)
        else:
            self.errors += 1
            self.first_error = self.first_error or error


@dataclass
class Result:
    """One row of the report."""

    server: str
    phase: str
    route: str
    requests: int
    rate: float
    p50_ms: float
    p99_ms: float
    errors: int
    first_error: str | None


def percentile(values: list[float], fraction: float) -> float:
    """The value below which ``fraction`` of ``values`` fall (nearest rank)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


class Client:
    """The requests of the benchmark, timed, over one aiohttp session."""

    def __init__(self, session: aiohttp.ClientSession, base: str, token: str, uuids: list[str]):
        self.session = session
        self.base = base
        self.admin = {"Authorization": f"Bearer {token}"}
        self.uuids = uuids
        self.own: list[str] = []  # registered during the run

    async def call(self, route: str, samples: dict[str, Sample], due: float | None = None) -> None:
        """Send one request of ``route``; latency from ``due`` (open loop) or from now."""
        start = time.perf_counter() if due is None else due
        method, path, kwargs = self._request(route)
        error: str | None = None
        try:
            async with self.session.request(method, self.base + path, **kwargs) as response:
                body = await response.read()
                if response.status != EXPECTED.get(route, 200):
                    error = f"{response.status} {body[:200]!r}"
                elif route == REGISTER:
                    self.own.append(json.loads(body)["uuid"])
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        samples[route].add(time.perf_counter() - start, error)

    def _request(self, route: str) -> tuple[str, str, dict[str, Any]]:
        if route == CEILING:
            return "GET", "/ping", {}
        if route == GET_OWN:
            return "GET", f"/api/instance/{random.choice(self.own or self.uuids)}", {}
        if route == PATCH_OWN:
            body = {"contact": f"Contact {random.randrange(10**6)}"}
            return "PATCH", f"/api/instance/{random.choice(self.own or self.uuids)}", {"json": body}
        if route == REGISTER:
            n = uuid.uuid4().hex[:12]
            body = {"url": f"https://load-{n}.example.org", "contact": "Load", "organization":
                    f"Load {n}", "email": f"load-{n}@example.org"}  # fmt: skip
            return "POST", "/api/instance/", {"json": body}
        if route == LIST:
            return "GET", "/api/admin/instances?per_page=20", {"headers": self.admin}
        if route == STATS:
            return "GET", "/api/admin/statistics", {"headers": self.admin}
        raise ValueError(route)


async def closed_loop(
    client: Client, routes: list[tuple[str, int]], connections: int, seconds: float
) -> tuple[dict[str, Sample], float]:
    """``connections`` clients send requests back to back for ``seconds``; (samples, elapsed)."""
    samples: dict[str, Sample] = defaultdict(Sample)
    # each client goes round the mix (its routes as often as their weights say), from its own
    # place in it, and at least once: a short run still sends every route
    cycle = [name for name, weight in routes for _ in range(weight)]
    random.Random(0).shuffle(cycle)
    deadline = time.perf_counter() + seconds

    async def one(offset: int) -> None:
        n = 0
        while n < len(cycle) or time.perf_counter() < deadline:
            await client.call(cycle[(offset + n) % len(cycle)], samples)
            n += 1

    start = time.perf_counter()
    await asyncio.gather(*(one(n) for n in range(connections)))
    return samples, time.perf_counter() - start


async def open_loop(
    client: Client, route: str, rate: float, seconds: float
) -> tuple[dict[str, Sample], float]:
    """Send ``route`` at ``rate`` per second for ``seconds``, whatever the replies do."""
    samples: dict[str, Sample] = defaultdict(Sample)
    count = int(rate * seconds)
    start = time.perf_counter()
    tasks = []
    for n in range(count):
        due = start + n / rate
        pause = due - time.perf_counter()
        if pause > 0:
            await asyncio.sleep(pause)
        tasks.append(asyncio.create_task(client.call(route, samples, due=due)))
    await asyncio.gather(*tasks)
    return samples, time.perf_counter() - start  # requests/s: what the server kept up with


def results(server: str, phase: str, samples: dict[str, Sample], elapsed: float) -> list[Result]:
    """Report rows of a phase's samples."""
    rows = []
    for route, sample in sorted(samples.items()):
        done = sample.latencies
        rows.append(
            Result(
                server,
                phase,
                route,
                len(done) + sample.errors,
                len(done) / elapsed,
                percentile(done, 0.50) * 1000,
                percentile(done, 0.99) * 1000,
                sample.errors,
                sample.first_error,
            )
        )
    return rows


async def drive(
    server: str, app_base: str, ceiling_base: str, token: str, uuids: list[str], args: Any
) -> list[Result]:
    """The four phases against one server (and its ceiling)."""
    timeout = aiohttp.ClientTimeout(total=30)
    rows: list[Result] = []
    seconds, connections = args.duration, args.connections
    limit = max(connections, int(args.rate) * 2)
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit), timeout=timeout
    ) as session:
        ceiling = Client(session, ceiling_base, token, uuids)
        app = Client(session, app_base, token, uuids)
        warm = max(0.2, seconds / 5)
        await closed_loop(ceiling, [(CEILING, 1)], connections, warm)
        await closed_loop(app, MIX, connections, warm)
        phases: list[tuple[str, Awaitable[tuple[dict[str, Sample], float]]]] = [
            ("ceiling", closed_loop(ceiling, [(CEILING, 1)], connections, seconds)),
            ("GET own record", closed_loop(app, [(GET_OWN, 1)], connections, seconds)),
            ("mix", closed_loop(app, MIX, connections, seconds)),
            (f"registrations at {args.rate:g}/s", open_loop(app, REGISTER, args.rate, seconds)),
        ]
        for n, (phase, run) in enumerate(phases):
            if PHASES[n] not in args.phases:
                run.close()  # never awaited: not measured
                continue
            samples, elapsed = await run
            rows += results(server, phase, samples, elapsed)
    return rows


# --- the servers ---------------------------------------------------------------------------------


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Wait until the server accepts connections; fail if it died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.1)
    raise TimeoutError(f"no server on port {port} after {timeout} s")


@contextlib.contextmanager
def serving(command: list[str], port: int, env: dict[str, str], log: Path) -> Iterator[None]:
    """Run a server command until the block ends (SIGTERM, then SIGKILL)."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_for_port(port, process)
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def server_commands(kind: str, port: int, ceiling_port: int, args: Any) -> list[list[str]]:
    """(app server, ceiling server) commands of one kind, configured alike."""
    python = sys.executable
    if kind == "gunicorn":
        common = ["-k", "gthread", "-w", str(args.workers), "--threads", str(args.threads),
                  "--backlog", "2048", "--keep-alive", "5"]  # fmt: skip
        return [
            [python, "-m", "gunicorn", *common, "-b", f"127.0.0.1:{port}", "cephalopod.wsgi:app"],
            [python, "-m", "gunicorn", *common, "-b", f"127.0.0.1:{ceiling_port}",
             "benchmarks.load_ceiling:app"],
        ]  # fmt: skip
    return [
        [python, "-m", "cephalopod", "run", "--host", "127.0.0.1", "--port", str(port)],
        [python, "-m", "benchmarks.load_ceiling", "--port", str(ceiling_port)],
    ]


def prepare(url: str, num: int, folder: Path) -> tuple[dict[str, str], str, list[str]]:
    """Settings, schema, seeded fleet and an admin token; (environment, token, uuids)."""
    settings = folder / "load.cfg"
    settings.write_text(
        f"SQLALCHEMY_DATABASE_URI = {url!r}\n"
        "SECRET_KEY = 'load-benchmark'\n"
        f"CRAWLED_FIELDS_SETTINGS = {FIELD_SETTINGS!r}\n"
        "CELERYBEAT_SCHEDULE = {}\n"  # no crawl during the measurement
        # every registration comes from 127.0.0.1 here; the limiter still runs (its cost counts)
        "REGISTRATION_RATE_LIMIT = '100000000 per hour'\n"
    )
    env = {**os.environ, "CEPHALOPOD_SETTINGS": str(settings),
           "CEPHALOPOD_INSTANCE_PATH": str(folder / "instance")}  # fmt: skip
    os.environ.update(env)
    # here, not at the top: the app is built only now, with the benchmark's settings
    from cephalopod.app import create_app
    from cephalopod.auth.operations import create_token, create_user
    from cephalopod.db import db
    from cephalopod.instances.models import Instance
    from cephalopod.schema import prepare_database
    from cephalopod.services import services

    app = create_app()
    with app.app_context():
        prepare_database()
        seed(db.engine, num, services(app).settings.fields)
        create_user("load", "a-long-load-benchmark-password")
        token = create_token("load")
        uuids = [str(u) for u in db.session.scalars(sa.select(Instance.uuid).limit(5000))]
        db.session.remove()
        db.engine.dispose()
    return env, token, uuids


def cpu_seconds() -> float:
    """CPU seconds of this process (the load generator) so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(args: Any, folder: Path, url: str) -> list[Result]:
    """Prepare, then measure each server."""
    env, token, uuids = prepare(url, args.num, folder)
    rows: list[Result] = []
    for kind in args.servers:
        port, ceiling_port = free_port(), free_port()
        app_command, ceiling_command = server_commands(kind, port, ceiling_port, args)
        log = folder / f"{kind}.log"
        with serving(app_command, port, env, log), serving(ceiling_command, ceiling_port, env, log):
            cpu = cpu_seconds()
            started = time.perf_counter()
            rows += asyncio_run(
                drive(
                    kind,
                    f"http://127.0.0.1:{port}",
                    f"http://127.0.0.1:{ceiling_port}",
                    token,
                    uuids,
                    args,
                )
            )
            print(
                f"[{kind}] load generator CPU: {cpu_seconds() - cpu:.1f} s of "
                f"{time.perf_counter() - started:.1f} s",
                flush=True,
            )
    return rows


def asyncio_run(coro: Awaitable[list[Result]]) -> list[Result]:
    """Run on uvloop when installed (a cheaper client), like the fleet simulator."""
    box: list[list[Result]] = []

    async def main() -> None:
        box.append(await coro)

    run_loop(main())
    return box[0]


def verdicts(rows: list[Result], rate: float) -> list[str]:
    """The targets, checked per server."""
    lines = []
    for kind in dict.fromkeys(row.server for row in rows):
        mine = {(row.phase, row.route): row for row in rows if row.server == kind}
        if len({row.phase for row in rows if row.server == kind}) < len(PHASES):
            continue  # a partial run checks no target
        ceiling = mine[("ceiling", CEILING)].rate
        get = mine[("GET own record", GET_OWN)].rate
        registration = mine[(f"registrations at {rate:g}/s", REGISTER)]
        errors = sum(row.errors for row in rows if row.server == kind)
        ratio = get / ceiling if ceiling else 0.0
        lines.append(
            f"[{kind}] GET own record {get:.0f}/s = {ratio:.2f}x the ceiling's {ceiling:.0f}/s "
            f"(target >= {TARGET_RATIO}x: {'met' if ratio >= TARGET_RATIO else 'MISSED'}); "
            f"registration p99 {registration.p99_ms:.1f} ms at {registration.rate:.0f}/s "
            f"(target < {TARGET_P99_MS:.0f} ms at {rate:g}/s: "
            f"{'met' if registration.p99_ms < TARGET_P99_MS else 'MISSED'}); errors: {errors}"
        )
    return lines


def print_table(rows: list[Result]) -> None:
    """The report: one line per server, phase and route."""
    print(f"{'server':<9} {'phase':<22} {'route':<30} {'requests':>8} {'req/s':>8} "
          f"{'p50 ms':>7} {'p99 ms':>7} {'errors':>6}")  # fmt: skip
    for row in rows:
        print(
            f"{row.server:<9} {row.phase:<22} {row.route:<30} {row.requests:>8} "
            f"{row.rate:>8.0f} {row.p50_ms:>7.1f} {row.p99_ms:>7.1f} {row.errors:>6}"
        )
        if row.first_error:
            print(f"          first error: {row.first_error}")


def main(argv: list[str] | None = None) -> int:
    """Run the load benchmark; exit 1 when a request failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dburl", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--num", type=int, default=10_000, help="instances seeded")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per phase")
    parser.add_argument("--connections", type=int, default=32, help="closed-loop clients")
    parser.add_argument("--rate", type=float, default=200.0, help="registrations per second")
    parser.add_argument("--servers", default=",".join(SERVERS), help="gunicorn,cheroot")
    parser.add_argument("--workers", type=int, default=1, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=16, help="threads per gunicorn worker")
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    parser.add_argument(
        "--phases", default=",".join(PHASES), help="a subset of " + ",".join(PHASES)
    )
    args = parser.parse_args(argv)
    args.servers = [name for name in args.servers.split(",") if name]
    if unknown := set(args.servers) - set(SERVERS):
        parser.error(f"unknown servers: {', '.join(sorted(unknown))}")
    args.phases = [name for name in args.phases.split(",") if name]
    if unknown := set(args.phases) - set(PHASES):
        parser.error(f"unknown phases: {', '.join(sorted(unknown))}")
    if not args.dburl.startswith("postgresql"):
        parser.error("--dburl: a PostgreSQL server (the production database)")
    with tempfile.TemporaryDirectory() as folder, database(args.dburl, keep=False) as url:
        rows = run(args, Path(folder), url)
    print_table(rows)
    lines = verdicts(rows, args.rate)
    for line in lines:
        print(line)
    if args.json:
        payload = {"rows": [row.__dict__ for row in rows], "verdicts": lines}
        args.json.write_text(json.dumps(payload, indent=2))
    return 1 if any(row.errors for row in rows) else 0
