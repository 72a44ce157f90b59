"""``cephalopod crawl`` as a person runs it: summary, exit codes, one instance by UUID."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp import web
from flask import Flask

from benchmarks.fleet import ENDPOINTS
from cephalopod.crawler import jobs
from cephalopod.crawler.models import CrawlJob
from cephalopod.db import db
from cephalopod.services import services
from tests.crawler.servers import server_loop


@pytest.fixture
def run_cli(
    make_app: Callable[..., Flask], db_url: str, instance_dir: Path, tmp_path: Path
) -> Callable[..., subprocess.CompletedProcess[str]]:
    make_app()  # the schema exists on this test's database
    settings = tmp_path / "crawl.cfg"
    settings.write_text(
        f"SQLALCHEMY_DATABASE_URI = {db_url!r}\nSECRET_KEY = 'cli'\n"
        f"CRAWLING_ENDPOINTS = {ENDPOINTS!r}\nCRAWLER_ALLOWED_NETWORKS = ['127.0.0.0/8']\n"
    )
    env = {**os.environ, "CEPHALOPOD_SETTINGS": str(settings)}

    def run(*args: str, popen: bool = False) -> Any:
        if popen:  # to read its output as it comes
            return subprocess.Popen(
                [sys.executable, "-m", "cephalopod", "crawl", *args],
                env={**env, "PYTHONUNBUFFERED": "1"},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        return subprocess.run(
            [sys.executable, "-m", "cephalopod", "crawl", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    return run


def test_crawl_all_prints_a_summary_and_succeeds_despite_failures(
    run_cli: Callable[..., subprocess.CompletedProcess[str]],
    make_instance: Callable[..., Any],
    fleet: str,
) -> None:
    for n in range(4):
        make_instance(url=f"{fleet}/i/{n}")
    make_instance(url=f"{fleet}/gone")
    make_instance(url=f"{fleet}/gone/again")
    result = run_cli()
    assert result.returncode == 0, result.stderr
    assert "crawled 6/6" in result.stdout  # plain progress lines when not on a terminal
    assert "Crawled 6 instance(s)" in result.stdout
    assert "4 ok, 2 failed (CPU " in result.stdout
    assert "2  HTTP 404 from /system-info" in result.stdout
    assert "Traceback" not in result.stderr


def test_the_writer_of_a_crawl_of_all_is_forked(
    run_cli: Callable[..., subprocess.CompletedProcess[str]],
    make_instance: Callable[..., Any],
    fleet: str,
    tmp_path: Path,
) -> None:
    """The command starts the job's heartbeat thread after its writer: with a thread already
    running, the writer would be spawned, and import the whole application again."""
    with (tmp_path / "crawl.cfg").open("a") as settings:
        settings.write("LOG_LEVEL = 'DEBUG'\n")
    make_instance(url=f"{fleet}/i/1")
    result = run_cli()
    assert result.returncode == 0, result.stderr
    assert "The crawl's writer is a child process (fork)" in result.stderr
    assert "1 ok, 0 failed" in result.stdout


def test_crawl_one_by_uuid_even_when_disabled(
    run_cli: Callable[..., subprocess.CompletedProcess[str]],
    make_instance: Callable[..., Any],
    fleet: str,
) -> None:
    disabled = make_instance(url=f"{fleet}/i/1", enabled=False)
    for args in ([str(disabled.uuid)], ["--uuid", str(disabled.uuid)]):
        result = run_cli(*args)
        assert result.returncode == 0, result.stderr
        assert "Crawled 1 instance(s)" in result.stdout
        assert "1 ok, 0 failed" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["00000000-0000-4000-8000-000000000000"], "No instance with UUID"),
        (["not-a-uuid"], "No instance with UUID"),
        (["a", "--uuid", "b"], "Give the UUID once"),
    ],
)
def test_crawl_usage_errors_exit_non_zero(
    run_cli: Callable[..., subprocess.CompletedProcess[str]], args: list[str], message: str
) -> None:
    result = run_cli(*args)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_crawl_all_follows_the_crawl_already_running(
    run_cli: Callable[..., subprocess.CompletedProcess[str]],
    make_app: Callable[..., Flask],
    make_instance: Callable[..., Any],
) -> None:
    """A crawl started elsewhere (here: the web interface's runner) is followed, not refused."""
    app = make_app(CRAWLING_ENDPOINTS=[{"url": "/info"}], CRAWLER_TOTAL_TIMEOUT=120.0)
    with server_loop() as loop:
        release = loop.call(_make_event())
        base = loop.start_app(_held_instance(release))
        for n in range(3):
            make_instance(url=f"{base}/{n}")
        with app.app_context():
            job_id = jobs.start_crawl_all(services(app).runner)
        cli = run_cli(popen=True)
        try:
            assert cli.stdout is not None
            first = cli.stdout.readline()  # the instances answer once the CLI follows
            loop.loop.call_soon_threadsafe(release.set)
            rest, errors = cli.communicate(timeout=120)
        finally:
            loop.loop.call_soon_threadsafe(release.set)
            if cli.poll() is None:
                cli.kill()
        assert services(app).runner.join(30)  # type: ignore[attr-defined]
    assert cli.returncode == 0, errors
    assert f"A crawl of all instances was already running (job {job_id})" in first
    assert "crawled 3/3" in rest
    assert "Crawled 3 instance(s)" in rest
    assert "3 ok, 0 failed" in rest
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(CrawlJob)) == 1


async def _make_event() -> asyncio.Event:
    return asyncio.Event()


def _held_instance(release: asyncio.Event) -> web.Application:
    """Instances that answer only once the test releases them."""

    async def info(_request: web.Request) -> web.Response:
        await release.wait()
        return web.json_response({"version": "1"})

    app = web.Application()
    app.router.add_get("/{n}/info", info)
    return app
