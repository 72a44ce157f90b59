"""A fleet simulator: one local process serving N fake instances under ``/i/<n>``.

Each instance answers two endpoints with deterministic JSON (8 crawled fields between them),
after a configurable latency, so crawls can be measured and tested against real HTTP:

    python -m benchmarks.fleet --port 8900 --latency 0.02 [--server aiohttp]
    python -m benchmarks.fleet --port 8900 --realistic --num 10000 --seed 1 --refuse-port 8901

Real instances run on other machines and cost the crawler's machine no CPU; this one shares
the benchmark's cores. So by default it is a lean HTTP/1.1 responder (`FleetProtocol`,
on uvloop when installed) that uses a fraction of a core where a full web framework
(``--server aiohttp``, the `fleet_app` the tests use) needs nearly one.

    GET /i/<n>/system-info  → {"indico_version", "python_version", "postgres_version",
                               "language", "debug"}
    GET /i/<n>/stats        → {"events", "users", "contributions": [..]}

The realistic mode (``--realistic``, lean server only) replaces the one latency with a seeded
`FleetPlan`, a fleet with internet latencies and a long tail: each instance's latency is drawn
from a log-normal distribution (median 150 ms, 5 % above 1 s), 1 % of the instances accept
the connection and never answer, 1 % refuse it (their URLs point at ``--refuse-port``, a port
bound but never listened on) and 1 % answer 500. It prints the ideal crawl time for a
concurrency (`ideal_seconds`): what the benchmark compares a crawl with.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import heapq
import json
import math
import random
import socket
from array import array
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass
from statistics import NormalDist
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

# --- the realistic fleet -----------------------------------------------------------------------

#: What an instance of a realistic fleet does with a request.
ANSWERS, HANGS, REFUSES, FAILS = 0, 1, 2, 3
KIND_NAMES = {ANSWERS: "answer", HANGS: "hang", REFUSES: "refuse", FAILS: "answer 500"}
#: Shares of the instances that hang, refuse, answer 500 (the rest answer).
SHARES = {HANGS: 0.01, REFUSES: 0.01, FAILS: 0.01}
MEDIAN_LATENCY = 0.15
#: The share of instances slower than one second: fixes the log-normal's spread.
SHARE_ABOVE_1S = 0.05
SIGMA = (math.log(1.0) - math.log(MEDIAN_LATENCY)) / NormalDist().inv_cdf(1 - SHARE_ABOVE_1S)


@dataclass(frozen=True)
class FleetPlan:
    """What each instance of a realistic fleet does: its kind and its latency per request.

    Drawn from a seed, so that the fleet process and the benchmark registering its instances
    build the same plan, and a run can be repeated.
    """

    seed: int
    kinds: bytes
    latencies: array  # seconds per request, one double per instance

    @classmethod
    def draw(cls, num: int, seed: int) -> FleetPlan:
        """Draw the plan of ``num`` instances from ``seed``."""
        rng = random.Random(seed)
        mu = math.log(MEDIAN_LATENCY)
        kinds = bytearray(num)
        latencies = array("d", bytes(8 * num))
        bounds = []
        edge = 0.0
        for kind, share in SHARES.items():
            edge += share
            bounds.append((edge, kind))
        for n in range(num):
            latencies[n] = rng.lognormvariate(mu, SIGMA)
            draw = rng.random()
            kinds[n] = next((kind for edge, kind in bounds if draw < edge), ANSWERS)
        return cls(seed, bytes(kinds), latencies)

    def __len__(self) -> int:
        return len(self.kinds)

    def count(self, kind: int) -> int:
        """Return how many instances are of this kind."""
        return self.kinds.count(kind)

    def seconds(self, n: int, endpoints: int, timeout: float) -> float:
        """Return how long a crawler needs for instance n: its endpoints in turn, each cut at
        ``timeout``; it stops at the first failure (a timeout, a refusal, a 500)."""
        kind, latency = self.kinds[n], self.latencies[n]
        if kind == REFUSES:
            return 0.0
        if kind == HANGS or latency >= timeout:
            return timeout
        return latency if kind == FAILS else endpoints * latency

    def succeeds(self, n: int, timeout: float) -> bool:
        """Whether a crawl with this timeout gets instance n's data."""
        return self.kinds[n] == ANSWERS and self.latencies[n] < timeout


def ideal_seconds(plan: FleetPlan, concurrency: int, endpoints: int, timeout: float) -> float:
    """The shortest possible crawl of the plan's fleet at ``concurrency``.

    Every instance's own time added up and spread over the concurrency, or the slowest
    instance if that is longer: no crawler can do better, whatever its order.
    """
    times = [plan.seconds(n, endpoints, timeout) for n in range(len(plan))]
    return max(sum(times) / concurrency, max(times, default=0.0))


def in_order_seconds(plan: FleetPlan, concurrency: int, endpoints: int, timeout: float) -> float:
    """The crawl time of a perfect crawler that starts the instances in id order.

    Each instance starts the moment a slot is free and takes exactly its own time: no
    overhead at all. Unlike the ideal, it pays for the slow instances that start late.
    """
    slots = [0.0] * concurrency
    for n in range(len(plan)):
        free = heapq.heappop(slots)
        heapq.heappush(slots, free + plan.seconds(n, endpoints, timeout))
    return max(slots)


