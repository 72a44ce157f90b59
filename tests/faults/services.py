"""Private servers for the fault tests: a Redis and a PostgreSQL of their own, to stop at will.

The machine's shared PostgreSQL and Redis are never stopped or restarted: a fault test
starts its own on a free port in a temporary folder, breaks it, and removes it afterwards.
Also: the fleet simulator, Celery workers and ``cephalopod run`` as real processes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import redis

from benchmarks.fleet import free_port

ADMIN_PASSWORD = "a-long-fault-test-password"
PG_BIN = Path(os.environ.get("CEPHALOPOD_PG_BIN", "/usr/lib/postgresql/15/bin"))


def wait_for_port(
    port: int, timeout: float = 20.0, process: subprocess.Popen | None = None
) -> None:
    """Wait until something accepts connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the process ended ({process.returncode}) before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout} s")


class PrivateRedis:
    """``redis-server`` on a free port, no persistence; `stop` and `start` it at will."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for_port(self.port, process=self.process)
        redis.Redis.from_url(self.url).ping()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None


class PrivatePostgres:
    """A PostgreSQL cluster of its own (initdb in a temporary folder) on a free port.

    Run as the ``postgres`` user when we are root (initdb refuses root). `stop` and `start`
    make an outage; `restart` is ``pg_ctl restart -m fast``.
    """

    def __init__(self) -> None:
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="cephalopod-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/cephalopod"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.folder, "postgres", "postgres")

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(PG_BIN / args[0]), *args[1:]]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, check=check, capture_output=True, text=True, timeout=60)

    def init(self) -> None:
        self._run("initdb", "-A", "trust", "-U", "postgres", "--no-sync", "-D", str(self.data))
        self.start()
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute("CREATE DATABASE cephalopod")

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _options(self) -> str:
        return (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "30",
                  "-o", self._options(), "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop")

    def restart(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-m", "fast", "-w",
                  "-t", "30", "-o", self._options(), "restart")  # fmt: skip

    def destroy(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.folder, ignore_errors=True)


@contextlib.contextmanager
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    try:
        server.init()
        yield server
    finally:
        server.destroy()


@contextlib.contextmanager
def fleet_process(latency: float) -> Iterator[str]:
    """The lean fleet simulator in a process of its own (off this process's GIL); base URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.fleet", "--port", str(port), "--latency", str(latency)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process=process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


def write_settings(path: Path, **settings: Any) -> Path:
    """Write a settings file of ``KEY = repr(value)`` lines."""
    path.write_text("".join(f"{key} = {value!r}\n" for key, value in settings.items()))
    return path


def start_process(args: list[str], settings: Path, log: Path, **env: str) -> subprocess.Popen[str]:
    """Start ``python -m cephalopod ARGS`` with these settings, output to ``log``."""
    environment = {**os.environ, "CEPHALOPOD_SETTINGS": str(settings), **env}
    environment.pop("PYTEST_XDIST_WORKER", None)
    with log.open("a") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "cephalopod", *args],
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )


def end_process(
    process: subprocess.Popen[str], sig: int = signal.SIGTERM, timeout: float = 30
) -> int:
    """Signal the process's group, wait for it (SIGKILL after ``timeout``); its exit code."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
    return process.returncode


def wait_until(predicate: Any, timeout: float, what: str, poll: float = 0.1) -> Any:
    """Call ``predicate`` until it returns something true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(poll)


def start_server(settings: Path, log: Path, port: int, **env: str) -> subprocess.Popen[str]:
    """Start ``cephalopod run`` on 127.0.0.1:port and wait until it listens."""
    process = start_process(
        ["run", "--host", "127.0.0.1", "--port", str(port)], settings, log, **env
    )
    try:
        wait_for_port(port, timeout=60, process=process)
    except Exception:
        end_process(process, signal.SIGKILL)
        raise AssertionError(f"cephalopod run did not start:\n{log.read_text()}") from None
    return process


def create_token(
    settings: Path, log: Path, user: str = "admin", password: str = ADMIN_PASSWORD
) -> str:
    """Create a user and an API token with the CLI (as a maintainer would); the token."""
    environment = {**os.environ, "CEPHALOPOD_SETTINGS": str(settings)}
    for args in (["db", "upgrade"], ["create_usr", user, password], ["create_token", user]):
        done = subprocess.run(
            [sys.executable, "-m", "cephalopod", *args],
            env=environment,
            capture_output=True,
            text=True,
            timeout=60,
        )
        with log.open("a") as out:
            out.write(done.stdout + done.stderr)
        assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.strip().splitlines()[-1]
