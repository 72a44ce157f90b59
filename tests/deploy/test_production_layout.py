"""The production guide tried as written: deploy/'s systemd units started for real.

The units' own ``ExecStartPre=``/``ExecStart=`` command lines, environment files and working
directories (`tests.deploy.units`) run as subprocesses here, each in a session of its own
(SIGTERM, then SIGKILL, at the end whatever happened): gunicorn (after ``cephalopod db
upgrade``), two Celery workers (``cephalopod-worker@1``, ``@2``) and beat. Substituted, and
nothing else: the paths (``/opt/cephalopod/venv`` → this test's venv, ``/etc/cephalopod``,
``/var/lib/cephalopod`` and ``/run/cephalopod-web`` → folders of the test), the port
(``127.0.0.1:8000`` → a free one) and, in the settings (deploy/settings.cfg.example, copied
with those paths), keys appended at its end: the database (a fresh PostgreSQL database of
the machine's server), Redis (database 12, which no other test uses), a beat schedule of
seconds instead of a day, the fleet's endpoints and loopback allowed to the crawler, small
chunks (so that both workers get some). ``User=`` and the sandboxing are not applied.

Instances register through the web server, beat alone triggers the crawl (the test never
asks for one), and its results are read from the admin API, ``/metrics`` and ``/healthz``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis

from benchmarks.fleet import ENDPOINTS, free_port
from tests.databases import empty_database
from tests.deploy.units import DEPLOY, SYSTEMD, Unit, read_environment_file, read_unit
from tests.faults.conftest import fleet_urls
from tests.faults.services import fleet_process, wait_for_port, wait_until

pytestmark = [pytest.mark.deploy, pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

README = Path(__file__).resolve().parents[2] / "README.md"
REDIS = "redis://127.0.0.1:6379/12"
NUM = 12  # below the registration rate limit of one address (20 per hour)
CHUNK = 2
PASSWORD = "a-long-deploy-test-password"


@dataclass
class Layout:
    """The test's stand-ins for the guide's folders, and its substitutions."""

    root: Path
    port: int

    @property
    def etc(self) -> Path:
        return self.root / "etc"

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def run_web(self) -> Path:
        return self.root / "run-web"

    @property
    def substitute(self) -> dict[str, str]:
        return {
            "/opt/cephalopod/venv": sys.prefix,
            "/etc/cephalopod": str(self.etc),
            "/var/lib/cephalopod": str(self.state),
            "/run/cephalopod-web": str(self.run_web),
            "127.0.0.1:8000": f"127.0.0.1:{self.port}",
        }

    def copy(self, source: Path, target: Path) -> None:
        text = source.read_text()
        for old, new in self.substitute.items():
            text = text.replace(old, new)
        target.write_text(text)


def _environment(unit: Unit) -> dict[str, str]:
    """What systemd gives a service: little besides the unit's own environment."""
    return {"LANG": "C.UTF-8", **unit.environment}


def _start(unit: Unit, log: Path) -> subprocess.Popen[str]:
    for command in unit.start_pre:
        done = subprocess.run(
            command,
            env=_environment(unit),
            cwd=unit.working_directory,
            capture_output=True,
            text=True,
            timeout=60,
        )
        with log.open("a") as out:
            out.write(done.stdout + done.stderr)
        assert done.returncode == 0, f"{unit.name}: {command}\n{done.stdout}{done.stderr}"
    with log.open("a") as out:
        return subprocess.Popen(
            unit.start,
            env=_environment(unit),
            cwd=unit.working_directory,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )


