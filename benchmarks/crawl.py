"""Crawl benchmark: a bare aiohttp client vs ``cephalopod crawl`` on the same local fleet.

    python -m benchmarks crawl --num 10000 [--dburl postgresql] [--latency 0.02] [--rounds 3]

Starts the fleet simulator in its own process. Each round registers the instances in a
fresh database and times the real ``cephalopod crawl`` command in a subprocess twice: the
first crawl, which stores everything anew, and the daily recrawl, which finds the same
values. A bare client (same library, same concurrency, no database; `benchmarks.bare`, in a
fresh process) fetching every instance's endpoints runs right before and right after each
crawl, and each crawl is compared with the mean of the two: this machine's speed drifts by
10 % and more within a minute, which a single reference run would count against one side.
Prints the times and ratios of every round, the median ratios, the CPU seconds each side
used (the crawl's own, its writer's and the PostgreSQL server's), and the crawl's peak memory
(RSS).
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg
import sqlalchemy as sa

from benchmarks.fleet import ENDPOINTS, FIELD_SETTINGS, SERVERS, free_port

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


def time_bare_client(base: str, num: int, concurrency: int) -> tuple[float, float]:
    """Run the bare client (`benchmarks.bare`) in a fresh process; return (seconds, CPU)."""
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.bare", base, str(num), str(concurrency)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    seconds, cpu = out.strip().splitlines()[-1].split()
    return float(seconds), float(cpu)


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
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"fleet did not start on port {port}")


def seed(dburl: str, base: str, num: int, env: dict[str, str]) -> None:
    """Create the schema with the CLI, then bulk-insert the fleet's instances."""
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
            "url": f"{base}/i/{n}",
            "url_key": f"i/{n}",
            "contact": "Bench",
            "email": "bench@example.org",
            "organization": f"Org {n}",
            "enabled": True,
            "crawl_status": "never",
            "consecutive_failures": 0,
        }
        for n in range(num)
    ]
    with engine.begin() as conn:
        for start in range(0, num, 5000):
            conn.execute(table.insert(), rows[start : start + 5000])
    engine.dispose()


def crawl_twice(
    dburl: str | None, base: str, num: int, concurrency: int
) -> tuple[list[tuple[float, float]], list[Crawl]]:
    """Seed a fresh database with the fleet and time ``cephalopod crawl`` twice.

    The first crawl stores everything anew; the second is the daily recrawl, which finds
    the same values. The bare client runs before, between and after them. Returns the bare
    client's three (seconds, CPU seconds) and each crawl's figures.
    """
    pg_name = None
    with tempfile.TemporaryDirectory() as tmp:
        try:
            if dburl is None:
                dburl = f"sqlite:///{tmp}/bench.db"
            elif dburl == "postgresql":
                pg_name = f"cephalopod_bench_{uuid.uuid4().hex[:8]}"
                with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                    conn.execute(f'CREATE DATABASE "{pg_name}"')
                dburl = f"postgresql+psycopg://postgres@127.0.0.1:5432/{pg_name}"
            settings = Path(tmp) / "bench.cfg"
            settings.write_text(
                f"SQLALCHEMY_DATABASE_URI = {dburl!r}\nSECRET_KEY = 'bench'\n"
                f"CRAWLING_ENDPOINTS = {ENDPOINTS!r}\n"
                f"CRAWLED_FIELDS_SETTINGS = {FIELD_SETTINGS!r}\n"
                f"CRAWLER_ALLOWED_NETWORKS = ['127.0.0.0/8']\nCRAWLER_CONCURRENCY = {concurrency}\n"
            )
            env = {
                **os.environ,
                "CEPHALOPOD_SETTINGS": str(settings),
                "CEPHALOPOD_INSTANCE_PATH": tmp,
            }
            seed(dburl, base, num, env)
            bare = [time_bare_client(base, num, concurrency)]
            crawls = []
            for _ in range(2):
                crawls.append(run_crawl(env, num, on_postgres=dburl.startswith("postgresql")))
                bare.append(time_bare_client(base, num, concurrency))
            return bare, crawls
        finally:
            if pg_name:
                with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')


