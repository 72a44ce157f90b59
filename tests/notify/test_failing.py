"""NOTIFY_FAILING_AFTER: a mail when an instance that had been fine starts failing, once.

Real crawls of instances played by a local HTTP server that each test turns up or down, the
mails received by a real SMTP server (aiosmtpd), on SQLite and on PostgreSQL; the crawl of
all instances through the embedded worker (writer process) and through a Celery worker.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp import web
from flask import Flask

from cephalopod.crawler.models import CrawlJob
from cephalopod.crawler.run import crawl
from cephalopod.db import db
from cephalopod.instances import operations as instance_ops
from cephalopod.instances.models import Instance
from cephalopod.instances.urls import url_key
from cephalopod.notify import tasks as notify_tasks
from cephalopod.schedule import CRAWL_ALL
from cephalopod.services import services
from tests.crawler.servers import ServerLoop, server_loop
from tests.faults.services import PrivateRedis, end_process, start_process, write_settings
from tests.notify.smtp import Inbox, smtp_server
from tests.notify.test_tasks import RECIPIENTS, mail_settings

ENDPOINTS = [{"url": "/info", "headers": {}}]


class Fleet:
    """Instances served by one local HTTP server, each up or down as the test says."""

    def __init__(self, servers: ServerLoop) -> None:
        self.down: set[str] = set()
        app = web.Application()
        app.router.add_get("/i/{name}/info", self._info)
        self.base = servers.start_app(app)

    async def _info(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name in self.down:
            return web.json_response({"error": True}, status=500)
        return web.json_response({"name": name, "version": "3.3"})

    def url(self, name: str) -> str:
        return f"{self.base}/i/{name}"


@pytest.fixture(scope="module")
def servers() -> Iterator[ServerLoop]:
    with server_loop() as loop:
        yield loop


@pytest.fixture
def fleet(servers: ServerLoop) -> Fleet:
    return Fleet(servers)


def failing_settings(port: int, after: int | None = 3, **overrides: Any) -> dict[str, Any]:
    return mail_settings(
        port, NOTIFY_FAILING_AFTER=after, CRAWLING_ENDPOINTS=ENDPOINTS, **overrides
    )


def crawled(app: Flask, ids: list[int], inbox: Inbox) -> list[EmailMessage]:
    """Crawl the instances (one batch), let the worker send what it queued; the new mails."""
    before = len(inbox.envelopes)
    crawl(app, ids)
    assert services(app).runner.join(timeout=30)  # type: ignore[attr-defined]
    return inbox.messages[before:]


def test_a_mail_when_an_instance_fails_after_n_successes_and_not_again_until_n_more(
    make_app: Callable[..., Flask], make_instance: Callable[..., Any], fleet: Fleet
) -> None:
    a = make_instance(url=fleet.url("a"), organization="Lab A")
    steady = make_instance(url=fleet.url("steady"), organization="Steady Lab")
    never = make_instance(url=fleet.url("never"), organization="Broken Lab")
    fleet.down.add("never")  # never crawled successfully: never mailed about
    ids = [a.id, steady.id, never.id]
    with smtp_server() as (port, inbox):
        app = make_app(**failing_settings(port, after=3))
        assert [crawled(app, ids, inbox) for _ in range(3)] == [[], [], []]
        fleet.down.add("a")
        (mail,) = crawled(app, ids, inbox)  # the flip: after 3 successes in a row
        assert crawled(app, ids, inbox) == []  # still failing: told already
        fleet.down.discard("a")
        assert crawled(app, ids, inbox) == []  # recovered: 1 success
        fleet.down.add("a")
        assert crawled(app, ids, inbox) == []  # failing again, after only 1 success
        fleet.down.discard("a")
        assert [crawled(app, ids, inbox) for _ in range(3)] == [[], [], []]
        fleet.down.add("a")
        (again,) = crawled(app, ids, inbox)  # 3 successes again, then failing: told again
    envelope = inbox.envelopes[0]
    assert envelope.mail_from == "hub@example.org"
    assert envelope.rcpt_tos == RECIPIENTS
    for message in (mail, again):
        assert message["Subject"] == "[Cephalopod] Failing: Lab A"
        assert message.get_content_type() == "text/plain"
        body = message.get_content()
        assert "Organization: Lab A" in body
        assert f"URL:          {fleet.url('a')}" in body
        assert "Error:        HTTP 500 from /info" in body
        assert "Before:       3 successful crawls in a row, the last " in body
        assert f"https://hub.example.org/servers/{a.uuid}" in body
        assert "at least 3 times in a row" in body
        assert "Steady Lab" not in body
        assert "Broken Lab" not in body


def test_instances_failing_in_one_batch_share_one_mail(
    make_app: Callable[..., Flask], make_instance: Callable[..., Any], fleet: Fleet
) -> None:
    made = [make_instance(url=fleet.url(f"n{n}"), organization=f"Lab {n}") for n in range(3)]
    ids = [instance.id for instance in made]
    with smtp_server() as (port, inbox):
        app = make_app(**failing_settings(port, after=1))
        assert crawled(app, ids, inbox) == []
        fleet.down |= {"n0", "n2"}
        (mail,) = crawled(app, ids, inbox)
    assert mail["Subject"] == "[Cephalopod] 2 instances started failing"
    body = mail.get_content()
    assert "these 2 instances" in body
    assert "Organization: Lab 0" in body
    assert "Organization: Lab 2" in body
    assert "Lab 1" not in body


def test_off_by_default_and_without_recipients(
    make_app: Callable[..., Flask], make_instance: Callable[..., Any], fleet: Fleet
) -> None:
    ids = [make_instance(url=fleet.url("off")).id]
    with smtp_server() as (port, inbox):
        off = make_app(**mail_settings(port, CRAWLING_ENDPOINTS=ENDPOINTS))
        nobody = make_app(
            **failing_settings(port, after=1, NOTIFY_EMAILS=[], MAIL_DEFAULT_SENDER=None)
        )
        for app in (off, nobody):
            # the crawl does not even look for the flip
            assert services(app).settings.crawl.report_failing_after is None
            fleet.down.discard("off")
            assert crawled(app, ids, inbox) == []
            fleet.down.add("off")
            assert crawled(app, ids, inbox) == []
        for after in (0, None):
            app = make_app(**failing_settings(port, after=after))
            assert services(app).settings.mail.failing_after is None
            assert services(app).settings.crawl.report_failing_after is None
    assert inbox.envelopes == []


def test_a_strangers_text_reaches_no_header(
    make_app: Callable[..., Flask], make_instance: Callable[..., Any], fleet: Fleet
) -> None:
    # the protocol refuses control characters; the mail guards itself all the same
    evil = "Evil\r\nBcc: victim@example.net\r\n\r\n<b>x</b>"
    instance = make_instance(url=fleet.url("evil"), organization=evil)
    with smtp_server() as (port, inbox):
        app = make_app(**failing_settings(port, after=1))
        crawled(app, [instance.id], inbox)
        fleet.down.add("evil")
        (mail,) = crawled(app, [instance.id], inbox)
    envelope = inbox.envelopes[0]
    assert envelope.rcpt_tos == RECIPIENTS  # nobody added
    assert b"\nBcc:" not in envelope.original_content
    assert mail["Bcc"] is None
    assert mail["Subject"] == "[Cephalopod] Failing: Evil Bcc: victim@example.net <b>x</b>"
    assert mail.get_content_type() == "text/plain"
    assert "Organization: Evil Bcc: victim@example.net <b>x</b>" in mail.get_content()


def test_the_mail_leaves_out_instances_recovered_or_deleted_since(
    make_app: Callable[..., Flask], make_instance: Callable[..., Any], fleet: Fleet
) -> None:
    """The mail is made when it is sent (a retry may come minutes later): from what is true then."""
    names = ("still", "back", "gone")
    still, back, gone = (make_instance(url=fleet.url(n), organization=f"{n} lab") for n in names)
    ids = [still.id, back.id, gone.id]
    plain = make_app(CRAWLING_ENDPOINTS=ENDPOINTS)  # no mail: the crawls only set the state
    crawl(plain, ids)
    fleet.down |= set(names)
    crawl(plain, ids)
    fleet.down.discard("back")
    crawl(plain, [back.id])
    with plain.app_context():
        instance_ops.delete_instance(instance_ops.get_instance(str(gone.uuid)))
    with smtp_server() as (port, inbox):
        app = make_app(**failing_settings(port, after=1))
        with app.app_context():
            assert notify_tasks.notify_failing(app, [back.id, gone.id]) is False
            assert notify_tasks.notify_failing(app, ids) is True
        (mail,) = inbox.wait(1)
    assert mail["Subject"] == "[Cephalopod] Failing: still lab"
    assert "back lab" not in mail.get_content()
    assert "gone lab" not in mail.get_content()


@pytest.mark.slow
def test_a_crawl_of_all_in_the_embedded_worker_mails(
    make_app: Callable[..., Flask], make_instance: Callable[..., Any], fleet: Fleet
) -> None:
    """The crawl of all stores from a writer process: the flip comes back from there."""
    instance = make_instance(url=fleet.url("all"), organization="All Lab")
    with smtp_server() as (port, inbox):
        app = make_app(**failing_settings(port, after=1))
        runner = services(app).runner
        runner.submit(CRAWL_ALL)
        assert runner.join(timeout=60)  # type: ignore[attr-defined]
        fleet.down.add("all")
        runner.submit(CRAWL_ALL)
        assert runner.join(timeout=60)  # type: ignore[attr-defined]
        (mail,) = inbox.wait(1)
        with app.app_context():
            states = db.session.scalars(sa.select(CrawlJob.state)).all()
    assert states == ["done", "done"]
    assert mail["Subject"] == "[Cephalopod] Failing: All Lab"
    assert str(instance.uuid) in mail.get_content()


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.slow
def test_a_crawl_by_a_celery_worker_mails(
    postgres_url: str,
    tmp_path: Path,
    make_pg_app: Callable[..., Flask],
    broker: PrivateRedis,
    fleet: Fleet,
) -> None:
    with smtp_server() as (port, inbox):
        settings = failing_settings(port, after=1, CELERY_BROKER_URL=broker.url)
        worker_settings = write_settings(
            tmp_path / "worker.cfg",
            **settings,
            SQLALCHEMY_DATABASE_URI=postgres_url,
            CRAWLER_ALLOWED_NETWORKS=["127.0.0.0/8"],
            SECRET_KEY="worker-test",
        )
        app = make_pg_app(**settings)
        with app.app_context():  # not registered: no mail about a registration
            instance = Instance(
                url=fleet.url("celery"), url_key=url_key(fleet.url("celery")), contact="C",
                email="c@example.org", organization="Celery Lab",
            )  # fmt: skip
            db.session.add(instance)
            db.session.commit()
            uuid = str(instance.uuid)
        celery = services(app).runner.celery  # type: ignore[attr-defined]
        log = tmp_path / "worker.log"
        worker = start_process(["runworker", "2", "--no-beat"], worker_settings, log)
        try:
            for down in (False, True):
                if down:
                    fleet.down.add("celery")
                celery.send_task(CRAWL_ALL)
                _wait_for_crawls(app, 1 + down, log)
            (mail,) = inbox.wait(1, timeout=90)
        finally:
            end_process(worker)
    assert mail["Subject"] == "[Cephalopod] Failing: Celery Lab"
    assert f"https://hub.example.org/servers/{uuid}" in mail.get_content()


def _wait_for_crawls(app: Flask, count: int, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    with app.app_context():
        while True:
            db.session.rollback()
            states = db.session.scalars(sa.select(CrawlJob.state)).all()
            if states.count("done") == count:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"crawl jobs {states}:\n{log.read_text()}")
            time.sleep(0.2)
