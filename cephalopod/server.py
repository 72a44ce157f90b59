"""Serve the app with cheroot: a threaded production WSGI server that speaks TLS itself.

One process on purpose: the embedded scheduler lives in it when there is no broker, and a
threaded server shares one database pool. Scale out with Celery workers, not web forks.

SIGTERM or SIGINT stops it gracefully: no new connections, requests in flight answered
(cheroot waits for them), a crawl in the embedded thread stopped at its next batch with
what it fetched stored (`SHUTDOWN_GRACE` at most), and every crawl job of this process
ended, so that none stays "running" after it (`cephalopod.crawler.jobs`).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import threading
from collections.abc import Callable

from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter
from flask import Flask

from cephalopod.crawler import jobs
from cephalopod.crawler.scheduler import start_embedded_scheduler
from cephalopod.db import UNAVAILABLE
from cephalopod.ops.logs import safe_url

log = logging.getLogger(__name__)

#: Seconds a stopping server gives the crawl in its embedded thread to reach a safe point.
SHUTDOWN_GRACE = 30.0


def make_server(app: Flask, host: str, port: int, threads: int = 16) -> wsgi.Server:
    """Build (not start) the WSGI server, with TLS when SSL_CERT and SSL_KEY are set."""
    server = wsgi.Server(
        (host, port),
        app,
        numthreads=threads,
        server_name=app.config["APP_NAME"],
        request_queue_size=socket.SOMAXCONN,
    )
    if app.config.get("SSL_CERT") and app.config.get("SSL_KEY"):
        server.ssl_adapter = BuiltinSSLAdapter(app.config["SSL_CERT"], app.config["SSL_KEY"])
    return server


def serve(app: Flask, host: str, port: int) -> None:
    """Run until SIGINT/SIGTERM, with the in-process scheduler when no broker is configured."""
    server = make_server(app, host, port)
    stop_scheduler = _start_scheduler(app)
    scheme = "https" if server.ssl_adapter else "http"

    def shutdown(signum: int, _frame: object) -> None:
        log.info("Received signal %s, stopping", signum)
        threading.Thread(target=server.stop, daemon=True).start()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    server.prepare()
    bound_port = server.bind_addr[1] if isinstance(server.bind_addr, tuple) else port
    log.info("Serving %s on %s://%s:%s/", app.config["APP_NAME"], scheme, host, bound_port)
    try:
        server.serve()
    finally:
        _stop_background(app, stop_scheduler)


def _stop_background(app: Flask, stop_scheduler: Callable[[float], bool]) -> None:
    """Stop the scheduler and the embedded worker; end this process's crawl jobs."""
    if not stop_scheduler(SHUTDOWN_GRACE):
        log.warning("The background work did not stop within %.0f s; leaving it", SHUTDOWN_GRACE)
    with app.app_context(), contextlib.suppress(*UNAVAILABLE):
        ended = jobs.fail_jobs_of(jobs.process_owner(), jobs.INTERRUPTED)
        if ended:
            log.info("Ended %d crawl job(s) of this process as interrupted", ended)


def _start_scheduler(app: Flask) -> Callable[[float], bool]:
    if app.config.get("CELERY_BROKER_URL"):
        broker = safe_url(app.config["CELERY_BROKER_URL"])  # without its password
        log.info("Crawls are scheduled by Celery beat (broker %s)", broker)
        return lambda _grace: True
    return start_embedded_scheduler(app)
