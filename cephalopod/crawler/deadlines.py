"""Total timeouts for many concurrent requests from one periodic sweep (see `Deadlines`)."""

from __future__ import annotations

import asyncio
from typing import Any


class Deadlines:
    """Total timeouts for many requests from one periodic sweep, not one timer per request.

    A timer per request (asyncio.timeout or aiohttp's ClientTimeout.total) costs about as
    much CPU as the rest of our per-request work. Every request gets the same timeout, so
    registration order is deadline order and a sweep stops at the first live entry. Expiry
    cancels the task, exactly as asyncio.timeout does; `leave` tells whether that happened.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.resolution = min(0.1, max(0.005, timeout / 50))
        self._deadlines: dict[asyncio.Task[Any], float] = {}
        self._expired: set[asyncio.Task[Any]] = set()

    def enter(self, task: asyncio.Task[Any]) -> None:
        self._deadlines[task] = task.get_loop().time() + self.timeout

    def leave(self, task: asyncio.Task[Any]) -> bool:
        """Stop watching task; True if it was cancelled for running out of time."""
        del self._deadlines[task]
        if task in self._expired:
            self._expired.discard(task)
            return True
        return False

    async def sweep_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.resolution)
            now = loop.time()
            for task, deadline in self._deadlines.items():
                if deadline > now:
                    break
                if task not in self._expired:
                    self._expired.add(task)
                    task.cancel()
