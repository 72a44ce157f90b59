"""Crawl benchmark: a bare aiohttp client vs ``cephalopod crawl`` on the same local fleet.

    python -m benchmarks crawl --num 10000 [--dburl postgresql+psycopg://...] [--latency 0.02]

Starts the fleet simulator in its own process, times a bare client (same library, same
concurrency, no database) fetching every instance's endpoints, then registers the same
instances in a fresh database and times the real ``cephalopod crawl`` command in a
subprocess. Prints both, their ratio, and the crawl's peak memory (RSS).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
import psycopg
import sqlalchemy as sa

from benchmarks.fleet import ENDPOINTS, FIELD_SETTINGS, free_port

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


async def bare_client(base: str, num: int, concurrency: int) -> float:
    """Fetch every endpoint of every instance like a crawler would, minus everything else."""
    connector = aiohttp.TCPConnector(limit=concurrency)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(num):
        queue.put_nowait(n)

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            n = queue.get_nowait()
            data = {}
            for endpoint in ENDPOINTS:
                async with session.get(f"{base}/i/{n}{endpoint['url']}") as resp:
                    data.update(await resp.json())

    start = time.perf_counter()
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return time.perf_counter() - start


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


def run(num: int, dburl: str | None, latency: float, concurrency: int) -> None:
    """Run both measurements and print the comparison."""
    port = free_port()
    fleet = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.fleet", "--port", str(port), "--latency", str(latency)]
    )
    pg_name = None
    try:
        wait_for_port(port)
        base = f"http://127.0.0.1:{port}"
        print(
            f"fleet: {num} instances x {len(ENDPOINTS)} endpoints, latency {latency * 1000:.0f} ms,"
            f" concurrency {concurrency}"
        )
        bare = asyncio.run(bare_client(base, num, concurrency))
        print(f"bare aiohttp client : {bare:7.2f} s  {num / bare:8.0f} instances/s")
        with tempfile.TemporaryDirectory() as tmp:
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
            start = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-m", "cephalopod", "crawl"],
                env=env,
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            wall = time.perf_counter() - start
            rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            match = re.search(r"in ([\d.]+) s .*: (\d+) ok, (\d+) failed", out)
            if match is None:
                raise SystemExit(f"unexpected crawl output:\n{out}")
            inner, ok, failed = float(match[1]), int(match[2]), int(match[3])
            engine = dburl.split(":", 1)[0]
            print(
                f"cephalopod crawl    : {inner:7.2f} s  {num / inner:8.0f} instances/s"
                f"  ({ok} ok, {failed} failed; {engine}; whole command incl. start-up {wall:.2f} s)"
            )
            print(
                f"throughput ratio    : {bare / inner:.3f} x the bare client"
                f" ({bare / wall:.3f} counting interpreter start-up)"
            )
            print(f"peak RSS (largest child process): {rss:.0f} MB")
    finally:
        fleet.terminate()
        fleet.wait(10)
        if pg_name:
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')


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
    args = parser.parse_args(argv)
    run(args.num, args.dburl, args.latency, args.concurrency)


if __name__ == "__main__":
    main()
