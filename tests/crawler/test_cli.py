"""``cephalopod crawl`` as a person runs it: summary, exit codes, one instance by UUID."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from benchmarks.fleet import ENDPOINTS


@pytest.fixture
def cli_env(
    make_app: Callable[..., Flask], db_url: str, instance_dir: Path, tmp_path: Path
) -> dict[str, str]:
    """The environment of a ``cephalopod crawl`` on the test's database."""
    make_app()  # the schema exists on this test's database
    settings = tmp_path / "crawl.cfg"
    settings.write_text(
        f"SQLALCHEMY_DATABASE_URI = {db_url!r}\nSECRET_KEY = 'cli'\n"
        f"CRAWLING_ENDPOINTS = {ENDPOINTS!r}\nCRAWLER_ALLOWED_NETWORKS = ['127.0.0.0/8']\n"
    )
    return {**os.environ, "CEPHALOPOD_SETTINGS": str(settings)}


@pytest.fixture
def run_cli(cli_env: dict[str, str]) -> Callable[..., subprocess.CompletedProcess[str]]:
    env = cli_env

    def run(*args: str) -> subprocess.CompletedProcess[str]:
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


def _set_job(app: Flask, job_id: str, **values: Any) -> None:
    from cephalopod.crawler.models import CrawlJob
    from cephalopod.db import db

    with app.app_context():
        job = db.session.get(CrawlJob, job_id)
        for name, value in values.items():
            setattr(job, name, value)
        db.session.commit()


def test_crawl_all_follows_a_crawl_that_is_already_running(
    make_app: Callable[..., Flask], cli_env: dict[str, str]
) -> None:
    """A crawl started elsewhere (scheduler, worker, web page) is followed to its end, exit 0."""
    from cephalopod.crawler import jobs
    from cephalopod.db import utcnow

    app = make_app()
    with app.app_context():
        job_id = jobs.create_job()
    assert job_id is not None
    _set_job(app, job_id, state="running", started_at=utcnow(), total=4)
    command = [sys.executable, "-m", "cephalopod", "crawl"]
    with subprocess.Popen(command, env=cli_env, stdout=subprocess.PIPE, text=True) as cli:
        assert cli.stdout is not None
        first = cli.stdout.readline()  # the command has seen the running job
        assert f"already running (job {job_id}): following it" in first
        # what the process that runs the crawl writes meanwhile
        _set_job(app, job_id, done=2, ok=2)
        _set_job(app, job_id, done=4, ok=3, failed=1, state="done", finished_at=utcnow())
        rest, _ = cli.communicate(timeout=60)
    assert cli.returncode == 0
    assert "Crawled 4 instance(s)" in rest
    assert "3 ok, 1 failed" in rest
    with app.app_context():
        assert jobs.active_job() is None  # no second job was started
        assert len(list(jobs.db.session.scalars(jobs.sa.select(jobs.CrawlJob)))) == 1


def test_a_crawl_that_ended_failed_is_not_followed(
    make_app: Callable[..., Flask],
    run_cli: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    from cephalopod.crawler import jobs
    from cephalopod.db import utcnow

    app = make_app()
    with app.app_context():
        job_id = jobs.create_job()
    assert job_id is not None
    _set_job(app, job_id, state="failed", error="database went away", finished_at=utcnow())
    # a failed job is not active: a new crawl starts instead of following it
    result = run_cli()
    assert result.returncode == 0, result.stderr
    assert "following it" not in result.stdout
    assert "Crawled 0 instance(s)" in result.stdout
