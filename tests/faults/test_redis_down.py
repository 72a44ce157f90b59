"""Redis down (a Redis of the test's own, as broker and rate-limit store, then stopped).

The registration API, the admin API and the pages keep serving; "crawl all" and "crawl now"
answer 503 that the queue is unavailable, and the job they could not start does not block
the next one; the rate limiter falls back to counting in the process's memory (it keeps
limiting, from zero: the README's "Reliability").
"""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest
import requests

from benchmarks.fleet import free_port
from cephalopod.errors import QUEUE_DOWN
from tests.faults.services import (
    ADMIN_PASSWORD,
    PrivateRedis,
    create_token,
    end_process,
    start_server,
    write_settings,
)

pytestmark = pytest.mark.slow

LIMIT = 6


def _register(base: str, n: int) -> requests.Response:
    body = {"url": f"http://127.0.0.1:9/{n}", "contact": "C", "email": "c@example.org",
            "organization": f"O {n}"}  # fmt: skip
    return requests.post(f"{base}/api/instance/", json=body, timeout=30)


def _log_in(base: str) -> requests.Session:
    session = requests.Session()
    page = session.get(f"{base}/login", timeout=30)
    assert page.status_code == 200
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text)
    assert match, page.text
    form = {"csrf_token": match[1], "username": "admin", "password": ADMIN_PASSWORD}
    reply = session.post(f"{base}/login", data=form, timeout=30, allow_redirects=False)
    assert reply.status_code in (302, 303), reply.text
    return session


def test_redis_down_leaves_the_api_and_pages_serving(
    tmp_path: Path, broker: PrivateRedis, instance_dir: Path
) -> None:
    settings = write_settings(
        tmp_path / "server.cfg",
        SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'cephalopod.db'}",
        SECRET_KEY="fault-test",
        CELERY_BROKER_URL=broker.url,
        RATELIMIT_STORAGE_URI=broker.url,
        REGISTRATION_RATE_LIMIT=f"{LIMIT} per hour",
    )
    log = tmp_path / "server.log"
    token = create_token(settings, log)
    admin = {"Authorization": f"Bearer {token}"}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(settings, log, port)
    try:
        # Redis up: two registrations counted in Redis
        first = [_register(base, n) for n in range(2)]
        assert [reply.status_code for reply in first] == [201, 201]
        assert first[1].headers["X-RateLimit-Remaining"] == str(LIMIT - 2)
        mine = first[0].json()["uuid"]
        session = _log_in(base)

        broker.stop()

        # the protocol and the pages go on
        assert requests.get(f"{base}/api/instance/{mine}", timeout=30).status_code == 200
        for path in ("/", "/servers", f"/servers/{mine}", "/statistics"):
            page = session.get(base + path, timeout=30)
            assert page.status_code == 200, (path, page.text[:500])
        listing = requests.get(f"{base}/api/admin/instances", headers=admin, timeout=30)
        assert listing.status_code == 200
        assert listing.json()["total"] == 2
        # the rate limiter falls back to this process's memory: a full budget, still limited
        during = [_register(base, n) for n in range(10, 10 + LIMIT + 1)]
        assert [reply.status_code for reply in during] == [201] * LIMIT + [429]
        assert during[-1].json()["error"].startswith("Too many requests")
        # what needs the queue says it is unavailable, and starts nothing
        for path in ("/api/admin/crawl", f"/api/admin/instances/{mine}/crawl"):
            reply = requests.post(base + path, headers=admin, timeout=30)
            assert reply.status_code == 503, reply.text
            assert reply.json() == {"error": QUEUE_DOWN}
            assert reply.headers["Retry-After"] == "5"

        broker.start()  # the same port, empty
        # the job that could not be queued ended as failed: it does not block a new one
        again = requests.post(f"{base}/api/admin/crawl", headers=admin, timeout=30)
        assert again.status_code == 202, again.text
        status = requests.get(f"{base}/api/admin/crawl/{again.json()['job']}", headers=admin,
                              timeout=30)  # fmt: skip
        assert status.json()["state"] == "queued"  # in the broker, waiting for a worker
    finally:
        code = end_process(server, signal.SIGTERM)
    text = log.read_text()
    assert code == 0, text
    assert "Rate limit storage unreachable - falling back to in-memory storage" in text
    assert "Traceback" not in text, text
