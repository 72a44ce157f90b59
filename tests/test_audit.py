"""scripts/audit.py's reading of pip-audit's report: clean, vulnerable, ignored, not audited.

The audit itself asks a vulnerability service off the machine: `make audit` runs it, never
the test suite (whose traffic stays on loopback).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "audit.py"


@pytest.fixture(scope="module")
def audit() -> ModuleType:
    spec = importlib.util.spec_from_file_location("audit_script", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


EDITABLE = {"name": "cephalopod", "skip_reason": "distribution marked as editable"}


def dep(name: str, *vulns: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "version": "1.0", "vulns": list(vulns)}


def vuln(id_: str, *fixes: str, aliases: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"id": id_, "fix_versions": list(fixes), "aliases": list(aliases)}


def not_found(name: str) -> dict[str, Any]:
    return {"name": name, "skip_reason": f"Dependency not found on PyPI: {name} (1.0)"}


def test_clean(audit: ModuleType) -> None:
    verdict = audit.judge({"dependencies": [EDITABLE, dep("flask"), dep("click")]}, {})
    assert verdict.status == "ok"
    assert verdict.lines[-1] == "2 dependencies audited, no known vulnerability"


def test_a_vulnerability_fails(audit: ModuleType) -> None:
    report = {"dependencies": [dep("flask", vuln("GHSA-1", "3.1.4")), dep("click")]}
    verdict = audit.judge(report, {})
    assert verdict.status == "fail"
    assert "VULNERABLE: flask 1.0: GHSA-1 (fixed in: 3.1.4)" in verdict.lines


def test_an_ignored_advisory_without_fix_passes_with_its_reason(audit: ModuleType) -> None:
    report = {"dependencies": [dep("flask", vuln("PYSEC-9", aliases=("GHSA-9",)))]}
    verdict = audit.judge(report, {"GHSA-9": "only the CLI of flask is affected"})
    assert verdict.status == "ok"
    assert verdict.lines[0].startswith("ignored: flask 1.0: PYSEC-9")
    assert "only the CLI of flask is affected" in verdict.lines[0]


def test_an_ignored_advisory_that_has_a_fix_fails(audit: ModuleType) -> None:
    """Once a release fixes it, the pin is raised instead."""
    report = {"dependencies": [dep("flask", vuln("GHSA-9", "3.2"))]}
    assert audit.judge(report, {"GHSA-9": "reason"}).status == "fail"


def test_nothing_audited_is_a_skip_not_a_pass(audit: ModuleType) -> None:
    """What pip-audit reports where the vulnerability service is out of reach ("No known
    vulnerabilities found", exit 0): said plainly, never taken for a clean audit."""
    verdict = audit.judge({"dependencies": [EDITABLE, not_found("flask"), not_found("click")]}, {})
    assert verdict.status == "skip"
    assert "nothing could be audited" in verdict.lines[0]


def test_a_partial_audit_fails(audit: ModuleType) -> None:
    verdict = audit.judge({"dependencies": [dep("flask"), not_found("click")]}, {})
    assert verdict.status == "fail"
    assert verdict.lines[0].startswith("not audited: click")
