"""The real ``cephalopod run`` in a subprocess, spoken to like Indico speaks to it.

Each start is a new process on a free port of 127.0.0.1; a start that fails shows the server's
output (Datasette's ``wait_for_server``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.databases import empty_database

CEPHALOPOD = Path(sys.executable).with_name("cephalopod")
PASSWORD_RE = re.compile(r"created the user 'admin' with the password\s+(\S+)")
PAYLOAD = {
    "url": "https://indico.example.org/",
    "contact": "Ann Example",
    "email": "ann@example.org",
    "organization": "Example Lab",
}
HEADERS = {"Content-Type": "application/json"}  # what Indico's community hub client sends
PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """requests honours proxy variables; here every request must go straight to 127.0.0.1."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    """A running ``cephalopod run`` process."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def output(self) -> str:
        """Everything the server printed so far (stdout and stderr)."""
        return self.log.read_text(errors="replace")


def wait_for_server(server: Server, port: int, timeout: float = 60) -> None:
    """Return when the port accepts connections; fail with the server's output otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(
                f"cephalopod run exited with {server.process.returncode}:\n{server.output()}"
            )
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    pytest.fail(
        f"cephalopod run did not listen on port {port} within {timeout}s:\n{server.output()}"
    )


@contextlib.contextmanager
def run_server(env: dict[str, str], folder: Path, command: str = "run") -> Iterator[Server]:
    """Start the real server on a free port; stop it with SIGTERM and demand a clean exit."""
    port = free_port()
    log = folder / f"server-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(CEPHALOPOD), command, "--host", "127.0.0.1", "--port", str(port)],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=folder,
        )
    scheme = "https" if "SSL_CERT" in (Path(env["CEPHALOPOD_SETTINGS"]).read_text()) else "http"
    server = Server(process, f"{scheme}://127.0.0.1:{port}", log)
    try:
        wait_for_server(server, port)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:  # pragma: no cover - a hung server
                process.kill()
                process.wait()
                pytest.fail(f"cephalopod run ignored SIGTERM:\n{server.output()}")
    assert process.returncode == 0, server.output()
    assert "Traceback" not in server.output(), server.output()


# No periodic crawl: it would resolve and fetch the registered (public) example URLs, and
# traffic must stay on loopback. The crawler has its own tests against local servers.
NO_CRAWL = "CELERYBEAT_SCHEDULE = {}\n"


def server_env(tmp_path: Path, settings: str) -> dict[str, str]:
    """Settings file and instance folder of a server."""
    path = tmp_path / "settings.cfg"
    path.write_text(NO_CRAWL + settings)
    return {
        "CEPHALOPOD_SETTINGS": str(path),
        "CEPHALOPOD_INSTANCE_PATH": str(tmp_path / "instance"),
    }


def log_in(hub: str, password: str, **kwargs: object) -> requests.Session:
    """Log in as admin through the form, as a browser does; return the session."""
    session = requests.Session()
    session.trust_env = False
    form = session.get(f"{hub}/login", timeout=10, **kwargs)  # type: ignore[arg-type]
    assert form.status_code == 200
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form.text)
    assert token, form.text
    response = session.post(
        f"{hub}/login",
        data={"csrf_token": token.group(1), "username": "admin", "password": password},
        headers={"Referer": f"{hub}/login"},
        allow_redirects=False,
        timeout=10,
        **kwargs,  # type: ignore[arg-type]
    )
    assert response.status_code == 302, response.text
    assert response.headers["Location"] == "/"
    home = session.get(f"{hub}/", allow_redirects=False, timeout=10, **kwargs)  # type: ignore[arg-type]
    assert home.status_code == 200
    assert "admin" in home.text
    return session


def speak_like_indico(hub: str) -> None:
    """Register, read, sync, disable and leave, with Indico's client code's requests calls."""
    response = requests.post(
        f"{hub}/api/instance/", data=json.dumps(PAYLOAD), headers=HEADERS, timeout=10
    )
    response.raise_for_status()
    assert response.status_code == 201
    uuid = response.json()["uuid"]
    assert response.headers["Location"].endswith(f"/api/instance/{uuid}")

    # the admin page's browser check: GET, then compare each value with ===
    read = requests.get(f"{hub}/api/instance/{uuid}", timeout=10)
    assert read.status_code == 200
    assert read.headers["Access-Control-Allow-Origin"] == "*"
    summary = read.json()
    assert summary["uuid"] == uuid
    assert summary["enabled"] is True
    assert summary["url"] == "https://indico.example.org"
    for key in ("contact", "email", "organization"):
        assert summary[key] == PAYLOAD[key]

    # sync_instance: everything at once
    sync = {**PAYLOAD, "enabled": True, "organization": "Renamed Lab"}
    patched = requests.patch(
        f"{hub}/api/instance/{uuid}", data=json.dumps(sync), headers=HEADERS, timeout=10
    )
    assert patched.status_code == 200
    assert patched.json()["organization"] == "Renamed Lab"

    # unregister_instance: {"enabled": false}
    disabled = requests.patch(
        f"{hub}/api/instance/{uuid}",
        data=json.dumps({"enabled": False}),
        headers=HEADERS,
        timeout=10,
    )
    assert disabled.status_code == 200
    assert requests.get(f"{hub}/instance/{uuid}", timeout=10).json()["enabled"] is False

    # the errors keep their shape through the real server
    bad = requests.patch(
        f"{hub}/api/instance/{uuid}", data=json.dumps({"contact": ""}), headers=HEADERS, timeout=10
    )
    assert bad.status_code == 400
    assert bad.json()["error"] == "Invalid value"
    assert bad.json()["field"] == "contact"
    big = requests.post(
        f"{hub}/api/instance/",
        data=json.dumps({**PAYLOAD, "padding": "x" * 70_000}),
        headers=HEADERS,
        timeout=10,
    )
    assert big.status_code == 413
    assert big.json()["error"]
    # the same without a Content-Length (chunked): werkzeug would silently cut it at the limit
    body = json.dumps({**PAYLOAD, "padding": "x" * 70_000}).encode()
    chunks = (body[i : i + 8192] for i in range(0, len(body), 8192))
    big = requests.post(f"{hub}/api/instance/", data=chunks, headers=HEADERS, timeout=10)
    assert big.request.headers["Transfer-Encoding"] == "chunked"
    assert big.status_code == 413
    small = json.dumps(PAYLOAD).encode()
    chunked = requests.post(f"{hub}/api/instance/", data=iter([small]), headers=HEADERS, timeout=10)
    assert chunked.status_code == 201
    assert requests.delete(f"{hub}/api/instance/{chunked.json()['uuid']}", timeout=10).ok

    # leave for good
    assert requests.delete(f"{hub}/api/instance/{uuid}", timeout=10).status_code == 204
    gone = requests.get(f"{hub}/api/instance/{uuid}", timeout=10)
    assert gone.status_code == 404
    assert gone.json()["error"]
    assert gone.headers["Access-Control-Allow-Origin"] == "*"


@pytest.mark.slow
@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_first_start_registration_login_and_restart(tmp_path: Path, backend: str) -> None:
    with contextlib.ExitStack() as stack:
        if backend == "sqlite":
            settings = "# the embedded default: SQLite in the instance folder\n"
        else:
            url = stack.enter_context(empty_database("postgresql", tmp_path))
            settings = f"SQLALCHEMY_DATABASE_URI = {url!r}\n"
        env = server_env(tmp_path, settings)

        with run_server(env, tmp_path) as server:
            printed = PASSWORD_RE.findall(server.output())
            assert len(printed) == 1, server.output()
            password = printed[0]
            speak_like_indico(server.url)
            log_in(server.url, password)
        if backend == "sqlite":
            assert (tmp_path / "instance" / "cephalopod.db").is_file()
        secret = tmp_path / "instance" / "secret_key"
        assert secret.stat().st_mode & 0o777 == 0o600

        # a second start (through the alias) prints no password; the first one still works
        with run_server(env, tmp_path, command="runserver") as server:
            assert "password" not in server.output().lower()
            assert password not in server.output()
            log_in(server.url, password)


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key, made with the openssl command."""
    openssl = shutil.which("openssl")
    if openssl is None:  # pragma: no cover - every CI image has it
        pytest.skip("the openssl command is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return cert, key


@pytest.mark.slow
def test_https_when_cert_and_key_are_set(tmp_path: Path, certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    env = server_env(tmp_path, f"SSL_CERT = {str(cert)!r}\nSSL_KEY = {str(key)!r}\n")
    with run_server(env, tmp_path) as server:
        assert server.url.startswith("https://")
        password = PASSWORD_RE.findall(server.output())[0]
        response = requests.get(f"{server.url}/login", verify=str(cert), timeout=10)
        assert response.status_code == 200
        # the session cookie only travels over HTTPS
        session = log_in(server.url, password, verify=str(cert))
        cookie = next(c for c in session.cookies if c.name == "session")
        assert cookie.secure
        assert cookie.has_nonstandard_attr("HttpOnly")
        # plain HTTP on the TLS port gets no page
        with pytest.raises(requests.ConnectionError):
            requests.get(server.url.replace("https://", "http://") + "/login", timeout=10)
