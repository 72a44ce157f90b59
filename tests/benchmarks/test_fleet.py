"""The benchmark's lean fleet server speaks enough HTTP/1.1 for aiohttp, in order, with latency;
its realistic plan is seeded, has the shares it promises, and its ideal time is the bound."""

from __future__ import annotations

import asyncio
import math
import socket
import time
from array import array

import aiohttp
import pytest

from benchmarks.fleet import (
    ANSWERS,
    FAILS,
    HANGS,
    REFUSES,
    FleetPlan,
    FleetProtocol,
    free_port,
    ideal_seconds,
    in_order_seconds,
    refusing_socket,
    reply_for,
    stats,
    system_info,
)


def test_reply_for_routes_instances_and_endpoints() -> None:
    assert reply_for(b"/i/3/system-info")[0] == 200
    assert reply_for(b"/i/12/stats?x=1")[0] == 200
    for path in (b"/i/x/stats", b"/i/3/nothing", b"/", b"/i/3/stats/more"):
        assert reply_for(path)[0] == 404


async def _serve_and(latency: float, check, plan: FleetPlan | None = None) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: FleetProtocol(latency, plan), "127.0.0.1", 0)
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


# --- the realistic plan -------------------------------------------------------------------------


def test_the_same_seed_draws_the_same_plan_and_another_seed_another() -> None:
    first, again, other = FleetPlan.draw(2000, 7), FleetPlan.draw(2000, 7), FleetPlan.draw(2000, 8)
    assert (first.kinds, first.latencies) == (again.kinds, again.latencies)
    assert first.kinds != other.kinds
    assert first.latencies != other.latencies


def test_the_plan_has_the_promised_shares_and_latencies() -> None:
    num = 40_000
    plan = FleetPlan.draw(num, 1)
    for kind in (HANGS, REFUSES, FAILS):  # 1 % each; binomial sd 0.05 %: 4 sd of tolerance
        assert plan.count(kind) / num == pytest.approx(0.01, abs=0.002)
    assert plan.count(ANSWERS) / num == pytest.approx(0.97, abs=0.004)
    latencies = sorted(plan.latencies)
    assert latencies[num // 2] == pytest.approx(0.150, rel=0.04)  # the median
    above = sum(1 for latency in latencies if latency > 1.0) / num
    assert above == pytest.approx(0.05, abs=0.005)
    assert min(latencies) > 0
    # log-normal: the logarithms are normal, so their quartiles sit 0.674 sd around the median
    logs = [math.log(latency) for latency in latencies]
    sigma = (logs[3 * num // 4] - logs[num // 4]) / (2 * 0.6745)
    assert sigma == pytest.approx(math.log(1 / 0.150) / 1.6449, rel=0.05)


def _plan(kinds: list[int], latencies: list[float]) -> FleetPlan:
    return FleetPlan(0, bytes(kinds), array("d", latencies))


def test_each_instance_takes_its_endpoints_in_turn_until_the_first_failure() -> None:
    plan = _plan([ANSWERS, HANGS, REFUSES, FAILS, ANSWERS], [0.2, 0.5, 0.3, 0.4, 4.0])
    assert [plan.seconds(n, 2, timeout=3.0) for n in range(5)] == [0.4, 3.0, 0.0, 0.4, 3.0]
    assert [plan.succeeds(n, timeout=3.0) for n in range(5)] == [True, False, False, False, False]
    assert plan.succeeds(4, timeout=5.0)


def test_the_ideal_is_the_work_spread_over_the_slots_or_the_slowest_instance() -> None:
    plan = _plan([ANSWERS, HANGS, REFUSES, FAILS], [0.2, 0.5, 0.3, 0.4])  # 0.4 + 3 + 0 + 0.4
    assert ideal_seconds(plan, 1, 2, 3.0) == pytest.approx(3.8)
    assert ideal_seconds(plan, 2, 2, 3.0) == pytest.approx(3.0)  # the hanging one alone
    assert ideal_seconds(_plan([], []), 100, 2, 3.0) == 0.0


def test_in_order_a_slow_instance_started_late_costs_more_than_the_ideal() -> None:
    plan = _plan([ANSWERS] * 3, [0.5, 0.5, 2.5])  # 1, 1 and 5 seconds for 2 endpoints
    assert ideal_seconds(plan, 2, 2, 10.0) == pytest.approx(5.0)
    assert in_order_seconds(plan, 2, 2, 10.0) == pytest.approx(6.0)  # starts at 1, ends at 6
    assert in_order_seconds(plan, 1, 2, 10.0) == pytest.approx(7.0)


def test_planned_instances_answer_hang_fail_or_refuse() -> None:
    plan = _plan([ANSWERS, HANGS, FAILS, REFUSES], [0.05, 0.01, 0.01, 0.01])

    async def check(base: str, _port: int) -> None:
        async with aiohttp.ClientSession() as session:
            start = time.monotonic()
            async with session.get(f"{base}/i/0/stats") as resp:
                assert resp.status == 200
                assert await resp.json() == stats(0)
            assert time.monotonic() - start >= 0.05  # its own latency
            async with session.get(f"{base}/i/2/stats") as resp:
                assert resp.status == 500
            with pytest.raises(asyncio.TimeoutError):  # accepted, never answered
                async with asyncio.timeout(0.5):
                    await session.get(f"{base}/i/1/stats")
            with pytest.raises(aiohttp.ClientError):  # sent to the wrong port: dropped
                await session.get(f"{base}/i/3/stats")

    asyncio.run(_serve_and(0.0, check, plan))


def test_the_refusing_port_refuses_connections_while_it_is_held() -> None:
    port = free_port()
    with refusing_socket("127.0.0.1", port), pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_replies_of_different_latencies_on_one_connection_stay_in_order() -> None:
    plan = _plan([ANSWERS, ANSWERS], [0.2, 0.0])

    async def check(_base: str, port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"GET /i/0/stats HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /i/1/stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        data = await asyncio.wait_for(reader.read(), 5)
        writer.close()
        assert data.index(b'"events": 0') < data.index(b'"events": 37')

    asyncio.run(_serve_and(0.0, check, plan))
