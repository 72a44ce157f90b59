"""CLI commands of the crawler: ``crawl [UUID]``, ``runworker [CONCURRENCY]``."""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import click
from flask import Flask

from cephalopod.background import CeleryRunner, ThreadRunner

if TYPE_CHECKING:  # types only: the crawler is imported when a command runs (crawl_command)
    from cephalopod.cli import AppContext, PassApp  # which imports this module
    from cephalopod.crawler.run import CrawlSummary, Progress
    from cephalopod.crawler.store import BatchOutcome

TOP_ERRORS = 5
FOLLOW_POLL_SECONDS = 0.5
#: How long ``crawl`` waits at its end for the work its crawl queued in this process (the
#: mail about instances that started failing): the worker thread dies with the command.
QUEUED_WORK_SECONDS = 60.0


class _Crawl(Protocol):
    """A crawl ready to run, of one instance or of all: it only waits for its progress bar."""

    def __call__(self, *, progress: Progress) -> CrawlSummary: ...


def _progress(
    total: int, stream_is_tty: bool
) -> tuple[Callable[[int, BatchOutcome | None], None], Callable[[], None]]:
    """Return (update, close): a progress bar on a terminal, plain lines otherwise.

    ``update`` takes the number of instances done so far.
    """
    if stream_is_tty:
        bar = click.progressbar(length=total, label="Crawling", show_pos=True, show_eta=True)
        bar.__enter__()
        shown_on_bar = [0]

        def update_bar(done: int, _outcome: BatchOutcome | None) -> None:
            bar.update(done - shown_on_bar[0])
            shown_on_bar[0] = done

        return update_bar, lambda: bar.__exit__(None, None, None)
    step = max(1, total // 10)
    shown = [0]

    def update_lines(done: int, _outcome: BatchOutcome | None) -> None:
        if done - shown[0] >= step or done == total:
            shown[0] = done
            click.echo(f"crawled {done}/{total}")

    return update_lines, lambda: None


def print_summary(summary: CrawlSummary) -> None:
    """End a crawl with what a person wants to know."""
    click.echo(
        f"Crawled {summary.total} instance(s) in {summary.duration:.1f} s "
        f"({summary.rate:.1f}/s): {summary.ok} ok, {summary.failed} failed"
        f" (CPU {summary.cpu:.1f} s)"
    )
    for error, count in summary.errors.most_common(TOP_ERRORS):
        click.echo(f"  {count:>6}  {error}")


def crawl_command(app: Flask, uuid: str | None) -> None:
    """Crawl one instance (even a disabled one) or every enabled one.

    A crawl of all that is already running (started by the scheduler, a worker or the web
    interface) is followed to its end instead of failing: a second one would crawl the
    same instances again at the same time.
    """
    # here, not at the top: "cephalopod --help" imports this module, and these cost it
    # SQLAlchemy, the models and the store (0.4 to 0.6 s here)
    from cephalopod.crawler import jobs
    from cephalopod.crawler.run import count_enabled, crawl
    from cephalopod.db import db
    from cephalopod.instances.operations import get_instance
    from cephalopod.schema import prepare_database
    from cephalopod.services import services

    with app.app_context():
        prepare_database()
        locator = services(app).geolocator
        if not locator.available:
            click.echo(f"Note: locations stay unknown. {locator.unavailable_reason}", err=True)
        start: _Crawl
        if uuid is not None:
            instance = get_instance(uuid)
            if instance is None:
                raise click.ClickException(f"No instance with UUID {uuid!r}")
            start = functools.partial(crawl, app, [instance.id])
            total = 1
        else:
            total = count_enabled(db.engine)
            job_id = jobs.create_job()
            if job_id is None:
                running = jobs.active_job()
                if running is not None:
                    click.echo(
                        f"A crawl of all instances was already running (job {running.id}): "
                        "following it to its end"
                    )
                    print_summary(_follow(app, running.id))
                    return
                job_id = jobs.create_job()  # it ended in between
                if job_id is None:
                    raise click.ClickException("A crawl of all instances is already running")
            start = functools.partial(jobs.run_crawl_all, app, job_id)
    update, close = _progress(total, sys.stdout.isatty())
    try:
        summary = start(progress=update)
    finally:
        close()
    print_summary(summary)
    runner = services(app).runner
    if isinstance(runner, ThreadRunner) and not runner.join(timeout=QUEUED_WORK_SECONDS):
        click.echo("Note: the command ends before the mails its crawl queued were sent", err=True)


def _follow(app: Flask, job_id: str, poll: float = FOLLOW_POLL_SECONDS) -> CrawlSummary:
    """Show the progress of a job that runs elsewhere until it ends; return its counts."""
    # lazy, as in crawl_command
    from cephalopod.crawler import jobs
    from cephalopod.crawler.models import CrawlJob
    from cephalopod.crawler.run import CrawlSummary
    from cephalopod.db import db

    with app.app_context():
        status = jobs.job_status(job_id)
        assert status is not None
        update, close = _progress(status["total"], sys.stdout.isatty())
        try:
            while True:
                status = jobs.job_status(job_id)
                assert status is not None
                update(status["done"], None)
                if status["state"] not in jobs.ACTIVE_STATES:
                    break
                db.session.rollback()  # a fresh snapshot for the next look
                time.sleep(poll)
        finally:
            close()
        job = db.session.get(CrawlJob, job_id)
        assert job is not None
        duration = 0.0
        if job.started_at and job.finished_at:
            duration = (job.finished_at - job.started_at).total_seconds()
    if status["state"] == "failed":
        raise click.ClickException(f"The crawl {job_id} failed: {job.error}")
    return CrawlSummary(
        total=status["done"], ok=status["ok"], failed=status["failed"], duration=duration
    )


def register(cli: click.Group, pass_app: PassApp) -> None:
    """Add the crawler commands to the main CLI group."""

    @cli.command("crawl")
    @click.argument("uuid", required=False)
    @click.option("--uuid", "uuid_option", metavar="UUID", help="Same as the UUID argument.")
    @pass_app
    def crawl(ctx: AppContext, uuid: str | None, uuid_option: str | None) -> None:
        """Crawl one instance by UUID, or every enabled instance."""
        if uuid and uuid_option and uuid != uuid_option:
            raise click.UsageError("Give the UUID once (argument or --uuid)")
        crawl_command(ctx.app_without_web, uuid or uuid_option)

    @cli.command("runworker")
    @click.argument("concurrency", required=False, type=click.IntRange(1, 512))
    @click.option(
        "--beat/--no-beat",
        default=True,
        show_default=True,
        help="Run the periodic scheduler (beat) inside this worker; one per cluster.",
    )
    @click.option("--loglevel", default=None, help="Log level (default: LOG_LEVEL).")
    @pass_app
    def runworker(
        ctx: AppContext, concurrency: int | None, beat: bool, loglevel: str | None
    ) -> None:
        """Run a Celery worker (with embedded beat, as the original) on CELERY_BROKER_URL."""
        # lazy: Celery itself (a fifth of a second), for this command only
        from cephalopod.celery_app import keep_our_logging
        from cephalopod.services import services  # lazy: maxminddb, the crawl config (40 ms)

        app = ctx.app
        runner = services(app).runner
        if not isinstance(runner, CeleryRunner):
            raise click.UsageError(
                "CELERY_BROKER_URL is not set: without a broker, 'cephalopod run' crawls "
                "in-process on the same schedule"
            )
        level = (loglevel or services(app).settings.ops.log_level).upper()
        keep_our_logging(level)
        argv = ["worker", f"--loglevel={level}"]
        if concurrency:
            argv.append(f"--concurrency={concurrency}")
        if beat:
            argv += ["--beat", f"--schedule={app.instance_path}/celerybeat-schedule"]
        runner.celery.worker_main(argv)
