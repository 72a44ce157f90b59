"""A fleet simulator: one local process serving N fake instances under ``/i/<n>``.

Each instance answers two endpoints with deterministic JSON (8 crawled fields between them),
after a configurable latency, so crawls can be measured and tested against real HTTP:

    python -m benchmarks.fleet --port 8900 --latency 0.02 [--server aiohttp]

Real instances run on other machines and cost the crawler's machine no CPU; this one shares
the benchmark's cores. So by default it is a lean HTTP/1.1 responder (`FleetProtocol`,
on uvloop when installed) that uses a fraction of a core where a full web framework
(``--server aiohttp``, the `fleet_app` the tests use) needs nearly one.

    GET /i/<n>/system-info  → {"indico_version", "python_version", "postgres_version",
                               "language", "debug"}
    GET /i/<n>/stats        → {"events", "users", "contributions": [..]}
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
from collections import deque
from collections.abc import Coroutine
from typing import Any

from aiohttp import web

#: The simulator's HTTP servers, by name (the default first): see `main`.
SERVERS = ("lean", "aiohttp")
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
        status, body = reply_for(request.raw_path.encode())  # the lean server's routing
        if status == 200 and latency:
            await asyncio.sleep(latency)
        return web.Response(status=status, body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/i/{n}/{endpoint}", handle)
    return app


def reply_for(path: bytes) -> tuple[int, bytes]:
    """Return (status, JSON body) for a request path of the fleet."""
    parts = path.split(b"?", 1)[0].split(b"/")
    if len(parts) == 4 and parts[1] == b"i" and parts[2].isdigit():
        reply = REPLIES.get(parts[3].decode("ascii", "replace"))
        if reply is not None:
            return 200, json.dumps(reply(int(parts[2]))).encode()
    return 404, b'{"error": "not found"}'


_REASONS = {200: b"OK", 400: b"Bad Request", 404: b"Not Found"}


class FleetProtocol(asyncio.Protocol):
    """Answer the fleet's GET requests on one keep-alive connection, each after the latency.

    Only what the benchmark needs of HTTP/1.1: requests without a body, in order (replies are
    queued, so a pipelining client would still get them in order), ``Connection: close``.
    """

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.buffer = b""
        self.queue: deque[tuple[bytes, bool]] = deque()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.loop = asyncio.get_running_loop()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
            request_line, _, headers = head.partition(b"\r\n")
            parts = request_line.split(b" ")
            if len(parts) == 3 and parts[0] == b"GET":
                status, body = reply_for(parts[1])
            else:
                status, body = 400, b'{"error": "bad request"}'
            close = b"connection: close" in headers.lower()
            response = (
                b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n%s\r\n%s"
                % (
                    status,
                    _REASONS[status],
                    len(body),
                    b"Connection: close\r\n" if close else b"",
                    body,
                )
            )
            self.queue.append((response, close))
            self.loop.call_later(self.latency, self._send_next)

    def _send_next(self) -> None:
        response, close = self.queue.popleft()
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        transport.write(response)
        if close:
            transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


async def serve(host: str, port: int, latency: float) -> None:
    """Serve the fleet with `FleetProtocol` until cancelled."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: FleetProtocol(latency), host, port, backlog=4096, reuse_address=True
    )
    async with server:
        await server.serve_forever()


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run a coroutine on uvloop when it is installed (cheaper per request), else asyncio."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


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
    parser.add_argument(
        "--server",
        choices=SERVERS,
        default=SERVERS[0],
        help="lean: FleetProtocol (default); aiohttp: the aiohttp web app the tests use",
    )
    args = parser.parse_args()
    if args.server == "aiohttp":
        web.run_app(
            fleet_app(args.latency), host=args.host, port=args.port, print=None, access_log=None
        )
    else:
        with contextlib.suppress(KeyboardInterrupt):
            run_loop(serve(args.host, args.port, args.latency))


if __name__ == "__main__":
    main()
