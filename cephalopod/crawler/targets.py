"""Hand out crawl targets to many fetch workers, from a list or an async stream of chunks."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterable, Awaitable, Callable, Hashable, Iterable, Sequence

Target = tuple[Hashable, str]  # (opaque key, instance base URL)


def target_reader(
    targets: Iterable[Target] | AsyncIterable[Target] | AsyncIterable[Sequence[Target]],
    chunked: bool,
) -> Callable[[], Awaitable[Target | None]]:
    """Return an async callable, safe to share between workers, giving the next target or None.

    An async iterable is advanced under a lock (two tasks cannot advance it at once); when it
    yields chunks of targets, most calls are served from a buffer without awaiting at all.
    """
    if isinstance(targets, AsyncIterable):
        iterator = aiter(targets)
        lock = asyncio.Lock()
        buffer: deque[Target] = deque()
        exhausted = False

        async def next_async() -> Target | None:
            nonlocal exhausted
            while not buffer:
                async with lock:
                    if buffer:
                        break
                    if exhausted:
                        return None
                    try:
                        item = await anext(iterator)
                    except StopAsyncIteration:
                        exhausted = True
                        return None
                    if chunked:
                        buffer.extend(item)
                    else:
                        return item
            return buffer.popleft()

        return next_async
    sync_iterator = iter(targets)

    async def next_sync() -> Target | None:
        return next(sync_iterator, None)

    return next_sync
