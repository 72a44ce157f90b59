"""The benchmark's lean fleet server speaks enough HTTP/1.1 for aiohttp, in order, with latency."""

from __future__ import annotations

import asyncio
import socket
import time

import aiohttp

from benchmarks.fleet import FleetProtocol, reply_for, stats, system_info


def test_reply_for_routes_instances_and_endpoints() -> None:
    assert reply_for(b"/i/3/system-info")[0] == 200
    assert reply_for(b"/i/12/stats?x=1")[0] == 200
    for path in (b"/i/x/stats", b"/i/3/nothing", b"/", b"/i/3/stats/more"):
        assert reply_for(path)[0] == 404


async def _serve_and(latency: float, check) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: FleetProtocol(latency), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        await check(f"http://127.0.0.1:{port}", port)


def test_aiohttp_gets_the_replies_over_one_kept_alive_connection() -> None:
    async def check(base: str, _port: int) -> None:
        connector = aiohttp.TCPConnector(limit=1)
        async with aiohttp.ClientSession(connector=connector) as session:
            start = time.monotonic()
            for n in range(3):
                async with session.get(f"{base}/i/{n}/system-info") as resp:
                    assert resp.status == 200
                    assert await resp.json() == system_info(n)
                async with session.get(f"{base}/i/{n}/stats") as resp:
                    assert await resp.json() == stats(n)
            assert time.monotonic() - start >= 6 * 0.05  # every reply waited for the latency
            async with session.get(f"{base}/i/1/unknown") as resp:
                assert resp.status == 404
            assert len(connector._conns) == 1  # one pooled connection served them all

    asyncio.run(_serve_and(0.05, check))


def test_pipelined_requests_are_answered_in_order_and_close_is_honoured() -> None:
    async def check(_base: str, port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"GET /i/1/stats HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /i/2/stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        data = await asyncio.wait_for(reader.read(), 5)  # EOF: the server closed
        writer.close()
        first, second = data.index(b'"events": 37'), data.index(b'"events": 74')
        assert first < second
        assert data.count(b"HTTP/1.1 200 OK") == 2
        assert b"Connection: close" in data

    asyncio.run(_serve_and(0.0, check))


def test_a_request_that_is_not_a_get_is_refused() -> None:
    async def check(_base: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.setblocking(False)
            await loop.sock_sendall(sock, b"POST /i/1/stats HTTP/1.1\r\n\r\n")
            reply = await asyncio.wait_for(loop.sock_recv(sock, 4096), 5)
        assert reply.startswith(b"HTTP/1.1 400 Bad Request")

    asyncio.run(_serve_and(0.0, check))
