"""The one schedule table: Celery beat and the in-process scheduler both read it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

#: Task names a schedule may name; ``cephalopod.crawler.crawl_all`` is what old settings use.
CRAWL_ALL = "cephalopod.crawler.crawl_all"
CRAWL_INSTANCE = "cephalopod.crawler.crawl_instance"
PRUNE_HISTORY = "cephalopod.crawler.prune_history"
#: Audit entries beyond AUDIT_RETENTION_DAYS; scheduled daily unless listed.
PRUNE_AUDIT = "cephalopod.audit.prune"
#: The daily mail of new registrations (NOTIFY_MODE = 'daily'); scheduled daily unless listed.
NOTIFY_DIGEST = "cephalopod.notify.daily_digest"
KNOWN_TASKS = frozenset({CRAWL_ALL, CRAWL_INSTANCE, PRUNE_HISTORY, PRUNE_AUDIT, NOTIFY_DIGEST})
#: Not for schedules: one chunk of a crawl that Celery workers share.
CRAWL_CHUNK = "cephalopod.crawler.crawl_chunk"
#: Not for schedules: the mail about one registration (NOTIFY_MODE = 'each').
NOTIFY_REGISTRATION = "cephalopod.notify.registration"
#: Not for schedules: the mail about instances that started failing (NOTIFY_FAILING_AFTER).
NOTIFY_FAILING = "cephalopod.notify.failing"


@dataclass(frozen=True)
class Periodic:
    """One periodic job: what to run and when."""

    name: str
    task: str
    schedule: Any  # timedelta, seconds or a celery schedule (crontab)
    args: tuple[Any, ...] = ()

    def seconds_until_due(self, last_run: datetime | None, now: datetime) -> float:
        """Return how long to wait before the next run (0 when it is due)."""
        sched = self.schedule
        if isinstance(sched, int | float):
            sched = timedelta(seconds=sched)
        if isinstance(sched, timedelta):
            if last_run is None:
                return 0.0
            return max(0.0, (last_run + sched - now).total_seconds())
        # a celery schedule (crontab, solar...): ask it, with the last run as its reference
        due, next_in = sched.is_due(last_run or now - timedelta(days=366))
        return 0.0 if due else float(next_in)


def periodic_jobs(config: Mapping[str, Any]) -> list[Periodic]:
    """Return the configured periodic jobs, with the daily maintenance (pruning the history
    and the audit log) added to every schedule that does not list it."""
    jobs = [
        Periodic(name, entry["task"], entry["schedule"], tuple(entry.get("args", ())))
        for name, entry in config["CELERYBEAT_SCHEDULE"].items()
    ]
    if not any(job.task == PRUNE_HISTORY for job in jobs):
        jobs.append(Periodic("prune-history", PRUNE_HISTORY, timedelta(days=1)))
    if not any(job.task == PRUNE_AUDIT for job in jobs):
        jobs.append(Periodic("prune-audit", PRUNE_AUDIT, timedelta(days=1)))
    digest = config.get("NOTIFY_MODE") == "daily" and config.get("NOTIFY_EMAILS")
    if digest and not any(job.task == NOTIFY_DIGEST for job in jobs):
        jobs.append(Periodic("notify-digest", NOTIFY_DIGEST, timedelta(days=1)))
    return jobs
