"""Audit the installed, pinned dependencies with pip-audit; `make test` runs it.

    .venv/bin/python scripts/audit.py

Fails on any known vulnerability, except those listed in ``IGNORED`` with the reason it does
not apply here (only for advisories that no release fixes yet: a fixed one is upgraded).

pip-audit reads its advisories from a vulnerability service, PyPI's (per-release JSON) or
OSV's. Where neither answers (a machine whose package access is a mirror of the package
index only), pip-audit would report every dependency as "not found" and still say "No known
vulnerabilities found"; this script says instead that nothing could be audited, and skips
with exit status 0, so that `make test` still runs on such a machine. A partial answer (some
dependencies audited, others not) is reported and fails: the audit must be whole.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SERVICES = ("pypi", "osv")
TIMEOUT_SECONDS = 10
#: Advisory id → why it does not apply to Cephalopod (advisories without a fixed release only).
IGNORED: dict[str, str] = {}


@dataclass(frozen=True)
class Verdict:
    """What an audit report means: ``status`` is ok, skip (nothing audited) or fail."""

    status: str
    lines: tuple[str, ...]


def judge(report: dict[str, Any], ignored: dict[str, str]) -> Verdict:
    """Read pip-audit's JSON report (pure: the script's decision, tested on its own)."""
    dependencies = [  # the project itself (installed editable) is not a dependency
        d for d in report.get("dependencies", []) if "editable" not in d.get("skip_reason", "")
    ]
    skipped = [d for d in dependencies if "skip_reason" in d]
    audited = [d for d in dependencies if "skip_reason" not in d]
    if not audited:
        reasons = sorted({d["skip_reason"].split(":")[0] for d in skipped}) or ["no dependencies"]
        return Verdict("skip", (f"nothing could be audited: {'; '.join(reasons)}",))
    lines: list[str] = []
    failed = False
    for dep in skipped:
        lines.append(f"not audited: {dep['name']}: {dep['skip_reason']}")
        failed = True
    for dep in audited:
        for vuln in dep.get("vulns", []):
            ids = [vuln["id"], *vuln.get("aliases", [])]
            reason = next((ignored[i] for i in ids if i in ignored), None)
            fixes = ", ".join(vuln.get("fix_versions", [])) or "none yet"
            where = f"{dep['name']} {dep['version']}: {vuln['id']} (fixed in: {fixes})"
            if reason is not None and not vuln.get("fix_versions"):
                lines.append(f"ignored: {where}: {reason}")
            else:
                lines.append(f"VULNERABLE: {where}")
                failed = True
    if failed:
        return Verdict("fail", tuple(lines))
    return Verdict("ok", (*lines, f"{len(audited)} dependencies audited, no known vulnerability"))


def run_pip_audit(service: str) -> dict[str, Any] | None:
    """pip-audit's report on this environment (None when the service could not be asked)."""
    pip_audit = Path(sys.executable).with_name("pip-audit")
    result = subprocess.run(  # noqa: S603 - our own venv's pip-audit, fixed arguments
        [
            str(pip_audit), "--skip-editable", "--progress-spinner", "off", "--format", "json",
            "--vulnerability-service", service, "--timeout", str(TIMEOUT_SECONDS),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )  # fmt: skip
    try:
        return json.loads(result.stdout)  # type: ignore[no-any-return]
    except json.JSONDecodeError:  # the service failed: pip-audit printed an error instead
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        print(f"pip-audit ({service}): {last}")
        return None


def main() -> int:
    """Audit with the first service that answers; 0 when clean or nothing could be audited."""
    for service in SERVICES:
        report = run_pip_audit(service)
        if report is None:
            continue
        verdict = judge(report, IGNORED)
        for line in verdict.lines:
            print(f"pip-audit ({service}): {line}")
        if verdict.status != "skip":
            return 1 if verdict.status == "fail" else 0
    print(
        "pip-audit SKIPPED: no vulnerability service answered from this machine (pip-audit "
        "needs PyPI's per-release JSON API or OSV's API; the package index alone is not "
        "enough). Nothing was audited: run `make audit` where either is reachable."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
