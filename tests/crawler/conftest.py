"""Fixtures of the crawler tests: real local HTTP servers that behave well or badly."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.crawler.servers import ServerLoop, behaviour_app, server_loop


@pytest.fixture(scope="module")
def servers() -> Iterator[ServerLoop]:
    """An event loop thread hosting the module's test servers."""
    with server_loop() as loop:
        yield loop


@pytest.fixture(scope="module")
def base(servers: ServerLoop) -> str:
    """Base URL of a server with every behaviour (good and hostile) under its own path."""
    return servers.start_app(behaviour_app())
