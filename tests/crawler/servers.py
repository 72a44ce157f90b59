"""Real local HTTP servers for crawler tests: well-behaved, misbehaving and canaries.

Servers run on their own event loop in a background thread, so a server that hangs or
floods never shares a loop with the client under test.
"""

from __future__ import annotations

import asyncio
import functools
import gzip
import json
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

OK_DATA = {"name": "indico", "version": "3.3.7", "python_version": "3.12.1"}
HUGE_BYTES = 50 * 1024 * 1024


class NoDNSResolver(AbstractResolver):
    """Resolver for tests outside the netns: a host name must never become a DNS query."""

    async def resolve(self, host: str, port: int = 0, family: int = 0) -> list[ResolveResult]:
        raise OSError(f"DNS disabled in tests (asked for {host!r})")

    async def close(self) -> None:
        pass


@functools.cache
def gzip_bomb() -> bytes:
    """About 50 KB of gzip that inflates to a 50 MB JSON document."""
    return gzip.compress(b'{"a": "' + b"x" * HUGE_BYTES + b'"}', compresslevel=9)


@dataclass
class Stats:
    """What a server saw, written on the server thread and read by the test."""

    connections: int = 0
    requests: list[str] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    client_ports: set[int] = field(default_factory=set)
    active: int = 0
    max_active: int = 0
    bytes_sent: int = 0


