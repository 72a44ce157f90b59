"""Statistics, list and export at scale, against the naive way, on SQLite or PostgreSQL.

    python -m benchmarks stats --dburl postgresql://postgres@127.0.0.1:5432/test --num 100000
    python -m benchmarks stats --dburl sqlite:////tmp/bench.db --num 100000

Seeds a fake fleet (``benchmarks.seed``: 8 crawled fields, the fleet's 5 charts), then calls
the admin API through Flask's test client with a bearer token, as a script would, and prints
the median of each. The statistics are measured cold (cache emptied before every request: the
first page view after a crawl) and warm. The same aggregation is also done the naive way
(load every enabled instance, aggregate in Python with ``naive_chart``/``naive_countries``)
in the same run, its result compared with the SQL one and the time ratio printed.

A PostgreSQL URL names the server (and a database to connect to for administration); the
benchmark creates a database of its own there and drops it at the end. A SQLite file is
created in a temporary folder unless ``--dburl`` names one.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from benchmarks.fleet import FIELD_SETTINGS
from benchmarks.seed import seed

TARGETS_MS = {"statistics (warm)": 300, "list by field, country": 100, "export CSV": 10_000}


@contextmanager
def database(url: str, keep: bool) -> Iterator[str]:
    """Yield a database URL of the benchmark's own, removed afterwards unless ``keep``."""
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        if path and path != url:
            for suffix in ("", "-wal", "-shm"):
                Path(path + suffix).unlink(missing_ok=True)
            yield url
            return
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{folder}/bench.db"
        return
    admin = url.replace("postgresql+psycopg://", "postgresql://", 1)
    name = f"cephalopod_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.rsplit("/", 1)[0] + "/" + name
    finally:
        if keep:
            print(f"kept database {name}")
        else:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def build_app(url: str, folder: Path) -> Flask:
    """Create the app on ``url`` with the fleet's field settings and an empty settings file."""
    from cephalopod.app import create_app

    os.environ["CEPHALOPOD_INSTANCE_PATH"] = str(folder)
    settings = folder / "settings.cfg"
    settings.write_text("# benchmark: built-in defaults plus overrides\n")
    return create_app(
        settings,
        overrides={
            "SQLALCHEMY_DATABASE_URI": url,
            "SECRET_KEY": "benchmark",
            "CRAWLED_FIELDS_SETTINGS": FIELD_SETTINGS,
        },
    )


def timed(
    call: Callable[[], Any], repeat: int, before: Callable[[], Any] | None = None
) -> list[float]:
    """Run ``call`` once to warm up, then ``repeat`` times; return the durations in ms."""
    call()
    times = []
    for _ in range(repeat):
        if before is not None:
            before()
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return times


def get(client: FlaskClient, url: str, headers: dict[str, str]) -> Callable[[], bytes]:
    """Return a call that GETs url, checks the status and reads the whole body."""

    def call() -> bytes:
        response = client.get(url, headers=headers)
        body = response.get_data()
        if response.status_code != 200:
            raise RuntimeError(f"{url}: {response.status_code} {body[:300]!r}")
        return body

    return call


def naive_statistics(app: Flask) -> dict[str, Any]:
    """The original's way: load every enabled instance, then aggregate in Python."""
    from cephalopod.db import db
    from cephalopod.instances.models import Instance
    from cephalopod.stats.aggregate import naive_chart, naive_countries
    from cephalopod.stats.queries import field_registry

    with app.app_context():
        registry = field_registry()
        rows = db.session.execute(
            sa.select(Instance.country_code, Instance.country_name, Instance.crawled_data).where(
                Instance.enabled == sa.true()
            )
        ).all()
        data = [(name, crawled) for _code, name, crawled in rows]
        result = {
            "countries": naive_countries([(code, name) for code, name, _data in rows]),
            "charts": [naive_chart(spec, data, registry) for spec in registry.charted()],
        }
        db.session.remove()
    return result


