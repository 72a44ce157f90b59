"""The load benchmark runs end to end (tiny): both servers, every phase and route, no error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.load import CEILING, GET_OWN, LIST, PATCH_OWN, REGISTER, STATS, percentile
from tests.conftest import PG_ADMIN_URL


def test_percentile_is_the_nearest_rank() -> None:
    values = [float(n) for n in range(1, 101)]
    assert percentile(values, 0.50) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([3.0], 0.99) == 3.0
    assert percentile(list(reversed(values)), 0.01) == 1.0


@pytest.mark.postgres
@pytest.mark.slow
def test_a_tiny_load_run(tmp_path: Path) -> None:
    out = tmp_path / "load.json"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "load", "--dburl", PG_ADMIN_URL, "--num", "50",
         "--duration", "0.5", "--connections", "4", "--rate", "20", "--workers", "1",
         "--threads", "4", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=110,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    payload = json.loads(out.read_text())
    seen = {(row["server"], row["phase"], row["route"]) for row in payload["rows"]}
    for server in ("gunicorn", "cheroot"):
        assert (server, "ceiling", CEILING) in seen
        assert (server, "GET own record", GET_OWN) in seen
        assert {
            (server, "mix", route) for route in (REGISTER, PATCH_OWN, GET_OWN, LIST, STATS)
        } <= seen
        assert (server, "registrations at 20/s", REGISTER) in seen
    assert all(row["errors"] == 0 and row["requests"] > 0 for row in payload["rows"])
    assert len(payload["verdicts"]) == 2
    assert "errors: 0" in payload["verdicts"][0]
