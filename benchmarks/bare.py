"""The bare client of the crawl benchmark, alone in its own process.

    python -m benchmarks.bare http://127.0.0.1:PORT NUM CONCURRENCY

Fetches every fleet instance's endpoints like a crawler would, minus everything else (no
database, no limits, no checks), and prints the seconds it took. It runs in a fresh
interpreter that imports nothing but aiohttp, so that it is measured at its best: the crawl
benchmark compares ``cephalopod crawl`` against this. Prints the seconds, then the CPU
seconds the run took.
"""

from __future__ import annotations

import asyncio
import sys
import time

import aiohttp

from benchmarks.fleet import ENDPOINTS


async def bare_client(base: str, num: int, concurrency: int) -> float:
    """Fetch and decode every endpoint of instances 0..num-1; return the seconds taken."""
    connector = aiohttp.TCPConnector(limit=concurrency)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(num):
        queue.put_nowait(n)

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            n = queue.get_nowait()
            data = {}
            for endpoint in ENDPOINTS:
                async with session.get(f"{base}/i/{n}{endpoint['url']}") as resp:
                    data.update(await resp.json())

    start = time.perf_counter()
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return time.perf_counter() - start


def main() -> None:
    """Run the bare client on the command line's fleet; print its seconds and CPU seconds."""
    base, num, concurrency = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    cpu = time.process_time()
    seconds = asyncio.run(bare_client(base, num, concurrency))
    print(f"{seconds:.4f} {time.process_time() - cpu:.4f}")


if __name__ == "__main__":
    main()
