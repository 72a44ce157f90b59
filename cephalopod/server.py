"""Serve the app with cheroot: a threaded production WSGI server that speaks TLS itself.

One process on purpose: the embedded scheduler lives in it when there is no broker, and a
threaded server shares one database pool. Scale out with Celery workers, not web forks.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from cheroot import wsgi
from cheroot.ssl.builtin import BuiltinSSLAdapter
from flask import Flask

from cephalopod.crawler.scheduler import start_embedded_scheduler
from cephalopod.ops.logs import safe_url

log = logging.getLogger(__name__)


def make_server(app: Flask, host: str, port: int, threads: int = 16) -> wsgi.Server:
    """Build (not start) the WSGI server, with TLS when SSL_CERT and SSL_KEY are set."""
    server = wsgi.Server((host, port), app, numthreads=threads, server_name=app.config["APP_NAME"])
    if app.config.get("SSL_CERT") and app.config.get("SSL_KEY"):
        server.ssl_adapter = BuiltinSSLAdapter(app.config["SSL_CERT"], app.config["SSL_KEY"])
    return server


def serve(app: Flask, host: str, port: int) -> None:
    """Run until SIGINT/SIGTERM, with the in-process scheduler when no broker is configured."""
    server = make_server(app, host, port)
    stop_scheduler = _start_scheduler(app)
    scheme = "https" if server.ssl_adapter else "http"

    def shutdown(signum: int, _frame: Any) -> None:
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
        stop_scheduler()


def _start_scheduler(app: Flask) -> Any:
    if app.config.get("CELERY_BROKER_URL"):
        broker = safe_url(app.config["CELERY_BROKER_URL"])  # without its password
        log.info("Crawls are scheduled by Celery beat (broker %s)", broker)
        return lambda: None
    return start_embedded_scheduler(app)