def describe(plan: FleetPlan, concurrency: int, endpoints: int, timeout: float) -> str:
    """One line about the plan and its ideal crawl time, as the fleet prints it."""
    kinds = ", ".join(f"{plan.count(k)} {name}" for k, name in KIND_NAMES.items())
    slow = sum(1 for latency in plan.latencies if latency > 1.0)
    median = sorted(plan.latencies)[len(plan) // 2] if len(plan) else 0.0
    ideal = ideal_seconds(plan, concurrency, endpoints, timeout)
    return (
        f"realistic fleet, seed {plan.seed}: {len(plan)} instances ({kinds}); latency median"
        f" {median * 1000:.0f} ms, {100 * slow / max(1, len(plan)):.1f} % above 1 s; ideal crawl"
        f" of {endpoints} endpoints at concurrency {concurrency}, {timeout:g} s timeout:"
        f" {ideal:.2f} s"
    )


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


_REASONS = {200: b"OK", 400: b"Bad Request", 404: b"Not Found", 500: b"Internal Server Error"}


def instance_number(path: bytes) -> int | None:
    """Return n of a path under ``/i/<n>/``, else None."""
    parts = path.split(b"/", 3)
    if len(parts) >= 3 and parts[1] == b"i" and parts[2].isdigit():
        return int(parts[2])
    return None


class FleetProtocol(asyncio.Protocol):
    """Answer the fleet's GET requests on one keep-alive connection, each after the latency.

    Only what the benchmark needs of HTTP/1.1: requests without a body, in order (replies are
    queued, so a pipelining client would still get them in order), ``Connection: close``.
    With a plan, each instance's own latency and behaviour (`FleetPlan`) replace the latency.
    """

    def __init__(self, latency: float, plan: FleetPlan | None = None) -> None:
        self.latency = latency
        self.plan = plan
        self.buffer = b""
        self.queue: deque[tuple[bytes, bool]] = deque()
        self.transport: asyncio.Transport | None = None
        self.hung = False
        self.last_due = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.loop = asyncio.get_running_loop()

    def data_received(self, data: bytes) -> None:
        if self.hung:  # an instance that never answers: nothing after it is answered either
            return
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
            request_line, _, headers = head.partition(b"\r\n")
            parts = request_line.split(b" ")
            latency = self.latency
            if len(parts) == 3 and parts[0] == b"GET":
                status, body = reply_for(parts[1])
                n = instance_number(parts[1]) if self.plan is not None else None
                if self.plan is not None and n is not None and n < len(self.plan):
                    kind, latency = self.plan.kinds[n], self.plan.latencies[n]
                    if kind == HANGS:
                        self.hung, self.buffer = True, b""
                        return
                    if kind == REFUSES:  # registered on the refusing port: not for us
                        self.transport.abort()  # type: ignore[union-attr]
                        return
                    if kind == FAILS:
                        status, body = 500, b'{"error": "internal server error"}'
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
            # in order: a reply is never due before the one queued ahead of it
            due = max(self.loop.time() + latency, self.last_due)
            self.last_due = due
            self.loop.call_at(due, self._send_next)

    def _send_next(self) -> None:
        if not self.queue:  # aborted meanwhile
            return
        response, close = self.queue.popleft()
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        transport.write(response)
        if close:
            transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.queue.clear()


async def serve(host: str, port: int, latency: float, plan: FleetPlan | None = None) -> None:
    """Serve the fleet with `FleetProtocol` until cancelled."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: FleetProtocol(latency, plan), host, port, backlog=4096, reuse_address=True
    )
    async with server:
        await server.serve_forever()


def refusing_socket(host: str, port: int) -> socket.socket:
    """Bind a port and never listen on it: every connection to it is refused at once.

    Held bound, the port cannot be taken by another program meanwhile.
    """
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


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
    realistic = parser.add_argument_group("realistic mode (lean server)")
    realistic.add_argument("--realistic", action="store_true", help="a seeded FleetPlan")
    realistic.add_argument("--num", type=int, default=10000, help="instances in the plan")
    realistic.add_argument("--seed", type=int, default=1)
    realistic.add_argument("--refuse-port", type=int, help="the port refused instances use")
    realistic.add_argument("--concurrency", type=int, default=100, help="for the ideal time")
    realistic.add_argument(
        "--timeout", type=float, default=15.0, help="CRAWLER_TOTAL_TIMEOUT, for the ideal time"
    )
    args = parser.parse_args()
    if args.realistic:
        if args.server != "lean":
            parser.error("--realistic needs the lean server")
        plan = FleetPlan.draw(args.num, args.seed)
        print(describe(plan, args.concurrency, len(ENDPOINTS), args.timeout), flush=True)
        port = args.refuse_port
        refusing = None if port is None else refusing_socket(args.host, port)
        try:
            with contextlib.suppress(KeyboardInterrupt):
                run_loop(serve(args.host, args.port, 0.0, plan))
        finally:
            if refusing is not None:
                refusing.close()
    elif args.server == "aiohttp":
        web.run_app(
            fleet_app(args.latency), host=args.host, port=args.port, print=None, access_log=None
        )
    else:
        with contextlib.suppress(KeyboardInterrupt):
            run_loop(serve(args.host, args.port, args.latency))


if __name__ == "__main__":
    main()
