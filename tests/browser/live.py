"""The real app for the browser tests: `cephalopod run` in a subprocess, with local fake instances.

Nothing is imported from the app into the test process: the server is started as a maintainer
would start it (a settings file, an instance folder, `cephalopod create_usr`), and instances
register themselves through the public registration API.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from benchmarks.fleet import reply_for
from tests.crawler.servers import ServerLoop
from tests.geo.mmdb import build_test_mmdb

ADMIN = ("maintainer", "a-long-browser-test-password")
XSS_IMG = "<img src=x onerror=alert(1)>"
XSS_SCRIPT = "</script><script>alert(1)</script>"
#: The instance number of the fake instance whose crawled values are the XSS payloads.
XSS_INSTANCE = 666
#: Instances numbered from here on answer /system-info after SLOW_SECONDS: a crawl that lasts.
SLOW_FROM = 900
SLOW_SECONDS = 3.0

#: Where the fake instances live: loopback addresses the test geolocation data places.
PLACES = {
    "127.0.0.2": {"country_code": "DE", "city": "Berlin", "latitude": 52.52, "longitude": 13.405},
    "127.0.0.3": {"country_code": "FR", "city": "Paris", "latitude": 48.857, "longitude": 2.352},
    "127.0.0.4": {"country_code": "JP", "city": "Tokyo", "latitude": 35.69, "longitude": 139.69},
}

#: A bar, a pie and a line chart, a summed chart, a list aggregation and a hidden field.
FIELD_SETTINGS: dict[str, Any] = {
    "indico_version": {"label": "Indico version", "chart": True, "chart_type": "bar"},
    "python_version": {"label": "Python version", "chart": True, "chart_type": "pie"},
    "postgres_version": {"label": "PostgreSQL version", "chart": True, "chart_type": "line"},
    "language": {"label": "Language"},
    "events": {
        "label": "Events",
        "chart": True,
        "chart_aggregation": "sum",
        "chart_aggregate_by": "country",
    },
    "contributions": {"label": "Contributions", "aggregation": "sum"},
    "debug": None,
}
CHART_LABELS = ["Indico version", "Python version", "PostgreSQL version", "Events"]

SERVER_START_TIMEOUT = 60.0


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def instance_app() -> web.Application:
    """The fleet's deterministic instances under /i/<n>/, and one whose values are XSS payloads."""

    async def handle(request: web.Request) -> web.Response:
        n = request.match_info["n"]
        if n.isdigit() and int(n) >= SLOW_FROM and request.match_info["endpoint"] == "system-info":
            await asyncio.sleep(SLOW_SECONDS)
        if n == str(XSS_INSTANCE):
            if request.match_info["endpoint"] == "system-info":
                body = {
                    "indico_version": XSS_IMG,
                    "python_version": XSS_SCRIPT,
                    "postgres_version": XSS_IMG,
                    "language": XSS_SCRIPT,
                }
            else:
                body = {"events": 7, "contributions": [1, 2]}
            return web.json_response(body)
        status, raw = reply_for(request.raw_path.encode())
        return web.Response(status=status, body=raw, content_type="application/json")

    app = web.Application()
    app.router.add_get("/i/{n}/{endpoint}", handle)
    return app


