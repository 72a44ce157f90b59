"""The admin web interface at scale: its pages' server time, and Chromium drawing them.

    python -m benchmarks web --num 100000
    python -m benchmarks web --num 100000 --dburl postgresql+psycopg://postgres@127.0.0.1:5432/test

Seeds a fleet (``benchmarks.seed``: 8 crawled fields, the fleet's 5 charts, ``--weeks`` weekly
snapshots each), writes one settings file that both the app in this process and a real
``cephalopod run`` read (no periodic crawl: the fleet's URLs lead nowhere), then measures:

- **Server time**: a Flask test client logged in through the real log-in form, in this
  process: the whole request (routing, session, queries, template, body), no HTTP server, no
  network. Each figure is the median of ``--repeat`` requests after one warm-up, with the
  CPU time the request cost this process and the database server (``Meter``): on a shared
  machine the wall time follows the load, the CPU time much less.
  "After a crawl" means each request follows a batch of 500 changed crawl results written
  by the crawl store itself (``store_results``, which replaces the statistics' data version).
- **Chromium** (``benchmarks.web_browser``): Playwright driving Debian's Chromium, launched
  as ``tests/browser`` launches it, against ``cephalopod run`` on loopback, logged in.

Everything runs ``--rounds`` times on the same data; the summary gives the median of the
rounds' medians and their range, against the targets of issue 13. A PostgreSQL URL names the
server and a database to administer it from: the suite creates a database of its own there
and drops it at the end. ``--json FILE`` writes every figure for scripts and tests.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from benchmarks import web_browser
from benchmarks.fleet import FIELD_SETTINGS, VERSIONS
from benchmarks.seed import crawled, seed
from benchmarks.stats import database
from cephalopod.app import create_app
from cephalopod.auth.operations import create_user
from cephalopod.crawler.results import FetchResult
from cephalopod.crawler.store import store_results
from cephalopod.db import db
from cephalopod.instances.models import Instance
from cephalopod.schema import ensure_schema
from cephalopod.services import services
from cephalopod.settings import INSTANCE_ENV

USER = ("bench", "a-benchmark-password")
#: The list as the issue asks for it: first page, sorted by a crawled field, one country.
LIST_URL = "/servers?sort=field:events&country=DE"
#: What the statistics page's script fetches for its chart of active instances.
TREND_URL = "/api/admin/statistics/trend?field=instances&interval=day&status=enabled"
#: The crawl batch written before each "after a crawl" request (the crawler's default).
CRAWL_BATCH = 500
#: Issue 13's targets: milliseconds, and the list page's size in kB (kB = 1000 bytes).
TARGETS_MS = {
    "list: crawled-field sort, country": 150,
    "detail page": 100,
    "statistics page": 150,
    "statistics data, cached": 50,
    "statistics data, after a crawl": 500,
    "chromium: list interactive": 1000,
    "chromium: statistics drawn": 2000,
}
TARGET_LIST_KB = 150


@dataclass
class Results:
    """Each measurement's per-round medians (ms), plus sizes and notes."""

    rounds: dict[str, list[float]] = field(default_factory=dict)
    #: the CPU milliseconds per request, per-round medians (server time measurements only)
    cpu: dict[str, list[float]] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: the machine's 1-minute load average at each round's start (a shared machine)
    loads: list[float] = field(default_factory=list)

    def add(self, name: str, times: list[float], cpu: list[float] | None = None) -> None:
        """Record one round's times (and CPU times) of a measurement and print its line."""
        median = statistics.median(times)
        self.rounds.setdefault(name, []).append(median)
        spread = f"(min {min(times):.1f}, max {max(times):.1f}, n={len(times)})"
        used = ""
        if cpu:
            self.cpu.setdefault(name, []).append(statistics.median(cpu))
            used = f"  CPU {self.cpu[name][-1]:.1f} ms"
        print(f"  {name:38s} median {median:8.1f} ms  {spread}{used}", flush=True)

    def summary(self) -> list[str]:
        """Lines of the median of rounds, the range and the verdict per measurement."""
        lines = []
        for name, medians in self.rounds.items():
            middle = statistics.median(medians)
            target = TARGETS_MS.get(name)
            verdict = "" if target is None else f"  target < {target}: {_verdict(middle < target)}"
            span = f"{min(medians):.1f} to {max(medians):.1f}"
            used = f", CPU {statistics.median(self.cpu[name]):.1f} ms" if name in self.cpu else ""
            lines.append(f"  {name:38s} {middle:8.1f} ms  (rounds {span}{used}){verdict}")
        for name, size in self.sizes.items():
            lines.append(
                f"  {name:38s} {size / 1000:8.1f} kB"
                f"  target < {TARGET_LIST_KB}: {_verdict(size / 1000 < TARGET_LIST_KB)}"
            )
        return lines

    def as_json(self) -> dict[str, Any]:
        """Every figure: per-round medians in ms, sizes in bytes."""
        return {
            "rounds": self.rounds,
            "cpu": self.cpu,
            "sizes": self.sizes,
            "notes": self.notes,
            "loads": self.loads,
        }