class ServerLoop:
    """An event loop in a daemon thread that hosts any number of test servers."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._cleanups: list[Callable[[], Awaitable[None]]] = []

    def start(self) -> None:
        self._thread.start()

    def call(self, coro: Awaitable[Any], timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    def stop(self) -> None:
        async def cleanup() -> None:
            for func in reversed(self._cleanups):
                await func()

        self.call(cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()

    def start_app(
        self, app: web.Application, host: str = "127.0.0.1", ssl_context: Any = None
    ) -> str:
        """Serve an aiohttp app on a free port (TLS if ssl_context); return its base URL."""

        async def start() -> str:
            runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.5)
            await runner.setup()
            site = web.TCPSite(runner, host, 0, ssl_context=ssl_context)
            await site.start()
            self._cleanups.append(runner.cleanup)
            url = url_for(host, runner.addresses[0][1])
            return url.replace("http://", "https://", 1) if ssl_context else url

        return self.call(start())

    def start_protocol(
        self, factory: Callable[[], asyncio.Protocol], host: str = "127.0.0.1"
    ) -> str:
        """Serve connections with protocols from factory on a free port; return the base URL."""

        async def start() -> str:
            server = await self.loop.create_server(factory, host, 0)

            async def cleanup() -> None:
                server.close()
                await server.wait_closed()

            self._cleanups.append(cleanup)
            return url_for(host, server.sockets[0].getsockname()[1])

        return self.call(start())

    def start_raw(
        self, reply: bytes | None, host: str = "127.0.0.1", stats: Stats | None = None
    ) -> str:
        """Serve a fixed raw reply (None: close without answering); return the base URL."""
        stats = stats if stats is not None else Stats()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            stats.connections += 1
            try:
                head = await reader.readuntil(b"\r\n\r\n")
                stats.requests.append(head.split(b" ", 2)[1].decode())
                if reply is not None:
                    writer.write(reply)
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        async def start() -> str:
            server = await asyncio.start_server(handle, host, 0)

            async def cleanup() -> None:
                server.close()
                await server.wait_closed()

            self._cleanups.append(cleanup)
            return url_for(host, server.sockets[0].getsockname()[1])

        return self.call(start())


def url_for(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def json_reply(data: Any, status: str = "200 OK") -> bytes:
    """A complete raw HTTP/1.1 response carrying JSON, for raw canary servers."""
    body = json.dumps(data).encode()
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


@contextmanager
def server_loop() -> Iterator[ServerLoop]:
    """Run a ServerLoop for the duration of the block."""
    loop = ServerLoop()
    loop.start()
    try:
        yield loop
    finally:
        loop.stop()


def behaviour_app(stats: Stats | None = None) -> web.Application:
    """An app with one route per (mis)behaviour an instance might show."""
    stats = stats if stats is not None else Stats()

    @web.middleware
    async def record(request: web.Request, handler: Any) -> web.StreamResponse:
        stats.requests.append(request.path_qs)
        stats.headers.append(dict(request.headers))
        peer = request.transport.get_extra_info("peername") if request.transport else None
        if peer:
            stats.client_ports.add(peer[1])
        stats.active += 1
        stats.max_active = max(stats.max_active, stats.active)
        try:
            return await handler(request)
        finally:
            stats.active -= 1

    async def ok(request: web.Request) -> web.Response:
        return web.json_response(OK_DATA)

    async def data(request: web.Request) -> web.Response:
        """JSON object given in the query string, e.g. /data?a=1&b=2 -> {"a": "1", "b": "2"}."""
        return web.json_response(dict(request.query))

    async def headers(request: web.Request) -> web.Response:
        return web.json_response({"headers": dict(request.headers)})

    def fixed(body: bytes, **kwargs: Any) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(request: web.Request) -> web.Response:
            return web.Response(body=body, **kwargs)

        return handler

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(float(request.query.get("s", "0.05")))
        return web.json_response(OK_DATA)

    async def hang(request: web.Request) -> web.Response:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def dribble(request: web.Request) -> web.StreamResponse:
        """Valid-looking JSON, one byte every 50 ms, forever: only a total timeout ends it."""
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        await resp.prepare(request)
        await resp.write(b"{")
        while True:
            await asyncio.sleep(0.05)
            await resp.write(b" ")

    async def huge(request: web.Request) -> web.StreamResponse:
        """50 MB of JSON-ish bytes, chunked or with Content-Length (?cl=1)."""
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        if request.query.get("cl"):
            resp.content_length = HUGE_BYTES
        await resp.prepare(request)
        chunk = b" " * 65536
        for _ in range(HUGE_BYTES // len(chunk)):
            await resp.write(chunk)
            stats.bytes_sent += len(chunk)
        return resp

    async def sized(request: web.Request) -> web.StreamResponse:
        """A JSON object of exactly ?n= bytes, with Content-Length or chunked (?chunked=1)."""
        n = int(request.query["n"])
        body = b'{"pad": "' + b"x" * (n - 11) + b'"}'
        assert len(body) == n
        if request.query.get("chunked"):
            resp = web.StreamResponse()
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            for i in range(0, n, 1000):
                await resp.write(body[i : i + 1000])
            await resp.write_eof()
            return resp
        return web.Response(body=body, content_type="application/json")

    async def gzipped(request: web.Request) -> web.Response:
        """Gzip-encoded JSON; ?bomb=1 inflates to 50 MB from ~50 KB on the wire."""
        body = (
            gzip_bomb()
            if request.query.get("bomb")
            else gzip.compress(json.dumps(OK_DATA).encode())
        )
        stats.bytes_sent += len(body)
        return web.Response(
            body=body, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"}
        )

    async def deep(request: web.Request) -> web.Response:
        """Nested ?n= levels deep, lists or objects (?kind=obj)."""
        n = int(request.query["n"])
        if request.query.get("kind") == "obj":
            body = '{"a": ' * n + "1" + "}" * n
        else:
            body = "[" * n + "]" * n
        return web.Response(text=body, content_type="application/json")

    async def keys(request: web.Request) -> web.Response:
        """An object with ?n= keys spread over two levels."""
        n = int(request.query["n"])
        inner = {f"k{i}": i for i in range(n - 1)}
        return web.json_response({"inner": inner})

    async def status(request: web.Request) -> web.Response:
        return web.json_response({"error": True}, status=int(request.match_info["code"]))

    async def redirect(request: web.Request) -> web.Response:
        """302 to ?to= (status ?code=), or a bare 302 without Location if ?to is missing."""
        code = int(request.query.get("code", "302"))
        location = request.query.get("to")
        if location is None:
            return web.Response(status=code)
        return web.Response(status=code, headers={"Location": location})

    async def chain(request: web.Request) -> web.Response:
        """/chain/N redirects N times (relative Location), then serves OK_DATA."""
        n = int(request.match_info["n"])
        if n == 0:
            return web.json_response(OK_DATA)
        raise web.HTTPFound(f"/chain/{n - 1}")

    async def loop(request: web.Request) -> web.Response:
        raise web.HTTPFound("/loop")

    app = web.Application(middlewares=[record])
    app.router.add_get("/ok", ok)
    app.router.add_get("/data", data)
    app.router.add_get("/headers", headers)
    app.router.add_get("/slow", slow)
    app.router.add_get("/hang", hang)
    app.router.add_get("/dribble", dribble)
    app.router.add_get("/huge", huge)
    app.router.add_get("/sized", sized)
    app.router.add_get("/gzip", gzipped)
    app.router.add_get("/deep", deep)
    app.router.add_get("/keys", keys)
    app.router.add_get("/status/{code}", status)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/chain/{n}", chain)
    app.router.add_get("/loop", loop)
    app.router.add_get("/list", fixed(b"[1, 2, 3]"))
    app.router.add_get("/string", fixed(b'"hello"'))
    app.router.add_get("/null", fixed(b"null"))
    app.router.add_get("/invalid", fixed(b'{"a": 1,'))
    app.router.add_get("/empty", fixed(b""))
    app.router.add_get("/html", fixed(b"<html>Indico</html>", content_type="text/html"))
    app.router.add_get("/notutf8", fixed(b'{"a": "\xff\xfe"}'))
    app.router.add_get("/bigint", fixed(b'{"a": ' + b"9" * 5000 + b"}"))
    app.router.add_get("/nan", fixed(b'{"a": NaN, "b": Infinity}'))  # Python's json takes it
    # unpaired surrogates: as an escape, and as raw bytes (UTF-8's encoding of U+D800)
    app.router.add_get("/surrogate", fixed(b'{"a": "x\\ud800y"}'))
    app.router.add_get("/rawsurrogate", fixed(b'{"a": "x\xed\xa0\x80y"}'))
    app.router.add_get("/textjson", fixed(b'{"a": 1}', headers={"Content-Type": "text/plain"}))
    # a well-behaved instance under /good, whatever its endpoints' paths
    app.router.add_get("/good/{endpoint:.*}", ok)
    return app
