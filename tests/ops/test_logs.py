"""Structured logs: the three formats, the request id, the instance uuid, LOG_LEVEL, no secrets."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from cephalopod.ops import logs

#: A logfmt pair: key=bare or key="quoted with \" escapes".
PAIR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)')
TEXT_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (?P<level>[A-Z]+) (?P<logger>\S+): ")


def parse_keyvalue(line: str) -> dict[str, str]:
    """Parse one logfmt line; the whole line must be pairs."""
    pairs = PAIR.findall(line)
    assert " ".join(f"{k}={v}" for k, v in pairs) == line, line
    return {k: json.loads(v) if v.startswith('"') else v for k, v in pairs}


def parse_line(fmt: str, line: str) -> dict[str, Any]:
    """One log line as a dictionary (json and keyvalue)."""
    return json.loads(line) if fmt == "json" else parse_keyvalue(line)


@pytest.fixture
def capture() -> Iterator[Callable[..., io.StringIO]]:
    """Configure the root logger into a buffer (after the app is built); undo it afterwards."""
    root = logging.getLogger()
    level = root.level
    handlers: list[logging.Handler] = []

    def start(
        fmt: str = "json", level: str = "DEBUG", secrets: tuple[str, ...] = ()
    ) -> io.StringIO:
        buffer = io.StringIO()
        handlers.append(logs.configure_logging(level, fmt, secrets, stream=buffer))
        return buffer

    yield start
    for handler in handlers:
        root.removeHandler(handler)
    root.setLevel(level)


def lines(buffer: io.StringIO) -> list[str]:
    return buffer.getvalue().splitlines()


# --- formats ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "keyvalue"])
def test_one_line_per_event_even_with_newlines_and_a_traceback(
    fmt: str, capture: Callable[..., io.StringIO]
) -> None:
    buffer = capture(fmt)
    log = logging.getLogger("cephalopod.test")
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        log.exception("Organization %r\nFAKE 2026 ERROR forged", "Evil\r\nOrg")
    log.info("plain", extra={"instance_uuid": "u-1", "count": 3, "quote": 'a "b" c=d'})
    found = lines(buffer)
    assert len(found) == 2
    first, second = (parse_line(fmt, line) for line in found)
    assert first["level"] == "ERROR"
    assert first["logger"] == "cephalopod.test"
    assert first["message"] == "Organization 'Evil\\r\\nOrg'\nFAKE 2026 ERROR forged"
    assert "ValueError: bad\nvalue" in first["exception"]
    assert second["message"] == "plain"
    assert second["instance_uuid"] == "u-1"
    assert second["quote"] == 'a "b" c=d'
    assert str(second["count"]) == "3"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", second["time"])


def test_text_is_the_human_format_of_before(capture: Callable[..., io.StringIO]) -> None:
    buffer = capture("text", "INFO")
    log = logging.getLogger("cephalopod.test")
    log.debug("not shown at INFO")
    log.info("Crawled %d instances", 3)
    log.warning("Organization %s", "Evil\nFAKE 2026 ERROR forged")
    found = lines(buffer)
    assert len(found) == 2
    match = TEXT_LINE.match(found[0])
    assert match is not None
    assert (match["level"], match["logger"]) == ("INFO", "cephalopod.test")
    assert found[0].endswith(": Crawled 3 instances")
    assert found[1].endswith(": Organization Evil\\nFAKE 2026 ERROR forged")  # cannot forge


def test_task_context_names_the_instance(capture: Callable[..., io.StringIO]) -> None:
    buffer = capture("text")
    log = logging.getLogger("cephalopod.test")
    with logs.log_context(instance_uuid="1234", job_id="j"):
        log.info("inside")
    log.info("outside")
    inside, outside = lines(buffer)
    assert inside.endswith("inside [instance_uuid=1234 job_id=j]")
    assert outside.endswith("outside")


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("token ceph_AbCdEf0123456789_-xyz used", "token ceph_*** used"),
        ("Authorization: Bearer abc.def-ghi", "Authorization: Bearer ***"),
        ("Authorization: basic dXNlcjpwYXNz", "Authorization: basic ***"),
        ("redis://:hunter22@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("postgresql+psycopg://app:pa55word@db/x", "postgresql+psycopg://app:***@db/x"),
        ("login with password=hunter22&next=/", "login with password=***&next=/"),
        ('{"token": "abc123"}', '{"token": "***"}'),
        ("the configured one: s3cr3t-k3y!", "the configured one: ***"),
        ("nothing secret here", "nothing secret here"),
    ],
)
def test_secrets_are_masked(text: str, masked: str) -> None:
    assert logs.Redactor(["s3cr3t-k3y!"])(text) == masked


def test_the_secrets_of_a_configuration() -> None:
    config = {
        "SECRET_KEY": "the-secret-key",
        "MAIL_PASSWORD": "mail-pass",
        "SQLALCHEMY_DATABASE_URI": "postgresql://u:db-pass@h/x",
        "CELERY_BROKER_URL": "redis://:broker-pass@h:6379/0",
        "CELERY_RESULT_BACKEND": None,
        "RATELIMIT_STORAGE_URI": "memory://",
    }
    assert sorted(logs.secrets_of(config)) == sorted(
        ["the-secret-key", "mail-pass", "db-pass", "broker-pass"]
    )


@pytest.mark.parametrize(
    ("header", "kept"),
    [
        ("abc-123", True),
        ("4bf92f3577b34da6a3ce929d0e0e4736", True),
        ("00-4bf92f35-00f067aa0ba902b7-01", True),
        ("two words", False),
        ("line\nbreak", False),
        ("x" * 129, False),
        ('quote"', False),
        ("", False),
        (None, False),
    ],
)
def test_a_client_request_id_is_kept_only_when_sane(header: str | None, kept: bool) -> None:
    found = logs.request_id_from(header)
    assert (found == header) is kept
    assert re.fullmatch(r"[A-Za-z0-9._:/+=@-]{1,128}", found)


# --- requests -----------------------------------------------------------------------------------


def access_lines(buffer: io.StringIO) -> list[dict[str, Any]]:
    entries = [json.loads(line) for line in lines(buffer)]
    return [e for e in entries if e["logger"] == "cephalopod.access"]


def test_request_id_and_instance_uuid_on_every_request_line(
    client: FlaskClient, capture: Callable[..., io.StringIO], make_instance: Callable[..., Any]
) -> None:
    known = str(make_instance().uuid)
    buffer = capture("json")
    body = {"url": "https://a.example.org", "contact": "C", "email": "c@example.org"}
    created = client.post(
        "/api/instance/", json={**body, "organization": "O"}, headers={"X-Request-ID": "req-1"}
    )
    assert created.headers["X-Request-ID"] == "req-1"
    new = created.get_json()["uuid"]
    read = client.get(f"/api/instance/{known}", headers={"X-Request-ID": "bad id <script>"})
    given = read.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", given)
    client.get("/healthz")
    registration, reading, health = access_lines(buffer)
    assert registration["request_id"] == "req-1"
    assert registration["instance_uuid"] == new
    assert (registration["method"], registration["status"]) == ("POST", 201)
    assert registration["endpoint"] == "instances_api.create"
    assert registration["duration_ms"] > 0
    assert reading["request_id"] == given
    assert reading["instance_uuid"] == known
    assert reading["path"] == f"/api/instance/{known}"
    assert health["level"] == "DEBUG"  # polled every few seconds: not INFO
    assert "instance_uuid" not in health


def test_lines_logged_inside_a_request_carry_its_id(
    app: Flask, capture: Callable[..., io.StringIO]
) -> None:
    @app.get("/_test/log")
    def logs_something() -> str:
        logging.getLogger("cephalopod.test").warning("inside the view")
        return "ok"

    buffer = capture("json")
    app.test_client().get("/_test/log", headers={"X-Request-ID": "r-42"})
    inside = next(json.loads(x) for x in lines(buffer) if "inside the view" in x)
    assert inside["request_id"] == "r-42"


def test_an_error_log_line_is_one_json_line(
    app: Flask, capture: Callable[..., io.StringIO]
) -> None:
    @app.get("/api/_test/crash")
    def crash() -> str:
        raise RuntimeError("crash with password=hunter22")

    buffer = capture("json")
    assert app.test_client().get("/api/_test/crash").status_code == 500
    error = next(json.loads(x) for x in lines(buffer) if '"ERROR"' in x)
    assert "RuntimeError: crash with password=***" in error["exception"]
    assert "hunter22" not in buffer.getvalue()


# --- the settings, through the command line -----------------------------------------------------


def run_cli(tmp_path: Path, settings: str, *args: str) -> subprocess.CompletedProcess[str]:
    cfg = tmp_path / "settings.cfg"
    cfg.write_text(f"SQLALCHEMY_DATABASE_URI = 'sqlite:///{tmp_path / 'c.db'}'\n{settings}")
    env = {"CEPHALOPOD_SETTINGS": str(cfg), "CEPHALOPOD_INSTANCE_PATH": str(tmp_path / "i")}
    return subprocess.run(
        [sys.executable, "-m", "cephalopod", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("fmt", ["json", "keyvalue"])
def test_log_format_and_level_from_the_settings(tmp_path: Path, fmt: str) -> None:
    done = run_cli(tmp_path, f"LOG_FORMAT = {fmt!r}\nLOG_LEVEL = 'info'\n", "crawl")
    assert done.returncode == 0, done.stderr
    # every line on stderr is a log line, but what the command itself tells a person
    said = [x for x in done.stderr.splitlines() if x.startswith("Note: ")]
    entries = [parse_line(fmt, x) for x in done.stderr.splitlines() if x not in said]
    assert any(e["logger"] == "cephalopod.settings" and e["level"] == "WARNING" for e in entries)
    assert any(e["logger"] == "cephalopod.crawler.jobs" and e["level"] == "INFO" for e in entries)
    assert "Crawled 0 instance(s)" in done.stdout  # what the command says stays plain text

    quiet = run_cli(tmp_path, f"LOG_FORMAT = {fmt!r}\nLOG_LEVEL = 'WARNING'\n", "crawl")
    assert quiet.returncode == 0, quiet.stderr
    logged = [x for x in quiet.stderr.splitlines() if not x.startswith("Note: ")]
    assert logged == []


def test_verbose_overrides_the_log_level(tmp_path: Path) -> None:
    done = run_cli(tmp_path, "LOG_FORMAT = 'json'\nLOG_LEVEL = 'ERROR'\n", "-v", "crawl")
    assert done.returncode == 0, done.stderr
    # (alembic's lines while the app is imported, before the settings are read, are text)
    levels = {json.loads(x)["level"] for x in done.stderr.splitlines() if x.startswith("{")}
    assert "INFO" in levels
