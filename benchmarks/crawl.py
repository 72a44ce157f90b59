"""Crawl benchmark: ``cephalopod crawl`` as a whole command on a local fleet.

    python -m benchmarks crawl --num 10000 [--dburl postgresql] [--latency 0.02] [--rounds 3]
    python -m benchmarks crawl --realistic --num 10000 [--seed 1] [--dburl postgresql]

Starts the fleet simulator in its own process. Each round registers the instances in a
fresh database and times the real ``cephalopod crawl`` command in a subprocess twice, from
its start to its exit (interpreter, imports, schema check and writer included): the first
crawl, which stores everything anew, and the daily recrawl, which finds the same values.
While a crawl runs, the memory of the command and its writer process is sampled: the peak of
their RSS added up (an upper bound: the forked writer shares pages with its parent).

With a fixed latency (default 20 ms: CPU-bound), a bare client (same library, same
concurrency, no database; `benchmarks.bare`, in a fresh process) fetching every instance's
endpoints runs right before and right after each crawl, and each crawl is compared with the
mean of the two: this machine's speed drifts by 10 % and more within a minute, which a single
reference run would count against one side. Ratios are bare client / crawl: above 1, faster.

``--realistic`` serves a seeded `FleetPlan` (internet latencies, hanging, refusing and failing
instances: latency-bound) and compares each crawl with the fleet's ideal time (the ratio is
crawl / ideal: 1 at best), and with the best any crawler starting the instances in order can
do (`in_order_seconds`: the ideal does not know that the slowest ones start late), and with
the bare client on the same fleet (run before and after, as above: the machine's load slows
both alike).
Prints the figures of every round, the median ratios, the CPU seconds (the crawl's own, its
writer's and the PostgreSQL server's), and the peak memory.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import redis
import sqlalchemy as sa
from celery import Celery

from benchmarks.fleet import (
    ENDPOINTS,
    FIELD_SETTINGS,
    REFUSES,
    SERVERS,
    FleetPlan,
    describe,
    free_port,
    ideal_seconds,
    in_order_seconds,
)
from cephalopod.schedule import CRAWL_ALL

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
RSS_SAMPLE_SECONDS = 0.05


@dataclass
class Bare:
    """One run of the bare client: seconds it reports, wall seconds of its process, CPU."""

    inner: float
    wall: float
    cpu: float


def time_bare_client(fleet: Fleet) -> Bare:
    """Run the bare client (`benchmarks.bare`) on the fleet in a fresh process; measure it."""
    command = [sys.executable, "-m", "benchmarks.bare", fleet.base, str(len(fleet.urls))]
    command.append(str(fleet.concurrency))
    if fleet.plan is not None:
        command += ["--seed", str(fleet.plan.seed), "--timeout", str(fleet.timeout)]
        command += ["--refused", fleet.refused or fleet.base]
    start = time.perf_counter()
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    wall = time.perf_counter() - start
    seconds, cpu = out.strip().splitlines()[-1].split()
    return Bare(float(seconds), wall, float(cpu))


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:  # ended meanwhile
        pass
    return 0


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{current}/task"):
                children = Path(f"/proc/{current}/task/{task}/children").read_text().split()
                todo += map(int, children)
    return found


class RssSampler:
    """Sample the RSS of a process and its descendants until stopped (Linux only).

    Keeps the peak of their sum and of the largest single process, in MB.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_total = self.peak_single = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            sizes = [_rss_kib(pid) / 1024 for pid in _descendants(self.pid)]
            self.peak_total = max(self.peak_total, sum(sizes))
            self.peak_single = max(self.peak_single, max(sizes, default=0.0))
            self._stop.wait(RSS_SAMPLE_SECONDS)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def postgres_cpu() -> float | None:
    """CPU seconds used so far by the local PostgreSQL server's processes (Linux only).

    Ended backends count too: their parent, the postmaster, has collected their usage.
    """
    total, found, tick = 0.0, False, os.sysconf("SC_CLK_TCK")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() != "postgres":
                continue
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile, or not Linux
            continue
        total += sum(int(value) for value in fields[11:15]) / tick  # utime stime cutime cstime
        found = True
    return total if found else None


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    """Wait until the fleet accepts connections."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"fleet did not start on port {port}")


def seed(dburl: str, urls: Sequence[str], env: dict[str, str]) -> None:
    """Create the schema with the CLI, then bulk-insert an instance per URL."""
    subprocess.run(
        [sys.executable, "-m", "cephalopod", "db", "create"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    from cephalopod.instances.models import Instance  # column defaults fill the timestamps

    engine = sa.create_engine(dburl)
    table = Instance.__table__
    rows = [
        {
            "uuid": uuid.uuid4(),
            "url": url,
            "url_key": f"i/{n}",
            "contact": "Bench",
            "email": "bench@example.org",
            "organization": f"Org {n}",
            "enabled": True,
            "crawl_status": "never",
            "consecutive_failures": 0,
        }
        for n, url in enumerate(urls)
    ]
    with engine.begin() as conn:
        for start in range(0, len(rows), 5000):
            conn.execute(table.insert(), rows[start : start + 5000])
    engine.dispose()


@contextlib.contextmanager
def fresh_database(dburl: str | None, tmp: str) -> Iterator[str]:
    """Yield the URL of a fresh database: SQLite in tmp, or a new local PostgreSQL one."""
    if dburl is None:
        yield f"sqlite:///{tmp}/bench.db"
        return
    if dburl != "postgresql":
        yield dburl
        return
    name = f"cephalopod_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Fleet:
    """A running fleet simulator, as the crawls see it."""

    urls: list[str]
    base: str
    concurrency: int
    timeout: float
    plan: FleetPlan | None = None
    refused: str | None = None  # base URL of the refused instances


def crawl_twice(
    dburl: str | None, fleet: Fleet, workers: int = 0
) -> tuple[list[Bare], list[Crawl]]:
    """Seed a fresh database with the fleet and time ``cephalopod crawl`` twice.

    The first crawl stores everything anew; the second is the daily recrawl, which finds
    the same values. The bare client runs before, between and after them.
    With ``workers``, Celery workers crawl instead (`CeleryWorkers`).
    Returns the bare client's runs and each crawl's figures.
    """
    with tempfile.TemporaryDirectory() as tmp, fresh_database(dburl, tmp) as url:
        settings = Path(tmp) / "bench.cfg"
        settings.write_text(
            f"SQLALCHEMY_DATABASE_URI = {url!r}\nSECRET_KEY = 'bench'\n"
            f"CRAWLING_ENDPOINTS = {ENDPOINTS!r}\n"
            f"CRAWLED_FIELDS_SETTINGS = {FIELD_SETTINGS!r}\n"
            f"CRAWLER_ALLOWED_NETWORKS = ['127.0.0.0/8']\n"
            f"CRAWLER_CONCURRENCY = {fleet.concurrency // max(workers, 1)}\n"
            f"CRAWLER_TOTAL_TIMEOUT = {fleet.timeout!r}\n"
            + (f"CELERY_BROKER_URL = {BROKER!r}\nCELERYBEAT_SCHEDULE = {{}}\n" if workers else "")
        )
        env = {**os.environ, "CEPHALOPOD_SETTINGS": str(settings), "CEPHALOPOD_INSTANCE_PATH": tmp}
        seed(url, fleet.urls, env)
        num = len(fleet.urls)
        bare = [time_bare_client(fleet)]
        if fleet.plan is None:
            expected_ok = num
        else:
            expected_ok = sum(fleet.plan.succeeds(n, fleet.timeout) for n in range(num))
        crawls = []
        with contextlib.ExitStack() as stack:
            celery = stack.enter_context(CeleryWorkers(env, url, workers)) if workers else None
            for _ in range(2):
                if celery is None:
                    crawls.append(run_crawl(env, num, expected_ok, url.startswith("postgresql")))
                else:
                    crawls.append(celery.crawl(num, expected_ok))
                bare.append(time_bare_client(fleet))
        return bare, crawls


#: The benchmark's own Redis database (the tests use 13 to 15).
BROKER = "redis://127.0.0.1:6379/11"


class CeleryWorkers:
    """``workers`` Celery worker processes (``cephalopod runworker 1 --no-beat``, one crawl
    slot each, ``CRAWLER_CONCURRENCY`` split between them), started once for both crawls.

    A crawl is ``crawl_all`` sent to the broker, as beat sends it, timed from the send to
    the job's end in the database: the whole distributed crawl, chunking and the last
    chunk's tail included. No CPU or memory figures: those are the workers'.
    """

    def __init__(self, env: dict[str, str], url: str, workers: int) -> None:
        self.env, self.url, self.workers = env, url, workers
        self.processes: list[subprocess.Popen[bytes]] = []
        self.engine = sa.create_engine(url)

    def __enter__(self) -> CeleryWorkers:
        redis.Redis.from_url(BROKER).flushdb()
        for _ in range(self.workers):
            self.processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "cephalopod", "runworker", "1", "--no-beat"],
                    env=self.env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
        self.celery = Celery(broker=BROKER, set_as_current=False)
        time.sleep(3)  # the workers connect to the broker (a task sent earlier waits anyway)
        return self

    def __exit__(self, *_exc: object) -> None:
        for process in self.processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        self.engine.dispose()

    def _jobs(self) -> list[Any]:
        query = sa.text("SELECT id, state, done, ok, failed FROM crawl_jobs")
        with self.engine.connect() as conn:
            return list(conn.execute(query))

    def crawl(self, num: int, expected_ok: int) -> Crawl:
        """Send crawl_all and wait for its job to end."""
        before = {row.id for row in self._jobs()}
        start = time.perf_counter()
        self.celery.send_task(CRAWL_ALL)
        while True:
            time.sleep(0.05)
            new = [row for row in self._jobs() if row.id not in before]
            if new and new[0].state not in ("queued", "running"):
                break
            if time.perf_counter() - start > 3600:
                raise SystemExit("the Celery crawl did not end within an hour")
        wall = time.perf_counter() - start
        job = new[0]
        if job.state != "done" or job.done != num:
            raise SystemExit(f"the Celery crawl ended {job.state} with {job.done} of {num}")
        if not expected_ok - BORDERLINE * num <= job.ok <= expected_ok:
            raise SystemExit(f"unexpected outcome: {job.ok} ok; {expected_ok} ok expected")
        return Crawl(wall, wall, 0.0, None, 0.0, 0.0)


@dataclass
class Crawl:
    """One ``cephalopod crawl`` measured: seconds it reports, wall seconds of the command,
    CPU seconds it reports (its writer included), CPU seconds of the PostgreSQL server, peak
    RSS of the command and its writer added up and of the largest one (MB)."""

    inner: float
    wall: float
    cpu: float
    postgres_cpu: float | None
    rss_total: float
    rss_single: float

    @property
    def start_up(self) -> float:
        """Wall seconds of the command outside the crawl it reports."""
        return self.wall - self.inner


#: Instances whose latency is this close to the timeout may or may not make it.
BORDERLINE = 0.02


def run_crawl(env: dict[str, str], num: int, expected_ok: int, on_postgres: bool) -> Crawl:
    """Run ``cephalopod crawl`` and measure it (and the local PostgreSQL server it uses)."""
    server = postgres_cpu() if on_postgres else None
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "cephalopod", "crawl"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    sampler = RssSampler(process.pid)
    out, err = process.communicate()
    wall = time.perf_counter() - start
    sampler.stop()
    if process.returncode:
        raise SystemExit(f"cephalopod crawl failed ({process.returncode}):\n{out}\n{err}")
    server_after = postgres_cpu() if on_postgres else None
    match = re.search(
        r"in ([\d.]+) s \(([\d.]+)/s\): (\d+) ok, (\d+) failed \(CPU ([\d.]+) s\)", out
    )
    if match is None:
        raise SystemExit(f"unexpected crawl output:\n{out}")
    ok, failed = int(match[3]), int(match[4])
    # the rate has more significant digits than the printed duration
    inner = num / float(match[2]) if float(match[2]) else float(match[1])
    if ok + failed != num or not expected_ok - BORDERLINE * num <= ok <= expected_ok:
        raise SystemExit(f"unexpected outcome: {ok} ok, {failed} failed; {expected_ok} ok expected")
    used = None if server is None or server_after is None else server_after - server
    return Crawl(inner, wall, float(match[5]), used, sampler.peak_total, sampler.peak_single)


def start_fleet(
    num: int, latency: float, server: str, plan: FleetPlan | None, concurrency: int, timeout: float
) -> tuple[subprocess.Popen[bytes], Fleet]:
    """Start the fleet simulator in its own process; return it and the fleet's URLs."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "benchmarks.fleet", "--port", str(port), "--server", server]
    urls = [f"{base}/i/{n}" for n in range(num)]
    refused = None
    if plan is None:
        command += ["--latency", str(latency)]
    else:
        refuse_port = free_port()
        command += ["--realistic", "--num", str(num), "--seed", str(plan.seed)]
        command += ["--refuse-port", str(refuse_port), "--concurrency", str(concurrency)]
        command += ["--timeout", str(timeout)]
        refused = f"http://127.0.0.1:{refuse_port}"
        urls = [
            f"{refused}/i/{n}" if kind == REFUSES else url
            for n, (kind, url) in enumerate(zip(plan.kinds, urls, strict=True))
        ]
    fleet = subprocess.Popen(command)
    wait_for_port(port)
    return fleet, Fleet(urls, base, concurrency, timeout, plan, refused)