@dataclass
class LiveApp:
    """A running `cephalopod run` and the fake instances it crawls."""

    backend: str
    url: str
    folder: Path
    instance_hosts: dict[str, str] = field(default_factory=dict)  # address -> base URL
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    counter: int = 0
    #: The servers registered and crawled at start: organization -> uuid.
    seeded: dict[str, str] = field(default_factory=dict)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def register(
        self, organization: str | None = None, address: str = "127.0.0.2", **kw: Any
    ) -> str:
        """Register a fake instance through the public API (as Indico does); return its uuid."""
        self.counter += 1
        n = kw.pop("n", self.counter)
        data = {
            "url": f"{self.instance_hosts[address]}/i/{n}",
            "organization": organization or f"{self.backend} Organization {self.counter:03d}",
            "contact": f"Contact {self.counter}",
            "email": f"admin{self.counter}@example.org",
            **kw,
        }
        return self.api("POST", "/api/instance/", data)["uuid"]

    def cli(self, *args: str) -> str:
        """Run a `cephalopod` command on this app's settings, as a maintainer would."""
        done = subprocess.run(
            [sys.executable, "-m", "cephalopod", *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if done.returncode:
            raise RuntimeError(f"cephalopod {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done.stdout

    def api(self, method: str, path: str, data: Any = None) -> Any:
        body = json.dumps(data).encode() if data is not None else None
        req = urllib.request.Request(  # noqa: S310 - the URL is our own loopback server
            self.url + path, data=body, method=method, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
            raw = resp.read()
        return json.loads(raw) if raw else None


def settings_text(db_url: str, geoip: Path) -> str:
    """The settings file a maintainer would write for this app."""
    return "\n".join(
        (
            "SECRET_KEY = 'browser-test-secret-key-not-for-production'",
            f"SQLALCHEMY_DATABASE_URI = {db_url!r}",
            "APP_NAME = 'Cephalopod'",
            "CRAWLER_ALLOWED_NETWORKS = ['127.0.0.0/8']",
            "CRAWLING_ENDPOINTS = [{'url': '/system-info'}, {'url': '/stats'}]",
            f"CRAWLED_FIELDS_SETTINGS = {FIELD_SETTINGS!r}",
            "CELERYBEAT_SCHEDULE = {}",
            f"GEOIP_DATABASE = {str(geoip)!r}",
            "REGISTRATION_RATE_LIMIT = '10000 per hour'",
            "LOGIN_RATE_LIMIT = '10000 per minute'",
            "PUBLIC_STATISTICS = True",
            "CRAWLER_CONNECT_TIMEOUT = 2.0",
            "CRAWLER_TOTAL_TIMEOUT = 5.0",
            "",
        )
    )


def start_live_app(backend: str, db_url: str, folder: Path, servers: ServerLoop) -> LiveApp:
    """Write the settings, create the admin user, start `cephalopod run`, wait until it answers."""
    geoip = build_test_mmdb(folder / "geo.mmdb", PLACES)
    settings = folder / "settings.cfg"
    settings.write_text(settings_text(db_url, geoip))
    instance_path = folder / "instance"
    instance_path.mkdir()
    env = {
        **os.environ,
        "CEPHALOPOD_SETTINGS": str(settings),
        "CEPHALOPOD_INSTANCE_PATH": str(instance_path),
    }
    cli = [sys.executable, "-m", "cephalopod"]
    port = free_port()
    live = LiveApp(backend=backend, url=f"http://127.0.0.1:{port}", folder=folder, env=env)
    live.cli("db", "create")
    live.cli("create_usr", *ADMIN)
    live.log_path = folder / "server.log"
    with live.log_path.open("wb") as log:
        live.process = subprocess.Popen(
            [*cli, "run", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    wait_for_server(live)
    for address in PLACES:
        live.instance_hosts[address] = servers.start_app(instance_app(), host=address)
    seed(live)
    return live


#: Servers registered and crawled when the app starts: (organization, address, n).
SEED = [
    ("Alpha University", "127.0.0.2", 1),
    ("Beta Institute", "127.0.0.2", 2),
    ("Gamma Lab", "127.0.0.2", 3),
    ("Delta Observatory", "127.0.0.3", 4),
    ("Epsilon College", "127.0.0.3", 5),
    ("Zeta Research", "127.0.0.4", 6),
    (XSS_IMG, "127.0.0.2", XSS_INSTANCE),
    (XSS_SCRIPT, "127.0.0.3", 7),
]
UNREACHABLE = "Unreachable Foundation"


def seed(live: LiveApp) -> None:
    """Register the SEED servers and one that refuses connections, then crawl them all (CLI)."""
    for organization, address, n in SEED:
        live.seeded[organization] = live.register(organization, address, n=n)
    dead = f"http://127.0.0.1:{free_port()}/i/1"
    live.seeded[UNREACHABLE] = live.api(
        "POST",
        "/api/instance/",
        {"url": dead, "organization": UNREACHABLE, "contact": "Nobody", "email": "no@example.org"},
    )["uuid"]
    live.cli("crawl")


def wait_for_server(live: LiveApp) -> None:
    """Poll until the app answers its login page; on a failed start, fail with its output."""
    assert live.process is not None
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if live.process.poll() is not None:
            raise RuntimeError(
                f"cephalopod run exited with {live.process.returncode}:\n{live.log()}"
            )
        try:
            with urllib.request.urlopen(live.url + "/login", timeout=2) as resp:  # noqa: S310
                if resp.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.1)
    stop_live_app(live)
    raise RuntimeError(f"cephalopod run did not answer in {SERVER_START_TIMEOUT} s:\n{live.log()}")


def stop_live_app(live: LiveApp) -> None:
    """SIGTERM (the server stops cleanly), then kill after a grace period."""
    if live.process is None or live.process.poll() is not None:
        return
    live.process.terminate()
    try:
        live.process.wait(10)
    except subprocess.TimeoutExpired:
        live.process.kill()
        live.process.wait(10)
