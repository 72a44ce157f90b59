"""The systemd units of deploy/ read as systemd reads them, to run their commands in a test.

Only what the units use: ``[Service]``'s ``Environment=``, ``EnvironmentFile=``,
``WorkingDirectory=``, ``ExecStartPre=`` and ``ExecStart=``, with the specifiers ``%i``
(the instance), ``%H`` (the host name) and ``%%``, and an environment file's ``KEY=value``
lines. ``User=``, the sandboxing and the restart policy are systemd's business, not run here.
"""

from __future__ import annotations

import shlex
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SYSTEMD = DEPLOY / "systemd"


@dataclass(frozen=True)
class Unit:
    """What running one unit takes: its commands, environment and working directory."""

    name: str
    environment: dict[str, str]
    working_directory: str | None
    start_pre: list[list[str]]
    start: list[str]


def _specifiers(text: str, instance: str) -> str:
    """systemd's specifiers that the units use."""
    marker = "\0"
    text = text.replace("%%", marker)
    text = text.replace("%i", instance).replace("%H", socket.gethostname())
    if "%" in text:
        raise ValueError(f"a specifier this reader does not know: {text!r}")
    return text.replace(marker, "%")


def read_environment_file(path: Path) -> dict[str, str]:
    """``KEY=value`` lines (systemd's EnvironmentFile=; comments and blank lines skipped)."""
    environment: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"{path}: not KEY=value: {line!r}"
        environment[key.strip()] = value.strip()
    return environment


def read_unit(filename: str, substitute: Mapping[str, str], instance: str = "") -> Unit:
    """Read ``deploy/systemd/FILENAME`` with each ``substitute`` key replaced by its value.

    The replacements apply to the unit's text and to its environment files' text (read from
    where the substituted ``EnvironmentFile=`` says, so the test's copy): paths, ports, the
    venv; nothing else of a command changes.
    """
    text = (SYSTEMD / filename).read_text()
    for old, new in substitute.items():
        text = text.replace(old, new)
    # systemd allows a key several times (Environment=, ExecStartPre=): keep them all
    lines: dict[str, list[str]] = {}
    section = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        if section != "Service":
            continue
        key, _, value = line.partition("=")
        lines.setdefault(key.strip(), []).append(_specifiers(value.strip(), instance))
    environment: dict[str, str] = {}
    for path in lines.get("EnvironmentFile", []):
        optional = path.startswith("-")
        path = path.removeprefix("-")
        if optional and not Path(path).exists():
            continue
        environment.update(read_environment_file(Path(path)))
    for assignments in lines.get("Environment", []):
        for assignment in shlex.split(assignments):
            key, _, value = assignment.partition("=")
            environment[key] = value
    (start,) = lines["ExecStart"]
    return Unit(
        name=filename,
        environment=environment,
        working_directory=(lines.get("WorkingDirectory") or [None])[0],
        start_pre=[shlex.split(command) for command in lines.get("ExecStartPre", [])],
        start=shlex.split(start),
    )