def run(
    num: int,
    dburl: str | None,
    latency: float,
    concurrency: int,
    rounds: int,
    server: str,
    seed: int | None = None,
    timeout: float = 15.0,
    workers: int = 0,
) -> None:
    """Run the rounds and print the comparison."""
    plan = None if seed is None else FleetPlan.draw(num, seed)
    process, fleet = start_fleet(num, latency, server, plan, concurrency, timeout)
    try:
        engine = "sqlite" if dburl is None else dburl.split(":", 1)[0]
        endpoints = len(ENDPOINTS)
        if plan is None:
            print(
                f"fleet ({server} server): {num} instances x {endpoints} endpoints,"
                f" latency {latency * 1000:.0f} ms, concurrency {concurrency}; database {engine}"
            )
            ideal = in_order = 0.0
        else:
            ideal = ideal_seconds(plan, concurrency, endpoints, timeout)
            in_order = in_order_seconds(plan, concurrency, endpoints, timeout)
            print(f"{describe(plan, concurrency, endpoints, timeout)}; database {engine}")
            if workers:
                print(f"crawled by {workers} Celery workers of {concurrency // workers} slots")
            print(f"a perfect crawler starting them in order: {in_order:.2f} s")
        kinds = ("first crawl", "recrawl")
        ratios: dict[str, list[float]] = {kind: [] for kind in kinds}
        inner_ratios: dict[str, list[float]] = {kind: [] for kind in kinds}
        bare_ratios: dict[str, list[float]] = {kind: [] for kind in kinds}
        cpus: dict[str, list[float]] = {"bare client": [], **{kind: [] for kind in kinds}}
        start_ups: list[float] = []
        rss_total = rss_single = 0.0
        for n in range(1, rounds + 1):
            bares, crawls = crawl_twice(dburl, fleet, workers)
            cpus["bare client"] += [b.cpu for b in bares]
            print(
                f"round {n}: bare client {' / '.join(f'{b.inner:.2f}' for b in bares)} s"
                f" ({' / '.join(f'{b.wall:.2f}' for b in bares)} s as a whole process;"
                f" CPU {' / '.join(f'{b.cpu:.2f}' for b in bares)} s)"
            )
            for i, (kind, crawl) in enumerate(zip(kinds, crawls, strict=True)):
                cpu = crawl.cpu + (crawl.postgres_cpu or 0.0)
                cpus[kind].append(cpu)
                start_ups.append(crawl.start_up)
                rss_total = max(rss_total, crawl.rss_total)
                rss_single = max(rss_single, crawl.rss_single)
                pg = "" if crawl.postgres_cpu is None else f" + server {crawl.postgres_cpu:.2f}"
                head = (
                    f"  {kind:11}: {crawl.wall:6.2f} s whole command ({crawl.inner:.2f} s"
                    f" crawling, {crawl.start_up:.2f} s besides)"
                )
                bare = statistics.mean(b.inner for b in bares[i : i + 2])  # before and after
                if plan is None:
                    ratios[kind].append(bare / crawl.wall)
                    inner_ratios[kind].append(bare / crawl.inner)
                    versus = (
                        f" | bare {bare:.2f} s: ratio {bare / crawl.wall:.3f}"
                        f" (crawling alone {bare / crawl.inner:.3f})"
                    )
                else:
                    ratios[kind].append(crawl.wall / ideal)
                    inner_ratios[kind].append(crawl.wall / in_order)
                    bare_ratios[kind].append(crawl.wall / bare)
                    versus = (
                        f" | {crawl.wall / ideal:.3f} x ideal,"
                        f" {crawl.wall / in_order:.3f} x in order,"
                        f" {crawl.wall / bare:.3f} x the bare client's {bare:.2f} s"
                    )
                if workers:  # sent to the broker, timed to the job's end: no process of ours
                    print(f"  {kind:11}: {crawl.wall:6.2f} s to the job's end{versus}")
                    continue
                print(
                    f"{head}{versus} | CPU {crawl.cpu:.2f}{pg} s"
                    f" | RSS {crawl.rss_total:.0f} MB ({crawl.rss_single:.0f} MB largest)"
                )
        for kind in kinds:
            kept, alone = ratios[kind], inner_ratios[kind]
            if plan is None:
                print(
                    f"{kind}, median of {rounds}: whole command {statistics.median(kept):.3f} x"
                    f" the bare client's throughput (min {min(kept):.3f}, max {max(kept):.3f});"
                    f" crawling alone {statistics.median(alone):.3f} x"
                    f" ({min(alone):.3f}-{max(alone):.3f})"
                )
            else:
                print(
                    f"{kind}, median of {rounds}: {statistics.median(kept):.3f} x the ideal"
                    f" {ideal:.2f} s (min {min(kept):.3f}, max {max(kept):.3f});"
                    f" {statistics.median(alone):.3f} x in order"
                    f" ({min(alone):.3f}-{max(alone):.3f});"
                    f" {statistics.median(bare_ratios[kind]):.3f} x the bare client's time"
                    f" ({min(bare_ratios[kind]):.3f}-{max(bare_ratios[kind]):.3f})"
                )
        if workers:
            return
        print(
            f"start-up and shutdown besides the crawl, median: {statistics.median(start_ups):.2f} s"
            f" ({min(start_ups):.2f}-{max(start_ups):.2f})"
        )
        print(
            "CPU seconds, median (the crawl's own and its writer's, plus PostgreSQL's server"
            " processes if local; the fleet simulator's not included): "
            + ", ".join(f"{k} {statistics.median(v):.2f}" for k, v in cpus.items() if v)
        )
        print(
            f"peak RSS of the command and its writer added up: {rss_total:.0f} MB"
            f" (largest single process {rss_single:.0f} MB)"
        )
    finally:
        process.terminate()
        process.wait(10)


