"""`python -m benchmarks web` still runs end to end on a tiny fleet (no timing is asserted).

The suite runs as a maintainer runs it, in a process of its own: its Chromium half uses
Playwright's sync API, whose event loop must not live in this test process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.web import TARGETS_MS
from tests.conftest import PG_ADMIN_URL

ROOT = Path(__file__).resolve().parents[2]
#: Measured in every round besides the targets' own.
OTHERS = {
    "home page",
    "list, after a crawl",
    "statistics page, after a crawl",
    "CSV export, every instance",
    "active instances' trend, cached",
    "active instances' trend, after a crawl",
    "chromium: list interactive, from cache",
    "chromium: statistics drawn, from cache",
    "chromium: list first byte",
    "chromium: statistics first byte",
}


def _run(tmp_path: Path, *options: str) -> tuple[dict, str]:
    out = tmp_path / "figures.json"
    tiny = ["--num", "200", "--rounds", "2", "--repeat", "1", "--browser-repeat", "1"]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "web",
            *tiny,
            "--weeks",
            "2",
            "--json",
            str(out),
            *options,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(out.read_text()), done.stdout


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_web_suite_measures_everything_on_sqlite_with_chromium(tmp_path: Path) -> None:
    figures, output = _run(tmp_path)
    assert set(figures["rounds"]) == set(TARGETS_MS) | OTHERS
    for name, medians in figures["rounds"].items():
        assert len(medians) == 2, name  # one median per round
        assert all(m > 0 for m in medians), name
    server = {name for name in figures["rounds"] if not name.startswith("chromium")}
    assert set(figures["cpu"]) == server
    assert all(len(cpu) == 2 and min(cpu) > 0 for cpu in figures["cpu"].values())
    ((name, size),) = figures["sizes"].items()
    assert name.startswith("list page HTML, ")
    assert size > 10_000
    assert figures["notes"] == []
    assert "summary (sqlite, 200 instances, 2 rounds): median of rounds (load average" in output
    assert len(figures["loads"]) == 2
    assert "target < 2000" in output  # the verdicts are printed


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.timeout(300)
def test_the_web_suite_runs_on_a_postgresql_database_of_its_own(tmp_path: Path) -> None:
    figures, output = _run(tmp_path, "--no-browser", "--dburl", PG_ADMIN_URL)
    assert set(figures["rounds"]) == {n for n in set(TARGETS_MS) | OTHERS if "chromium" not in n}
    assert "summary (postgresql, 200 instances, 2 rounds)" in output
    assert set(figures["cpu"]) == set(figures["rounds"])
    assert all(min(cpu) > 0 for cpu in figures["cpu"].values())
