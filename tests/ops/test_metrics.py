"""GET /metrics: who may read it, what it says (parsed with prometheus_client's parser)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from cephalopod.app import create_app
from cephalopod.auth import operations as auth_ops
from cephalopod.crawler import jobs
from cephalopod.crawler.models import CrawlJob, CrawlJobChunk
from cephalopod.db import db, utcnow
from cephalopod.instances import operations as instance_ops
from cephalopod.ops.metrics import failure_reason, method_label
from tests.conftest import TEST_SETTINGS
from tests.crawler.servers import ServerLoop, server_loop
from tests.ops.test_health import free_port

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample of an exposition: (name, sorted labels) → value."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def scrape(client: FlaskClient, **kwargs: Any) -> Samples:
    response = client.get("/metrics", **kwargs)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type.startswith("text/plain; version=")
    return parse(response.get_data(as_text=True))


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


# --- who may read it --------------------------------------------------------------------------


@pytest.fixture
def token(app: Flask, fast_hashing: None) -> str:
    with app.app_context():
        auth_ops.create_user("prometheus", "a-password")
        return auth_ops.create_token("prometheus")


FAR = {"REMOTE_ADDR": "203.0.113.7"}


def test_loopback_may_read_without_a_token(client: FlaskClient) -> None:
    assert client.get("/metrics").status_code == 200  # the test client's 127.0.0.1
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "::1"}).status_code == 200
    dual_stack = {"REMOTE_ADDR": "::ffff:127.0.0.1"}
    assert client.get("/metrics", environ_base=dual_stack).status_code == 200


def test_other_addresses_need_a_token(client: FlaskClient, token: str) -> None:
    refused = client.get("/metrics", environ_base=FAR)
    assert refused.status_code == 401
    assert "METRICS_ALLOWED_NETWORKS" in refused.get_json()["error"]
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = client.get("/metrics", environ_base=FAR, headers={"Authorization": "Bearer ceph_no"})
    assert wrong.status_code == 401
    basic = client.get("/metrics", environ_base=FAR, headers={"Authorization": f"Basic {token}"})
    assert basic.status_code == 401
    bearer = {"Authorization": f"Bearer {token}"}
    assert client.get("/metrics", environ_base=FAR, headers=bearer).status_code == 200


def test_the_allowlist_is_a_setting(make_app: Callable[..., Flask]) -> None:
    client = make_app(METRICS_ALLOWED_NETWORKS=["203.0.113.0/24"]).test_client()
    assert client.get("/metrics", environ_base=FAR).status_code == 200
    assert client.get("/metrics").status_code == 401  # loopback is no longer listed


def test_behind_a_proxy_the_forwarded_address_counts(make_app: Callable[..., Flask]) -> None:
    proxied = make_app(USE_PROXY=True).test_client()
    far_client = {"X-Forwarded-For": "203.0.113.9"}
    assert proxied.get("/metrics", headers=far_client).status_code == 401
    assert proxied.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"}).status_code == 200
    # without USE_PROXY the header is a stranger's claim, not an address
    direct = make_app().test_client()
    forged = {"X-Forwarded-For": "127.0.0.1"}
    assert direct.get("/metrics", environ_base=FAR, headers=forged).status_code == 401


def test_metrics_are_never_cached_and_set_no_cookie(client: FlaskClient) -> None:
    response = client.get("/metrics")
    assert response.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in response.headers


# --- the database's numbers ---------------------------------------------------------------------


def test_instances_by_status_and_health_and_registrations(
    app: Flask, client: FlaskClient, make_instance: Callable[..., Any]
) -> None:
    layout = [(True, "ok"), (True, "ok"), (True, "error"), (False, "error"), (True, "never")]
    made = [make_instance(enabled=e, crawl_status=h) for e, h in layout]
    samples = scrape(client)
    for enabled in (True, False):
        for health in ("ok", "error", "never"):
            expected = layout.count((enabled, health))
            status = "enabled" if enabled else "disabled"
            assert value(samples, "cephalopod_instances", status=status, health=health) == expected
    assert value(samples, "cephalopod_registrations_total") == len(layout)

    # a deletion lowers the instances, never the registrations (a counter only goes up)
    with app.app_context():
        instance_ops.delete_instance(instance_ops.get_instance(str(made[0].uuid)))
    body = {"url": "https://new.example.org", "contact": "C", "email": "c@example.org"}
    assert client.post("/api/instance/", json={**body, "organization": "O"}).status_code == 201
    samples = scrape(client)
    assert value(samples, "cephalopod_registrations_total") == len(layout) + 1
    assert value(samples, "cephalopod_instances", status="enabled", health="ok") == 1
    assert value(samples, "cephalopod_instances", status="enabled", health="never") == 2


def test_registrations_are_the_instances_and_the_deletions(
    app: Flask, client: FlaskClient, make_instance: Callable[..., Any]
) -> None:
    made = [make_instance() for _ in range(3)]  # however they came: a hub upgraded, say
    assert value(scrape(client), "cephalopod_registrations_total") == 3
    with app.app_context():
        for instance in made[:2]:
            instance_ops.delete_instance(instance_ops.get_instance(str(instance.uuid)))
    make_instance()
    samples = scrape(client)
    assert value(samples, "cephalopod_registrations_total") == 4
    assert sum(v for (name, _), v in samples.items() if name == "cephalopod_instances") == 2


@pytest.fixture(scope="module")
def instances_loop() -> Iterator[ServerLoop]:
    with server_loop() as loop:
        yield loop


@pytest.fixture(scope="module")
def misbehaving(instances_loop: ServerLoop) -> str:
    """Instances under /<kind>/info: ok, 404, 500, invalid JSON, a list, and one that hangs."""

    async def info(request: web.Request) -> web.Response:
        kind = request.match_info["kind"]
        if kind == "hang":
            await asyncio.sleep(30)
        replies = {
            "ok": (200, b'{"version": "1.0"}'),
            "missing": (404, b"{}"),
            "broken": (500, b"{}"),
            "garbled": (200, b'{"a": '),
            "list": (200, b"[1, 2]"),
        }
        status, body = replies[kind]
        return web.Response(status=status, body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/{kind}/info", info)
    return instances_loop.start_app(app)


def test_the_last_crawl_its_failures_by_reason(
    make_app: Callable[..., Flask], make_instance: Callable[..., Any], misbehaving: str
) -> None:
    app = make_app(CRAWLING_ENDPOINTS=[{"url": "/info"}], CRAWLER_TOTAL_TIMEOUT=0.5)
    kinds = ["ok", "ok", "missing", "broken", "garbled", "list", "hang"]
    for kind in kinds:
        make_instance(url=f"{misbehaving}/{kind}")
    make_instance(url=f"http://127.0.0.1:{free_port()}")  # nothing listens: refused
    make_instance(url=f"{misbehaving}/missing", enabled=False)  # not crawled, not counted
    with app.app_context():
        job_id = jobs.create_job()
        assert job_id is not None
        jobs.run_crawl_all(app, job_id)
        job = db.session.get(CrawlJob, job_id)
        assert job is not None
        assert job.started_at is not None
        assert job.finished_at is not None
        duration = (job.finished_at - job.started_at).total_seconds()
        finished = job.finished_at.timestamp()
    samples = scrape(app.test_client())
    failures = {
        dict(labels)["reason"]: v
        for (name, labels), v in samples.items()
        if name == "cephalopod_crawl_failures"
    }
    assert failures == {
        "http_4xx": 1,
        "http_5xx": 1,
        "invalid_json": 2,
        "timeout": 1,
        "connect": 1,
    }
    assert value(samples, "cephalopod_last_crawl_duration_seconds") == pytest.approx(duration)
    assert value(samples, "cephalopod_last_crawl_instances_per_second") == pytest.approx(
        8 / duration
    )
    assert value(samples, "cephalopod_last_crawl_instances", result="ok") == 2
    assert value(samples, "cephalopod_last_crawl_instances", result="failed") == 6
    assert value(samples, "cephalopod_last_crawl_timestamp_seconds") == pytest.approx(finished)
    assert value(samples, "cephalopod_crawl_running") == 0
    assert value(samples, "cephalopod_instances", status="enabled", health="error") == 6


def test_no_crawl_yet_means_no_last_crawl_samples(client: FlaskClient) -> None:
    samples = scrape(client)
    names = {name for name, _labels in samples}
    assert "cephalopod_last_crawl_duration_seconds" not in names
    assert "cephalopod_last_crawl_timestamp_seconds" not in names
    assert value(samples, "cephalopod_crawl_running") == 0
    assert value(samples, "cephalopod_database_up") == 1


def test_the_running_crawl_progress_sums_the_workers_chunks(
    app: Flask, client: FlaskClient
) -> None:
    # as Celery workers leave it mid-crawl: the job row, and one progress row per chunk
    job_id = str(uuid.uuid4())
    with app.app_context():
        db.session.add(
            CrawlJob(id=job_id, state="running", total=1200, chunks_total=3, created_at=utcnow())
        )
        db.session.flush()
        for first_id, done in ((1, 500), (501, 120), (1001, 7)):
            db.session.add(CrawlJobChunk(job_id=job_id, first_id=first_id, done=done))
        db.session.commit()
    samples = scrape(client)
    assert value(samples, "cephalopod_crawl_running") == 1
    assert value(samples, "cephalopod_crawl_progress_instances", kind="done") == 627
    assert value(samples, "cephalopod_crawl_progress_instances", kind="total") == 1200


@pytest.mark.postgres
def test_a_database_down_still_serves_the_process_metrics(instance_dir: Path) -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nothing"
    app = create_app(overrides={**TEST_SETTINGS, "SQLALCHEMY_DATABASE_URI": url})
    client = app.test_client()
    client.get("/healthz")
    samples = scrape(client)
    assert value(samples, "cephalopod_database_up") == 0
    labels = {"endpoint": "ops.healthz", "method": "GET", "status": "503"}
    assert value(samples, "cephalopod_http_requests_total", **labels) == 1


# --- HTTP requests ------------------------------------------------------------------------------


def test_requests_by_endpoint_method_and_status_with_latency(client: FlaskClient) -> None:
    unknown = f"/api/instance/{uuid.uuid4()}"
    for _ in range(3):
        assert client.get(unknown).status_code == 404
    assert client.get("/no/such/page").status_code == 404
    assert client.open("/healthz", method="BREW").status_code == 405
    assert client.post("/api/instance/", data="x").status_code == 400
    samples = scrape(client)

    def requests(endpoint: str, method: str, status: str) -> float | None:
        labels = {"endpoint": endpoint, "method": method, "status": status}
        count = value(samples, "cephalopod_http_request_duration_seconds_count", **labels)
        assert count == value(samples, "cephalopod_http_requests_total", **labels)
        return count

    assert requests("instances_api.instance", "GET", "404") == 3
    assert requests("unmatched", "GET", "404") == 1
    assert requests("unmatched", "other", "405") == 1
    assert requests("instances_api.create", "POST", "400") == 1
    labels = {"endpoint": "instances_api.instance", "method": "GET", "status": "404"}
    inf = value(samples, "cephalopod_http_request_duration_seconds_bucket", le="+Inf", **labels)
    assert inf == 3
    seconds = value(samples, "cephalopod_http_request_duration_seconds_sum", **labels)
    assert seconds is not None
    assert seconds > 0
    # routes by name: no raw path (strangers' uuids, any URL) ever becomes a label
    for _name, labels_ in samples:
        for _key, label in labels_:
            assert not label.startswith("/"), label


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        ("timeout after 15 s", "timeout"),
        ("connect timeout after 5 s", "timeout"),
        ("cannot resolve host indico.example.org", "dns"),
        ("TLS certificate verification failed", "tls"),
        ("TLS handshake failed", "tls"),
        ("address 10.0.0.1 is not public", "not_public"),
        ("connection refused", "connect"),
        ("connection reset", "connect"),
        ("host unreachable", "connect"),
        ("cannot connect: Permission denied", "connect"),
        ("HTTP 404 from /system-info", "http_4xx"),
        ("HTTP 503 from /system-info", "http_5xx"),
        ("HTTP 304 from /system-info", "http_other"),
        ("too many redirects", "redirect"),
        ("invalid redirect location from /info", "redirect"),
        ("response larger than 1 MiB", "too_large"),
        ("invalid JSON from /info", "invalid_json"),
        ("response is not a JSON object", "invalid_json"),
        ("JSON nested deeper than 32 levels", "invalid_json"),
        ("JSON contains a NUL character", "invalid_json"),
        ("server disconnected", "protocol"),
        ("invalid HTTP response: Bad status line", "protocol"),
        ("invalid URL", "invalid_url"),
        ("unsupported URL scheme 'ftp'", "invalid_url"),
        ("the reply could not be stored", "unstorable"),
        ("internal error: KeyError", "internal"),
        ("something new", "other"),
        (None, "other"),
    ],
)
def test_failure_reasons_are_a_bounded_set(error: str | None, reason: str) -> None:
    assert failure_reason(error) == reason


@pytest.mark.parametrize(
    ("method", "label"), [("GET", "GET"), ("PATCH", "PATCH"), ("BREW", "other"), ("get", "other")]
)
def test_method_labels(method: str, label: str) -> None:
    assert method_label(method) == label


# --- several processes --------------------------------------------------------------------------

WORKER = """
import sys
from cephalopod.app import create_app
app = create_app(overrides={"SECRET_KEY": "s", "SQLALCHEMY_DATABASE_URI": sys.argv[1]})
client = app.test_client()
for _ in range(int(sys.argv[2])):
    assert client.get("/healthz").status_code == 200
if sys.argv[3] == "scrape":
    sys.stdout.write(client.get("/metrics").get_data(as_text=True))
"""


@pytest.mark.slow
def test_multiprocess_mode_sums_every_process(
    app: Flask, db_url: str, tmp_path: Path, make_instance: Callable[..., Any]
) -> None:
    make_instance()
    folder = tmp_path / "prometheus"
    folder.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)}

    def run(count: int, scrape: bool) -> str:
        done = subprocess.run(
            [sys.executable, "-c", WORKER, db_url, str(count), "scrape" if scrape else "-"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    run(3, scrape=False)
    run(4, scrape=False)
    samples = parse(run(5, scrape=True))  # a third process answers for all three
    labels = {"endpoint": "ops.healthz", "method": "GET", "status": "200"}
    assert value(samples, "cephalopod_http_requests_total", **labels) == 12
    assert value(samples, "cephalopod_http_request_duration_seconds_count", **labels) == 12
    # the database's numbers are read once, not once per process
    assert value(samples, "cephalopod_registrations_total") == 1
    assert value(samples, "cephalopod_instances", status="enabled", health="never") == 1
