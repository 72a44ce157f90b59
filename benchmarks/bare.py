"""The bare client of the crawl benchmark, alone in its own process.

    python -m benchmarks.bare http://127.0.0.1:PORT NUM CONCURRENCY
    python -m benchmarks.bare http://127.0.0.1:PORT NUM CONCURRENCY --seed 1 --refused URL
        --timeout 15

Fetches every fleet instance's endpoints like a crawler would, minus everything else (no
database, no limits, no checks), and prints the seconds it took. It runs in a fresh
interpreter that imports nothing but aiohttp, so that it is measured at its best: the crawl
benchmark compares ``cephalopod crawl`` against this. With ``--seed``, the realistic fleet
of that seed (`benchmarks.fleet.FleetPlan`): its refused instances at ``--refused``, each
request cut at ``--timeout``, an instance given up at its first failure, as a crawler does.
Prints the seconds, then the CPU seconds the run took.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import aiohttp

from benchmarks.fleet import ENDPOINTS, REFUSES, FleetPlan


async def bare_client(urls: list[str], concurrency: int, timeout: float | None = None) -> float:
    """Fetch and decode every endpoint of the instances at urls; return the seconds taken."""
    connector = aiohttp.TCPConnector(limit=concurrency)
    limit = aiohttp.ClientTimeout(total=timeout)
    queue: asyncio.Queue[str] = asyncio.Queue()
    for url in urls:
        queue.put_nowait(url)

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            url = queue.get_nowait()
            data = {}
            try:
                for endpoint in ENDPOINTS:
                    async with session.get(f"{url}{endpoint['url']}", timeout=limit) as resp:
                        resp.raise_for_status()
                        data.update(await resp.json())
            except (aiohttp.ClientError, TimeoutError):
                continue  # the instance failed: on to the next one

    start = time.perf_counter()
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return time.perf_counter() - start


def main() -> None:
    """Run the bare client on the command line's fleet; print its seconds and CPU seconds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base")
    parser.add_argument("num", type=int)
    parser.add_argument("concurrency", type=int)
    parser.add_argument("--seed", type=int, help="the realistic fleet of this seed")
    parser.add_argument("--refused", help="base URL of its refused instances")
    parser.add_argument("--timeout", type=float, help="seconds per request")
    args = parser.parse_args()
    urls = [f"{args.base}/i/{n}" for n in range(args.num)]
    if args.seed is not None:
        plan = FleetPlan.draw(args.num, args.seed)
        refused = args.refused or args.base
        urls = [
            f"{refused}/i/{n}" if kind == REFUSES else url
            for n, (kind, url) in enumerate(zip(plan.kinds, urls, strict=True))
        ]
    cpu = time.process_time()
    seconds = asyncio.run(bare_client(urls, args.concurrency, args.timeout))
    print(f"{seconds:.4f} {time.process_time() - cpu:.4f}")


if __name__ == "__main__":
    main()
