"""Crawl benchmark: a bare aiohttp client vs ``cephalopod crawl`` on the same local fleet.

    python -m benchmarks crawl --num 10000 [--dburl postgresql] [--latency 0.02] [--rounds 3]

Starts the fleet simulator in its own process. Each round registers the instances in a
fresh database and times the real ``cephalopod crawl`` command in a subprocess twice: the
first crawl, which stores everything anew, and the daily recrawl, which finds the same
values. A bare client (same library, same concurrency, no database; `benchmarks.bare`, in a
fresh process) fetching every instance's endpoints runs right before and right after each
crawl, and each crawl is compared with the mean of the two: this machine's speed drifts by
10 % and more within a minute, which a single reference run would count against one side.
Prints the times and ratios of every round, the median ratios, and the crawl's peak memory
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
from pathlib import Path

import psycopg
import sqlalchemy as sa

from benchmarks.fleet import ENDPOINTS, FIELD_SETTINGS, SERVERS, free_port

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


def time_bare_client(base: str, num: int, concurrency: int) -> float:
    """Run the bare client (`benchmarks.bare`) in a fresh process; return its seconds."""
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.bare", base, str(num), str(concurrency)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return float(out.strip().splitlines()[-1])


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
) -> tuple[list[float], list[tuple[float, float]]]:
    """Seed a fresh database with the fleet and time ``cephalopod crawl`` twice.

    The first crawl stores everything anew; the second is the daily recrawl, which finds
    the same values. The bare client runs before, between and after them. Returns the bare
    client's three times and (seconds the crawl reports, wall seconds of the command) of
    each crawl.
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
                crawls.append(run_crawl(env, num))
                bare.append(time_bare_client(base, num, concurrency))
            return bare, crawls
        finally:
            if pg_name:
                with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')


def run_crawl(env: dict[str, str], num: int) -> tuple[float, float]:
    """Run ``cephalopod crawl``; return (seconds it reports, wall seconds of the command)."""
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "cephalopod", "crawl"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    wall = time.perf_counter() - start
    match = re.search(r"in ([\d.]+) s \(([\d.]+)/s\): (\d+) ok, (\d+) failed", out)
    if match is None:
        raise SystemExit(f"unexpected crawl output:\n{out}")
    ok, failed = int(match[3]), int(match[4])
    # the rate has more significant digits than the printed duration
    inner = num / float(match[2]) if float(match[2]) else float(match[1])
    if (ok, failed) != (num, 0):
        raise SystemExit(f"the crawl did not succeed for every instance: {ok} ok, {failed} failed")
    return inner, wall


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
        for n in range(1, rounds + 1):
            bares, crawls = crawl_twice(dburl, base, num, concurrency)
            print(f"round {n}: bare client {' / '.join(f'{b:.2f}' for b in bares)} s")
            for i, ((kind, kept), (inner, wall)) in enumerate(
                zip(ratios.items(), crawls, strict=True)
            ):
                bare = statistics.mean(bares[i : i + 2])  # the runs just before and after
                kept.append(bare / inner)
                print(
                    f"         {kind:11}: {inner:6.2f} s ({num / inner:5.0f}/s;"
                    f" {wall:.2f} s with interpreter start-up) | bare {bare:.2f} s,"
                    f" ratio {bare / inner:.3f}"
                )
        rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        for kind, kept in ratios.items():
            print(
                f"{kind} throughput, median of {rounds}: {statistics.median(kept):.3f} x the"
                f" bare client (min {min(kept):.3f}, max {max(kept):.3f})"
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