def export_memory(client: FlaskClient, headers: dict[str, str]) -> tuple[int, int]:
    """Stream the CSV export chunk by chunk under tracemalloc; return (bytes, peak bytes)."""
    tracemalloc.start()
    size = 0
    with client.get("/api/admin/export?format=csv", headers=headers, buffered=False) as response:
        for chunk in response.response:
            size += len(chunk)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return size, peak


def report(name: str, times: list[float]) -> float:
    """Print one measurement line and return its median."""
    median = statistics.median(times)
    target = TARGETS_MS.get(name)
    verdict = (
        "" if target is None else f"  target < {target} ms: {'ok' if median < target else 'MISSED'}"
    )
    spread = f"(min {min(times):.1f}, max {max(times):.1f})"
    print(f"  {name:28s} median {median:9.1f} ms  {spread}{verdict}")
    return median


def run(url: str, num: int, repeat: int, weeks: int, folder: Path) -> None:
    """Seed, measure and print."""
    from cephalopod.auth.operations import create_token, create_user
    from cephalopod.db import db
    from cephalopod.schema import ensure_schema
    from cephalopod.stats.cache import stats_cache
    from cephalopod.stats.queries import field_registry

    app = build_app(url, folder)
    with app.app_context():
        dialect = db.engine.dialect.name
        ensure_schema()
        start = time.perf_counter()
        seed(db.engine, num, field_registry(), weeks=weeks)
        seeded = time.perf_counter() - start
        create_user("bench", "bench-password")
        token = create_token("bench")
        db.session.remove()
    print(
        f"{dialect}: {num} instances, 8 crawled fields, 5 charts, {weeks} weekly snapshots each"
        f" (seeded in {seeded:.1f} s)"
    )
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    cold = report(
        "statistics (cold)",
        timed(get(client, "/api/admin/statistics", headers), repeat, stats_cache(app).clear),
    )
    warm = report("statistics (warm)", timed(get(client, "/api/admin/statistics", headers), repeat))
    report(
        "list by field, country",
        timed(get(client, "/api/admin/instances?sort=field:events&country=DE", headers), repeat),
    )
    report(
        "list by field, desc",
        timed(
            get(client, "/api/admin/instances?sort=field:indico_version&order=desc", headers),
            repeat,
        ),
    )
    report(
        "list search", timed(get(client, "/api/admin/instances?q=institute%2012", headers), repeat)
    )
    if weeks:
        trend = get(
            client, "/api/admin/statistics/trend?field=indico_version&interval=week", headers
        )
        report("trend by week (cold)", timed(trend, repeat, stats_cache(app).clear))
        report("trend by week (warm)", timed(trend, repeat))
    export_times = timed(get(client, "/api/admin/export?format=csv", headers), max(1, repeat // 5))
    report("export CSV", export_times)
    size, peak = export_memory(client, headers)
    print(f"  export CSV: {size / 1e6:.1f} MB streamed, peak Python memory {peak / 1e6:.1f} MB")
    naive_times = timed(lambda: naive_statistics(app), max(1, repeat // 5))
    naive = report("naive (load + Python)", naive_times)
    print(f"  naive / SQL cold: {naive / cold:.1f}x   naive / SQL warm: {naive / warm:.1f}x")
    sql = client.get("/api/admin/statistics", headers=headers).json
    reference = naive_statistics(app)
    agree = (
        sql["countries"] == reference["countries"]
        and [c["data"] for c in sql["charts"]] == reference["charts"]
    )
    print(f"  SQL and naive results agree: {'yes' if agree else 'NO'}")
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def main(argv: list[str] | None = None) -> int:
    """Parse the options and run the suite."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks stats", description=__doc__)
    parser.add_argument("--dburl", default="sqlite://", help="sqlite:///file or postgresql://...")
    parser.add_argument("--num", type=int, default=10_000, help="instances")
    parser.add_argument("--repeat", type=int, default=10, help="timed requests per endpoint")
    parser.add_argument("--weeks", type=int, default=0, help="weekly snapshots per instance")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder, database(args.dburl, args.keep) as url:
        run(url, args.num, args.repeat, args.weeks, Path(folder))
    return 0
