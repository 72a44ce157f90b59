"""Hand out crawl targets to many fetch workers, from a list or an async stream of chunks."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Sequence,
)
from typing import cast

from cephalopod.crawler.results import K

Target = tuple[K, str]  # (opaque key, instance base URL)
#: A list, or an async stream of targets or (``chunked``) of sequences of targets
Targets = Iterable[Target[K]] | AsyncIterable[Target[K]] | AsyncIterable[Sequence[Target[K]]]


def target_reader(
    targets: Targets[K],
    chunked: bool,
) -> Callable[[], Awaitable[Target[K] | None]]:
    """Return an async callable, safe to share between workers, giving the next target or None.

    An async iterable is advanced under a lock (two tasks cannot advance it at once); when it
    yields chunks of targets, most calls are served from a buffer without awaiting at all.
    """
    if isinstance(targets, AsyncIterable):
        iterator: AsyncIterator[Target[K] | Sequence[Target[K]]] = aiter(targets)
        lock = asyncio.Lock()
        buffer: deque[Target[K]] = deque()
        exhausted = False

        async def next_async() -> Target[K] | None:
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
                    # which of the two an item is, only the caller's ``chunked`` says
                    if chunked:
                        buffer.extend(cast("Sequence[Target[K]]", item))
                    else:
                        return cast("Target[K]", item)
            return buffer.popleft()

        return next_async
    sync_iterator = iter(targets)

    async def next_sync() -> Target[K] | None:
        return next(sync_iterator, None)

    return next_sync