def main(argv: list[str] | None = None) -> None:
    """Parse the arguments and run the benchmark."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks crawl", description=__doc__)
    parser.add_argument("--num", type=int, default=10000)
    parser.add_argument(
        "--dburl",
        default=None,
        help="database URL; 'postgresql' for a fresh local database; default SQLite",
    )
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3, help="fresh databases to crawl twice")
    parser.add_argument(
        "--server",
        choices=SERVERS,
        default=SERVERS[0],
        help="the fleet's HTTP server (see benchmarks.fleet)",
    )
    parser.add_argument(
        "--realistic", action="store_true", help="a seeded realistic fleet (benchmarks.fleet)"
    )
    parser.add_argument("--seed", type=int, default=1, help="of the realistic fleet")
    parser.add_argument("--timeout", type=float, default=15.0, help="CRAWLER_TOTAL_TIMEOUT")
    parser.add_argument(
        "--celery",
        type=int,
        default=0,
        metavar="WORKERS",
        help="crawl with this many Celery workers (Redis db 11) sharing the concurrency",
    )
    args = parser.parse_args(argv)
    if args.celery and args.dburl is None:
        parser.error("--celery needs --dburl postgresql (workers share the database)")
    seed = args.seed if args.realistic else None
    run(
        args.num,
        args.dburl,
        args.latency,
        args.concurrency,
        args.rounds,
        args.server,
        seed,
        args.timeout,
        args.celery,
    )


if __name__ == "__main__":
    main()
