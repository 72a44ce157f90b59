"""The audit log's background task: pruning beyond AUDIT_RETENTION_DAYS, daily."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Flask

from cephalopod.audit.operations import prune
from cephalopod.schedule import PRUNE_AUDIT
from cephalopod.services import services


def prune_audit(app: Flask) -> int:
    """Delete the audit entries older than AUDIT_RETENTION_DAYS."""
    with app.app_context():
        return prune(services(app).settings.audit_retention_days)


#: Task name → function, for both runners.
TASKS: dict[str, Callable[..., Any]] = {PRUNE_AUDIT: prune_audit}
