"""A fleet simulator: one local process serving N fake instances under ``/i/<n>``.

Each instance answers two endpoints with deterministic JSON (8 crawled fields between them),
after a configurable latency, so crawls can be measured and tested against real HTTP:

    python -m benchmarks.fleet --port 8900 --latency 0.02

    GET /i/<n>/system-info  → {"indico_version", "python_version", "postgres_version",
                               "language", "debug"}
    GET /i/<n>/stats        → {"events", "users", "contributions": [..]}
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
from typing import Any

from aiohttp import web

ENDPOINTS = [{"url": "/system-info", "headers": {}}, {"url": "/stats", "headers": {}}]
VERSIONS = ["3.3.7", "3.3.6", "3.3.5", "3.2.9", "3.2.1", "3.1.4"]
PYTHONS = ["3.12.7", "3.12.1", "3.11.9", "3.10.14"]
POSTGRES = ["17.2", "16.6", "15.10", "14.15"]
LANGUAGES = ["en_GB", "en_US", "fr_FR", "de_DE", "es_ES", "pt_BR", "it_IT", "pl_PL"]

#: CRAWLED_FIELDS_SETTINGS that chart the fleet's fields (5 charts, one list aggregation).
FIELD_SETTINGS: dict[str, Any] = {
    "indico_version": {"label": "Indico version", "chart": True, "chart_type": "bar"},
    "python_version": {"chart": True, "chart_type": "pie"},
    "postgres_version": {"label": "PostgreSQL version", "chart": True},
    "language": {"chart": True, "chart_type": "pie"},
    "events": {"chart": True, "chart_aggregation": "sum", "chart_aggregate_by": "country"},
    "contributions": {"aggregation": "sum"},
}


def system_info(n: int) -> dict[str, Any]:
    """Return instance n's /system-info reply."""
    return {
        "indico_version": VERSIONS[n % len(VERSIONS)],
        "python_version": PYTHONS[n % len(PYTHONS)],
        "postgres_version": POSTGRES[(n // 3) % len(POSTGRES)],
        "language": LANGUAGES[(n // 7) % len(LANGUAGES)],
        "debug": n % 10 == 0,
    }


def stats(n: int) -> dict[str, Any]:
    """Return instance n's /stats reply."""
    return {
        "events": (n * 37) % 5000,
        "users": (n * 13) % 20000,
        "contributions": [n % 50, (n * 3) % 70, (n * 7) % 90],
    }


REPLIES = {"system-info": system_info, "stats": stats}


def fleet_app(latency: float = 0.0) -> web.Application:
    """Build the aiohttp app serving every fake instance."""

    async def handle(request: web.Request) -> web.Response:
        try:
            n = int(request.match_info["n"])
            reply = REPLIES[request.match_info["endpoint"]]
        except (KeyError, ValueError):
            raise web.HTTPNotFound() from None
        if latency:
            await asyncio.sleep(latency)
        return web.Response(body=json.dumps(reply(n)).encode(), content_type="application/json")

    app = web.Application()
    app.router.add_get("/i/{n}/{endpoint}", handle)
    return app


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free right now on host."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def main() -> None:
    """Serve the fleet until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument("--latency", type=float, default=0.02, help="seconds per reply")
    args = parser.parse_args()
    web.run_app(
        fleet_app(args.latency), host=args.host, port=args.port, print=None, access_log=None
    )


if __name__ == "__main__":
    main()