def _verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def write_settings(folder: Path, url: str) -> Path:
    """The settings file of both apps: the fleet's fields, no periodic crawl, no rate limit."""
    path = folder / "settings.cfg"
    path.write_text(
        "\n".join(
            (
                "SECRET_KEY = 'benchmark-secret-key-not-for-production'",
                f"SQLALCHEMY_DATABASE_URI = {url!r}",
                f"CRAWLED_FIELDS_SETTINGS = {FIELD_SETTINGS!r}",
                "CELERYBEAT_SCHEDULE = {}",
                "LOGIN_RATE_LIMIT = '1000 per minute'",
                "",
            )
        )
    )
    return path


def prepare(app: Flask, num: int, weeks: int) -> float:
    """Create the schema, seed the fleet and the benchmark's user; return seconds taken."""
    with app.app_context():
        ensure_schema()
        start = time.perf_counter()
        seed(db.engine, num, services().settings.fields, weeks=weeks)
        took = time.perf_counter() - start
        create_user(*USER)
        db.session.remove()
    return took


def log_in(client: FlaskClient) -> None:
    """Log in through the real form, with its CSRF token."""
    page = client.get("/login").get_data(as_text=True)
    found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    if found is None:
        raise RuntimeError("no CSRF token in the log-in form")
    data = {"csrf_token": found.group(1), "username": USER[0], "password": USER[1]}
    response = client.post("/login", data=data)
    if response.status_code != 302:
        raise RuntimeError(f"log-in failed: {response.status_code}")


def fetch(client: FlaskClient, url: str) -> Callable[[], bytes]:
    """A call that GETs url, demands a 200 and reads the whole body."""

    def call() -> bytes:
        response = client.get(url)
        body = response.get_data()
        if response.status_code != 200:
            raise RuntimeError(f"{url}: {response.status_code} {body[:300]!r}")
        return body

    return call


def list_rows(app: Flask) -> int:
    """How many rows the list page (``LIST_URL``) shows: 50, or fewer in a tiny fleet."""
    with app.app_context():
        count = db.session.scalar(
            sa.select(sa.func.count()).select_from(Instance).where(Instance.country_code == "DE")
        )
        db.session.remove()
    return min(50, count or 0)