def _cli(layout: Layout, *args: str) -> str:
    """A command run by hand as the guide says: with the environment file's variables."""
    environment = {
        "LANG": "C.UTF-8",
        **read_environment_file(layout.etc / "cephalopod.env"),
    }
    done = subprocess.run(
        ["cephalopod", *args],
        env=environment,
        cwd=layout.state,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _http(url: str, body: Any = None, token: str | None = None) -> tuple[int, bytes]:
    """GET ``url`` (POST with a JSON ``body``): the status and the body."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers)  # noqa: S310 - http://
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    """The guide's files where its commands will look for them (with the substitutions)."""
    layout = Layout(tmp_path, free_port())
    for folder in (layout.etc, layout.state, layout.run_web):
        folder.mkdir()
    layout.copy(DEPLOY / "cephalopod.env", layout.etc / "cephalopod.env")
    layout.copy(DEPLOY / "gunicorn.conf.py", layout.etc / "gunicorn.conf.py")
    (layout.etc / "secret_key").write_text("deploy-test-" + "k" * 40 + "\n")
    return layout


@contextlib.contextmanager
def _processes(codes: list[int]) -> Iterator[list[subprocess.Popen[str]]]:
    """The processes started meanwhile; ended on the way out, whatever happened.

    As ``systemctl stop`` with ``KillMode=mixed``: SIGTERM to every main process at once, a
    wait for each, SIGKILL to its whole session after 20 s or once it ended (what it left
    behind). Their exit codes go to ``codes``.
    """
    started: list[subprocess.Popen[str]] = []
    try:
        yield started
    finally:
        for process in started:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        for process in started:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(20)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            codes.append(process.wait(10))


def test_the_guide_layout_registers_crawls_on_schedule_and_reports(layout: Layout) -> None:
    broker = redis.Redis.from_url(REDIS)
    broker.flushdb()
    codes: list[int] = []
    try:
        _run_layout(layout, codes)
    finally:
        broker.flushdb()
    # every process ended on SIGTERM, none had to be killed
    assert codes == [0] * 4, codes  # web, two workers, beat


def _run_layout(layout: Layout, codes: list[int]) -> None:
    with (
        fleet_process(latency=0.2) as fleet,
        empty_database("postgresql", layout.root) as db_url,
        _processes(codes) as started,
    ):
        settings = layout.etc / "settings.cfg"
        layout.copy(DEPLOY / "settings.cfg.example", settings)
        with settings.open("a") as out:
            out.write(
                "\n# --- the test's own (tests/deploy/test_production_layout.py) ---\n"
                f"SQLALCHEMY_DATABASE_URI = {db_url!r}\n"
                f"CELERY_BROKER_URL = {REDIS!r}\n"
                f"RATELIMIT_STORAGE_URI = {REDIS!r}\n"
                "CELERYBEAT_SCHEDULE = {'crawl-all': {'task': 'cephalopod.crawler.crawl_all',"
                " 'schedule': timedelta(seconds=3)}}\n"
                f"CRAWLING_ENDPOINTS = {ENDPOINTS!r}\n"
                "CRAWLER_ALLOWED_NETWORKS = ['127.0.0.0/8']\n"
                f"CRAWLER_CHUNK_SIZE = {CHUNK}\n"
            )
        logs = layout.root / "logs"
        logs.mkdir()
        base = f"http://127.0.0.1:{layout.port}"

        web = read_unit("cephalopod-web.service", layout.substitute)
        assert web.start[0] == f"{sys.prefix}/bin/gunicorn"
        started.append(_start(web, logs / "web.log"))
        wait_for_port(layout.port, timeout=60, process=started[0])

        # instances register through the web server, as they would through nginx
        urls = fleet_urls(fleet, NUM, missing_every=6)
        for n, url in enumerate(urls):
            body = {"url": url, "contact": f"C{n}", "email": f"c{n}@example.org",
                    "organization": f"Org {n}"}  # fmt: skip
            status, reply = _http(f"{base}/api/instance/", body)
            assert status == 201, reply
        _cli(layout, "create_usr", "admin", PASSWORD)
        token = _cli(layout, "create_token", "admin").strip().splitlines()[-1]

        workers = [
            read_unit("cephalopod-worker@.service", layout.substitute, instance=str(n))
            for n in (1, 2)
        ]
        for n, worker in enumerate(workers, 1):
            started.append(_start(worker, logs / f"worker{n}.log"))
        for n in (1, 2):
            wait_until(
                lambda n=n: "ready" in (logs / f"worker{n}.log").read_text(),
                45,
                f"worker {n} to be ready",
                0.2,
            )
        # beat alone starts crawls from now on: the test never asks for one
        beat = read_unit("cephalopod-beat.service", layout.substitute)
        started.append(_start(beat, logs / "beat.log"))

        def crawled() -> list[dict[str, Any]] | None:
            status, reply = _http(f"{base}/api/admin/instances?per_page=100", token=token)
            assert status == 200, reply
            items = json.loads(reply)["items"]
            return items if all(item["last_crawl"] for item in items) else None

        def all_logs() -> str:
            return "".join(f"--- {p.name}\n{p.read_text()}" for p in sorted(logs.iterdir()))

        try:
            items = wait_until(crawled, 45, "beat's crawl to reach every instance", 0.5)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{all_logs()}") from None
        assert len(items) == NUM
        missing = sum("/missing/" in url for url in urls)
        statuses = sorted(item["crawl_status"] for item in items)
        assert statuses == ["error"] * missing + ["ok"] * (NUM - missing), items

        # both workers crawled chunks of it; beat sent the crawl
        for n in (1, 2):
            assert "crawl_chunk" in (logs / f"worker{n}.log").read_text(), all_logs()
        assert "cephalopod.crawler.crawl_all" in (logs / "beat.log").read_text(), all_logs()

        def metrics() -> str | None:
            status, reply = _http(f"{base}/metrics")  # loopback: allowed without a token
            assert status == 200, reply
            text = reply.decode()
            return text if 'cephalopod_last_crawl_instances{result="ok"}' in text else None

        text = wait_until(metrics, 20, "a crawl of all to have ended, in the metrics", 0.5)
        values = _samples(text)
        assert values['cephalopod_last_crawl_instances{result="ok"}'] == NUM - missing
        assert values['cephalopod_last_crawl_instances{result="failed"}'] == missing
        assert values["cephalopod_registrations_total"] == NUM
        assert values['cephalopod_instances{health="ok",status="enabled"}'] == NUM - missing
        assert values["cephalopod_database_up"] == 1
        # gunicorn's two workers count HTTP requests together (PROMETHEUS_MULTIPROC_DIR)
        registrations = (
            'cephalopod_http_requests_total{endpoint="instances_api.create",'
            'method="POST",status="201"}'
        )
        assert values[registrations] == NUM
        assert any(layout.run_web.iterdir()), "no multiprocess metrics files"

        status, reply = _http(f"{base}/healthz")
        assert status == 200, reply
        health = json.loads(reply)
        assert health["status"] == "ok"
        assert set(health["checks"]) == {"database", "broker"}

        _backup_and_restore(layout, db_url)


def _backup_and_restore(layout: Layout, db_url: str) -> None:
    """cephalopod-backup.service's dump, restored into an empty database as the README says."""
    backups = layout.root / "backups"
    backups.mkdir()
    server = db_url.replace("postgresql+psycopg://", "postgresql://")
    unit = read_unit(
        "cephalopod-backup.service",
        {"/var/backups/cephalopod": str(backups), "--dbname=cephalopod": f"--dbname={server}"},
    )
    done = subprocess.run(unit.start, cwd=unit.working_directory, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    (dump,) = backups.iterdir()
    assert dump.name == f"cephalopod-{time.strftime('%a')}.dump"
    restore = "pg_restore --no-owner --exit-on-error --dbname=cephalopod"
    assert restore in README.read_text()  # the guide's own command
    with empty_database("postgresql", layout.root) as target:
        target_server = target.replace("postgresql+psycopg://", "postgresql://")
        command = restore.replace("--dbname=cephalopod", f"--dbname={target_server}")
        done = subprocess.run([*command.split(), str(dump)], capture_output=True, text=True,
                              timeout=60)  # fmt: skip
        assert done.returncode == 0, done.stderr
        with psycopg.connect(target_server) as conn:
            count = conn.execute("SELECT count(*) FROM instances").fetchone()
            users = conn.execute("SELECT username FROM users").fetchall()
        assert count == (NUM,)
        assert users == [("admin",)]


def _samples(text: str) -> dict[str, float]:
    """Prometheus text format: ``name{labels} value`` lines, by name and labels."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def test_systemd_reads_the_units_without_a_complaint(layout: Layout) -> None:
    # the commands must exist for systemd-analyze: the paths substituted as above
    analyze = shutil.which("systemd-analyze")
    if analyze is None:  # pragma: no cover - every development machine has systemd
        pytest.skip("systemd-analyze is not installed")
    units = layout.root / "units"
    units.mkdir()
    for source in SYSTEMD.iterdir():
        layout.copy(source, units / source.name)
    names = [p.name.replace("@.", "@1.") for p in sorted(units.iterdir())]
    done = subprocess.run(
        [analyze, "verify", "--man=no", *(f"./{name}" for name in names)],
        cwd=units,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stdout + done.stderr) == (0, "")
