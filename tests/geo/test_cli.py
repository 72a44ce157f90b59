"""``cephalopod geoip update`` installs data the crawler then uses (from a local package)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cephalopod.geo.locate import GeoLocator
from tests.geo.mmdb import LOOPBACK_RECORDS, build_test_mmdb

pytestmark = pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cephalopod", "geoip", "update", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_update_from_a_local_package_then_locate(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "package.json").write_text(json.dumps({"name": "geo-test", "version": "1.0.0"}))
    build_test_mmdb(package / "city.mmdb", LOOPBACK_RECORDS)
    settings = tmp_path / "s.cfg"
    settings.write_text("SECRET_KEY = 'x'\n")
    instance = tmp_path / "instance"
    env = {
        **os.environ,
        "CEPHALOPOD_SETTINGS": str(settings),
        "CEPHALOPOD_INSTANCE_PATH": str(instance),
        "npm_config_offline": "true",  # a mistake must not reach the registry
        "npm_config_registry": "http://127.0.0.1:9/",
    }
    result = _cli("--package", str(package), env=env)
    assert result.returncode == 0, result.stderr
    assert "IP Geolocation by DB-IP" in result.stdout
    locator = GeoLocator.from_config(None, instance / "geoip")
    found = locator.locate("127.0.0.2")
    assert found is not None
    assert found.city == "Berlin"
    again = _cli("--package", str(package), env=env)
    assert again.returncode == 0
    bad = _cli("--package", str(tmp_path / "nothing-here"), env=env)
    assert bad.returncode == 1
    assert "Error: " in bad.stderr
    assert "Traceback" not in bad.stderr