def detail_urls(app: Flask, count: int = 10) -> list[str]:
    """Detail pages of crawled servers spread over the fleet (a different one each request)."""
    with app.app_context():
        total = db.session.scalar(sa.select(sa.func.count()).select_from(Instance)) or 0
        step = max(1, total // count)
        uuids = db.session.scalars(
            sa.select(Instance.uuid)
            .where(Instance.crawl_status == "ok", Instance.id % step == 0)
            .order_by(Instance.id)
            .limit(count)
        ).all()
        db.session.remove()
    return [f"/servers/{uuid}" for uuid in uuids]


def cycle(calls: list[Callable[[], bytes]]) -> Callable[[], bytes]:
    """A call that makes the next of ``calls`` each time."""
    state = {"n": 0}

    def call() -> bytes:
        state["n"] += 1
        return calls[state["n"] % len(calls)]()

    return call


class Crawl:
    """Writes batches of changed crawl results through the crawl store, as a crawl does."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.batch = 0
        with app.app_context():
            self.ids = list(
                db.session.scalars(
                    sa.select(Instance.id)
                    .where(Instance.crawl_status == "ok")
                    .order_by(Instance.id)
                )
            )
            db.session.remove()

    def __call__(self) -> None:
        """Store the next batch: new versions and event counts, so the statistics change."""
        self.batch += 1
        start = (self.batch * CRAWL_BATCH) % max(1, len(self.ids) - CRAWL_BATCH)
        now = datetime.now(UTC)
        results = []
        for instance_id in self.ids[start : start + CRAWL_BATCH]:
            data = crawled(instance_id)
            data["indico_version"] = VERSIONS[(instance_id + self.batch) % len(VERSIONS)]
            data["events"] += self.batch
            results.append(FetchResult(instance_id, True, data, None, None, now, 0.1))
        with self.app.app_context():
            with db.engine.begin() as conn:
                store_results(conn, results, services().settings.fields)
            db.session.remove()


class Meter:
    """Times calls: wall time, and the CPU time this process and the database server used.

    The CPU time counts this process (the app, and SQLite inside it) and, on PostgreSQL,
    the server processes of the benchmark's database (read from ``/proc``), not the
    parallel workers a query may start: a figure the machine's load changes far less.
    """

    def __init__(self, app: Flask, results: Results, repeat: int) -> None:
        self.app, self.results, self.repeat = app, results, repeat
        self.postgres = sa.make_url(app.config["SQLALCHEMY_DATABASE_URI"]).get_backend_name()
        self.postgres = self.postgres == "postgresql"

    def _backends(self) -> list[int]:
        if not self.postgres:
            return []
        query = sa.text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        with self.app.app_context():
            pids = list(db.session.scalars(query))
            db.session.remove()
        return pids

    @staticmethod
    def _cpu(pids: list[int]) -> float:
        total = time.process_time()
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except FileNotFoundError:  # a connection closed meanwhile
                continue
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def __call__(
        self,
        name: str,
        call: Callable[[], Any],
        repeat: int | None = None,
        before: Callable[[], Any] | None = None,
    ) -> None:
        """Call once to warm up, then ``repeat`` times (after ``before``); record the times."""
        call()
        wall: list[float] = []
        cpu: list[float] = []
        for _ in range(repeat or self.repeat):
            if before is not None:
                before()
            pids = self._backends()
            used, start = self._cpu(pids), time.perf_counter()
            call()
            wall.append((time.perf_counter() - start) * 1000)
            cpu.append((self._cpu(pids) - used) * 1000)
        self.results.add(name, wall, cpu)


def server_round(app: Flask, client: FlaskClient, results: Results, repeat: int) -> None:
    """One round of every server-time measurement."""
    crawl = Crawl(app)
    measure = Meter(app, results, repeat)
    measure("home page", fetch(client, "/"))
    body = fetch(client, LIST_URL)()
    rows = body.count(b"data-uuid=")
    if rows != list_rows(app):
        results.notes.append(f"the list page had {rows} rows, not {list_rows(app)}")
    results.sizes[f"list page HTML, {rows} rows"] = len(body)
    measure("list: crawled-field sort, country", fetch(client, LIST_URL))
    measure("list, after a crawl", fetch(client, LIST_URL), before=crawl)
    details = detail_urls(app)
    measure("detail page", cycle([fetch(client, u) for u in details]))
    measure("statistics page", fetch(client, "/statistics"))
    measure("statistics page, after a crawl", fetch(client, "/statistics"), before=crawl)
    api = fetch(client, "/api/admin/statistics")
    measure("statistics data, cached", api)
    measure("statistics data, after a crawl", api, before=crawl)
    trend = fetch(client, TREND_URL)
    measure("active instances' trend, cached", trend)
    measure("active instances' trend, after a crawl", trend, max(1, repeat // 2), crawl)
    measure(
        "CSV export, every instance",
        fetch(client, "/api/admin/export?format=csv"),
        max(1, repeat // 5),
    )


def run(args: argparse.Namespace, url: str, folder: Path) -> Results:
    """Seed, measure every round, print the summary."""
    settings = write_settings(folder, url)
    (folder / "instance").mkdir()
    os.environ[INSTANCE_ENV] = str(folder / "instance")
    app = create_app(settings)
    dialect = sa.make_url(url).get_backend_name()
    seeded = prepare(app, args.num, args.weeks)
    print(
        f"{dialect}: {args.num} instances, 8 crawled fields, 5 charts,"
        f" {args.weeks} weekly snapshots each (seeded in {seeded:.1f} s)",
        flush=True,
    )
    client = app.test_client()
    log_in(client)
    results = Results()
    live = (
        None
        if args.no_browser
        else web_browser.start_live(settings, folder, USER, LIST_URL, list_rows(app), TREND_URL)
    )
    try:
        for number in range(1, args.rounds + 1):
            results.loads.append(os.getloadavg()[0])
            print(
                f"round {number} — server time (Flask test client, in process);"
                f" load average {results.loads[-1]:.1f} on {os.cpu_count()} cores",
                flush=True,
            )
            server_round(app, client, results, args.repeat)
            if live is not None:
                print(f"round {number} — Chromium against `cephalopod run`", flush=True)
                web_browser.browser_round(live, results.add, args.browser_repeat)
    finally:
        if live is not None:
            web_browser.stop_live(live)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    loads = ", ".join(f"{load:.1f}" for load in results.loads)
    print(
        f"summary ({dialect}, {args.num} instances, {args.rounds} rounds): median of rounds"
        f" (load average at each round's start: {loads})"
    )
    for line in results.summary():
        print(line)
    for note in results.notes:
        print(f"  note: {note}")
    return results


def main(argv: list[str] | None = None) -> int:
    """Parse the options and run the suite."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks web",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dburl", default="sqlite://", help="sqlite:///file or postgresql://...")
    parser.add_argument("--num", type=int, default=100_000, help="instances")
    parser.add_argument("--repeat", type=int, default=10, help="timed requests per measurement")
    parser.add_argument("--browser-repeat", type=int, default=5, help="page loads per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds on the same data")
    parser.add_argument("--weeks", type=int, default=4, help="weekly snapshots per instance")
    parser.add_argument("--no-browser", action="store_true", help="server time only")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL database")
    parser.add_argument("--json", type=Path, help="write every figure to this file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp, database(args.dburl, args.keep) as url:
        url = url.replace("postgresql://", "postgresql+psycopg://", 1)
        results = run(args, url, Path(tmp))
    if args.json:
        args.json.write_text(json.dumps(results.as_json(), indent=2))
    return 1 if results.notes else 0


if __name__ == "__main__":
    sys.exit(main())
