"""AUDIT_RETENTION_DAYS: validated, and pruned daily by both schedulers' maintenance."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from flask import Flask

from cephalopod.app import TASKS
from cephalopod.audit import operations as audit
from cephalopod.audit.operations import Actor
from cephalopod.audit.tasks import prune_audit
from cephalopod.db import db, utcnow
from cephalopod.schedule import CRAWL_ALL, KNOWN_TASKS, PRUNE_AUDIT, periodic_jobs
from cephalopod.services import services
from cephalopod.settings import DEFAULTS
from tests.audit.conftest import entries


def _age(app: Flask, days: list[float]) -> None:
    with app.app_context():
        for age in days:
            audit.record("login", Actor("user", name=f"{age}"), at=utcnow() - timedelta(days=age))
        db.session.commit()


def test_entries_beyond_the_retention_are_pruned(make_app: Any) -> None:
    app = make_app(AUDIT_RETENTION_DAYS=30)
    assert services(app).settings.audit_retention_days == 30
    _age(app, [0, 29.9, 30.1, 400])
    assert prune_audit(app) == 2
    assert sorted(e.actor for e in entries(app)) == ["0", "29.9"]
    assert prune_audit(app) == 0


def test_the_default_keeps_two_years(app: Flask) -> None:
    assert DEFAULTS["AUDIT_RETENTION_DAYS"] == 730
    _age(app, [729, 731])
    assert TASKS[PRUNE_AUDIT](app) == 1  # the task both runners run, by its name
    assert [e.actor for e in entries(app)] == ["729"]


def test_pruning_is_scheduled_daily_unless_listed() -> None:
    crawl = {"c": {"task": CRAWL_ALL, "schedule": timedelta(days=1)}}
    (job,) = [j for j in periodic_jobs({"CELERYBEAT_SCHEDULE": crawl}) if j.task == PRUNE_AUDIT]
    assert (job.name, job.schedule) == ("prune-audit", timedelta(days=1))
    own = {"p": {"task": PRUNE_AUDIT, "schedule": timedelta(hours=6)}}
    listed = periodic_jobs({"CELERYBEAT_SCHEDULE": own})
    assert [j.name for j in listed if j.task == PRUNE_AUDIT] == ["p"]
    assert PRUNE_AUDIT in KNOWN_TASKS  # a schedule may name it


@pytest.mark.parametrize("value", [0, -1, 100_001, "730", 1.5, None])
def test_a_bad_retention_stops_startup(make_app: Any, value: object) -> None:
    from cephalopod.settings import SettingsError

    with pytest.raises(SettingsError, match="AUDIT_RETENTION_DAYS"):
        make_app(AUDIT_RETENTION_DAYS=value)
