"""No secret in any log line of a real `cephalopod run`, at DEBUG, in every structured format.

A maintainer logs in (and fails once), creates an API token, uses it (also where it has no
business: in a path), an instance registers and is edited; then every line the server and
the commands wrote is searched for the password, the token, the secret key and the
passwords of the database URL.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.ops.test_logs import parse_line
from tests.test_server import log_in, run_server, server_env

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("_loopback_only")]


@pytest.fixture
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "cephalopod", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.mark.parametrize("fmt", ["json", "keyvalue"])
def test_no_secret_reaches_a_log_line(tmp_path: Path, fmt: str) -> None:
    password = "pw-" + secrets.token_urlsafe(16)
    wrong = "wrong-" + secrets.token_urlsafe(16)
    secret_key = "key-" + secrets.token_urlsafe(32)
    settings = (
        f"SQLALCHEMY_DATABASE_URI = 'sqlite:///{tmp_path / 'hub.db'}'\n"
        f"SECRET_KEY = {secret_key!r}\n"
        f"LOG_FORMAT = {fmt!r}\n"
        "LOG_LEVEL = 'DEBUG'\n"
    )
    env = server_env(tmp_path, settings)
    cli(env, "db", "upgrade")
    commands = [cli(env, "create_usr", "admin", password)]
    with run_server(env, tmp_path) as server:
        hub = server.url
        stranger = requests.Session()
        form = stranger.get(f"{hub}/login", timeout=10).text
        csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form)
        assert csrf is not None
        failed = stranger.post(
            f"{hub}/login",
            data={"csrf_token": csrf.group(1), "username": "admin", "password": wrong},
            headers={"Referer": f"{hub}/login"},
            timeout=10,
        )
        assert failed.status_code == 401
        session = log_in(hub, password)
        commands.append(cli(env, "create_token", "admin"))
        token = commands[-1].stdout.strip().splitlines()[-1]
        bearer = {"Authorization": f"Bearer {token}", "X-Request-ID": "with-the-token"}
        assert requests.get(f"{hub}/api/admin/instances", headers=bearer, timeout=10).ok
        assert requests.get(f"{hub}/metrics", headers=bearer, timeout=10).ok
        misplaced = requests.get(f"{hub}/api/instance/{token}?token={token}", timeout=10)
        assert misplaced.status_code == 404
        body = {"url": "https://hub-test.example.org", "contact": "C", "email": "c@example.org"}
        created = requests.post(
            f"{hub}/api/instance/", json={**body, "organization": "O"}, timeout=10
        )
        assert created.status_code == 201
        uuid = created.json()["uuid"]
        edit = session.patch(
            f"{hub}/api/instance/{uuid}", json={"email": "new@example.org"}, timeout=10
        )
        assert edit.ok
    server_lines = server.output().splitlines()
    command_lines = [line for done in commands for line in done.stderr.splitlines()]

    everything = "\n".join([server.output(), *(d.stderr for d in commands)])
    for secret in (password, wrong, token, token.removeprefix("ceph_"), secret_key):
        assert secret not in everything

    # and they are structured lines, one per event, that say what happened
    entries = [parse_line(fmt, line) for line in server_lines + command_lines]
    access = [e for e in entries if e["logger"] == "cephalopod.access"]
    tokened = [e["path"] for e in access if e["request_id"] == "with-the-token"]
    assert tokened == ["/api/admin/instances", "/metrics"]
    registered = next(e for e in access if e["path"] == "/api/instance/" and e["method"] == "POST")
    assert registered["instance_uuid"] == uuid
    assert str(registered["status"]) == "201"
    assert any(e["path"] == "/api/instance/ceph_***" for e in access)
    assert json.dumps(entries)  # every line parsed