@dataclass
class Crawl:
    """One ``cephalopod crawl`` measured: seconds it reports, wall seconds of the command,
    CPU seconds it reports (its writer included), CPU seconds of the PostgreSQL server."""

    inner: float
    wall: float
    cpu: float
    postgres_cpu: float | None


def run_crawl(env: dict[str, str], num: int, on_postgres: bool) -> Crawl:
    """Run ``cephalopod crawl`` and measure it (and the local PostgreSQL server it uses)."""
    server = postgres_cpu() if on_postgres else None
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "cephalopod", "crawl"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    wall = time.perf_counter() - start
    server_after = postgres_cpu() if on_postgres else None
    match = re.search(
        r"in ([\d.]+) s \(([\d.]+)/s\): (\d+) ok, (\d+) failed \(CPU ([\d.]+) s\)", out
    )
    if match is None:
        raise SystemExit(f"unexpected crawl output:\n{out}")
    ok, failed = int(match[3]), int(match[4])
    # the rate has more significant digits than the printed duration
    inner = num / float(match[2]) if float(match[2]) else float(match[1])
    if (ok, failed) != (num, 0):
        raise SystemExit(f"the crawl did not succeed for every instance: {ok} ok, {failed} failed")
    used = None if server is None or server_after is None else server_after - server
    return Crawl(inner, wall, float(match[5]), used)


def run(
    num: int, dburl: str | None, latency: float, concurrency: int, rounds: int, server: str
) -> None:
    """Run the rounds and print the comparison."""
    port = free_port()
    command = [sys.executable, "-m", "benchmarks.fleet", "--port", str(port)]
    fleet = subprocess.Popen([*command, "--latency", str(latency), "--server", server])
    try:
        wait_for_port(port)
        base = f"http://127.0.0.1:{port}"
        engine = "sqlite" if dburl is None else dburl.split(":", 1)[0]
        print(
            f"fleet ({server} server): {num} instances x {len(ENDPOINTS)} endpoints,"
            f" latency {latency * 1000:.0f} ms, concurrency {concurrency}; database {engine}"
        )
        ratios: dict[str, list[float]] = {"first crawl": [], "recrawl": []}
        cpus: dict[str, list[float]] = {"bare client": [], **{kind: [] for kind in ratios}}
        for n in range(1, rounds + 1):
            bares, crawls = crawl_twice(dburl, base, num, concurrency)
            cpus["bare client"] += [cpu for _seconds, cpu in bares]
            print(
                f"round {n}: bare client {' / '.join(f'{b:.2f}' for b, _cpu in bares)} s"
                f" (CPU {' / '.join(f'{cpu:.2f}' for _b, cpu in bares)} s)"
            )
            for i, ((kind, kept), crawl) in enumerate(zip(ratios.items(), crawls, strict=True)):
                bare = statistics.mean(b for b, _cpu in bares[i : i + 2])  # just before and after
                kept.append(bare / crawl.inner)
                cpu = crawl.cpu + (crawl.postgres_cpu or 0.0)
                cpus[kind].append(cpu)
                server = "" if crawl.postgres_cpu is None else f" + server {crawl.postgres_cpu:.2f}"
                print(
                    f"         {kind:11}: {crawl.inner:6.2f} s ({num / crawl.inner:5.0f}/s;"
                    f" {crawl.wall:.2f} s with interpreter start-up) | bare {bare:.2f} s,"
                    f" ratio {bare / crawl.inner:.3f} | CPU {crawl.cpu:.2f}{server} s"
                )
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        for kind, kept in ratios.items():
            print(
                f"{kind} throughput, median of {rounds}: {statistics.median(kept):.3f} x the"
                f" bare client (min {min(kept):.3f}, max {max(kept):.3f})"
            )
        print(
            "CPU seconds, median (the crawl's own and its writer's, plus PostgreSQL's server"
            " processes if local; the fleet simulator's not included): "
            + ", ".join(f"{kind} {statistics.median(values):.2f}" for kind, values in cpus.items())
        )
        print(f"peak RSS (largest child process): {rss:.0f} MB")
    finally:
        fleet.terminate()
        fleet.wait(10)


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
    args = parser.parse_args(argv)
    run(args.num, args.dburl, args.latency, args.concurrency, args.rounds, args.server)


if __name__ == "__main__":
    main()
