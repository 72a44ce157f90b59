"""The one schedule table: due times for intervals and crontabs, and pruning always added."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from celery.schedules import crontab

from cephalopod.schedule import CRAWL_ALL, PRUNE_AUDIT, PRUNE_HISTORY, Periodic, periodic_jobs

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("schedule", "last_run", "expected"),
    [
        (timedelta(hours=1), None, 0.0),
        (timedelta(hours=1), NOW - timedelta(minutes=30), 1800.0),
        (timedelta(hours=1), NOW - timedelta(hours=2), 0.0),
        (3600, NOW - timedelta(minutes=59), 60.0),
        (600.5, NOW, 600.5),
    ],
)
def test_interval_due_times(schedule: object, last_run: datetime | None, expected: float) -> None:
    job = Periodic("crawl", CRAWL_ALL, schedule)
    assert job.seconds_until_due(last_run, NOW) == pytest.approx(expected)


def test_crontab_is_due_after_its_time_and_waits_before() -> None:
    job = Periodic("crawl", CRAWL_ALL, crontab(minute=0, hour=3))
    assert job.seconds_until_due(None, datetime.now(UTC)) == 0.0
    assert job.seconds_until_due(datetime.now(UTC), datetime.now(UTC)) > 0


def test_pruning_is_added_to_every_schedule() -> None:
    jobs = periodic_jobs(
        {"CELERYBEAT_SCHEDULE": {"c": {"task": CRAWL_ALL, "schedule": timedelta(days=1)}}}
    )
    assert [j.task for j in jobs] == [CRAWL_ALL, PRUNE_HISTORY, PRUNE_AUDIT]
    own = periodic_jobs(
        {"CELERYBEAT_SCHEDULE": {"p": {"task": PRUNE_HISTORY, "schedule": timedelta(hours=1)}}}
    )
    assert [j.name for j in own] == ["p", "prune-audit"]
