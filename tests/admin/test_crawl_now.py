"""Crawl now without blocking: the item when the crawl ends in time, else a job to poll."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from cephalopod.admin import api as admin_api
from cephalopod.crawler import jobs
from cephalopod.crawler.models import CrawlJob
from cephalopod.db import db
from tests.admin.test_list import ITEM_KEYS
from tests.crawler.servers import server_loop

SLOW_SECONDS = 1.5


def _slow_instance() -> web.Application:
    async def info(request: web.Request) -> web.Response:
        await asyncio.sleep(float(request.query.get("s", SLOW_SECONDS)))
        return web.json_response({"version": "9.9"})

    app = web.Application()
    app.router.add_get("/info", info)
    return app


def _register(client: Any, url: str) -> str:
    body = {"url": url, "contact": "C", "email": "c@x.org", "organization": "O"}
    return client.post("/api/instance/", json=body).json["uuid"]


def test_a_slow_crawl_answers_202_with_a_job_to_poll(make_app, monkeypatch, auth_for):
    monkeypatch.setattr(admin_api, "CRAWL_WAIT_SECONDS", 0.3)  # shorter than the crawl
    app = make_app(CRAWLING_ENDPOINTS=[{"url": "/info"}])
    client = app.test_client()
    headers = auth_for(app)
    with server_loop() as loop:
        uuid = _register(client, loop.start_app(_slow_instance()))
        # a crawl of all that is running does not make this one wait or refuse it
        with app.app_context():
            db.session.add(CrawlJob(id="all-running", state="running"))
            db.session.commit()
        started = time.monotonic()
        response = client.post(f"/api/admin/instances/{uuid}/crawl", headers=headers)
        assert time.monotonic() - started < SLOW_SECONDS
        assert response.status_code == 202, response.json
        job = response.json["job"]
        assert response.json == {"job": job}
        assert response.headers["Location"].endswith(f"/api/admin/crawl/{job}")
        deadline = time.monotonic() + 20
        while True:
            status = client.get(f"/api/admin/crawl/{job}", headers=headers).json
            if status["state"] not in ("queued", "running") or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert status == {"state": "done", "total": 1, "done": 1, "ok": 1, "failed": 0}
    item = client.get(f"/api/admin/instances/{uuid}", headers=headers).json
    assert (item["crawl_status"], item["crawled_data"]) == ("ok", {"version": "9.9"})
    # the crawl of one did not take the place of the crawl of all
    with app.app_context():
        assert jobs.active_job().id == "all-running"


def test_a_fast_crawl_answers_200_with_the_item(make_app, auth_for):
    app = make_app(CRAWLING_ENDPOINTS=[{"url": "/info?s=0"}])
    client = app.test_client()
    headers = auth_for(app)
    with server_loop() as loop:
        uuid = _register(client, loop.start_app(_slow_instance()))
        response = client.post(f"/api/admin/instances/{uuid}/crawl", headers=headers)
    assert response.status_code == 200, response.json
    assert set(response.json) == ITEM_KEYS
    assert response.json["crawl_status"] == "ok"
    with app.app_context():
        job = db.session.query(CrawlJob).one()
        assert (job.kind, job.state, job.ok) == ("instance", "done", 1)
