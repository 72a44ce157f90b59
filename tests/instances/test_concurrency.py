"""Concurrent writes through the real `cephalopod run`, on SQLite and PostgreSQL.

50 PATCHes of one instance at once: each answers 200 and the record ends as exactly one of
the writes, every field of it (last writer wins, whole); never a mix of fields from several
writes. 50 registrations at once: each answers 201 with a UUID of its own, and each UUID
reads back the registration that got it.

Each write changes some fields and repeats the others' current values, as Indico's
``sync_instance`` does (it sends every field): a server that wrote only the fields that
differ from what it had read would merge two writes into a record nobody sent.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from tests.databases import empty_database
from tests.test_server import PAYLOAD, run_server, server_env

pytestmark = [pytest.mark.slow]

WRITERS = 50
ROUNDS = 3
FIELDS = ("url", "contact", "email", "organization", "enabled")
TIMEOUT = 30


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def hub(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of `cephalopod run` on each database."""
    folder = tmp_path_factory.mktemp(f"concurrency-{request.param}")
    with contextlib.ExitStack() as stack:
        settings = 'REGISTRATION_RATE_LIMIT = "100000 per hour"\n'
        if request.param == "postgresql":
            url = stack.enter_context(empty_database("postgresql", folder))
            settings += f"SQLALCHEMY_DATABASE_URI = {url!r}\n"
        server = stack.enter_context(run_server(server_env(folder, settings), folder))
        yield server.url


def at_once(calls: list[Callable[[], requests.Response]]) -> list[requests.Response]:
    """Run the calls in threads of their own, released together by a barrier."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], requests.Response]) -> requests.Response:
        barrier.wait(timeout=TIMEOUT)
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def write(number: int, current: dict[str, Any]) -> dict[str, Any]:
    """Write ``number``: its own values in the fields its bits select (at least one text field,
    so that no two writes are equal), the current values in the others."""
    own: dict[str, Any] = {
        "url": f"https://writer{number}.example.org",
        "contact": f"Contact {number}",
        "email": f"writer{number}@example.org",
        "organization": f"Organization {number}",
        "enabled": not current["enabled"],
    }
    texts = FIELDS[:4]
    selected = {name for bit, name in enumerate(texts) if (number % 15 + 1) >> bit & 1}
    if number % 2:
        selected.add("enabled")
    return {name: own[name] if name in selected else current[name] for name in FIELDS}


def record(hub: str, uuid: str) -> dict[str, Any]:
    """The instance's fields as the protocol reads them."""
    response = requests.get(f"{hub}/api/instance/{uuid}", timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    return {name: response.json()[name] for name in FIELDS}


def test_concurrent_patches_leave_one_whole_write(hub: str) -> None:
    created = requests.post(f"{hub}/api/instance/", json=PAYLOAD, timeout=TIMEOUT)
    assert created.status_code == 201, created.text
    uuid = created.json()["uuid"]
    target = f"{hub}/api/instance/{uuid}"
    for round_ in range(ROUNDS):
        current = record(hub, uuid)
        writes = [write(round_ * WRITERS + n, current) for n in range(WRITERS)]
        assert len({tuple(w.values()) for w in writes}) == WRITERS  # each write is different
        replies = at_once(
            [lambda w=w: requests.patch(target, json=w, timeout=TIMEOUT) for w in writes]
        )
        assert [r.status_code for r in replies] == [200] * WRITERS, [r.text for r in replies]
        final = record(hub, uuid)
        assert final in writes, f"the record mixes several writes: {final}"


def test_concurrent_registrations_each_get_their_own_uuid(hub: str) -> None:
    payloads = [
        {**PAYLOAD, "organization": f"Concurrent {n}", "url": f"https://reg{n}.example.org"}
        for n in range(WRITERS)
    ]
    replies = at_once(
        [
            lambda p=p: requests.post(f"{hub}/api/instance/", json=p, timeout=TIMEOUT)
            for p in payloads
        ]
    )
    assert [r.status_code for r in replies] == [201] * WRITERS, [r.text for r in replies]
    uuids = [r.json()["uuid"] for r in replies]
    assert len(set(uuids)) == WRITERS
    for uuid, payload in zip(uuids, payloads, strict=True):
        stored = requests.get(f"{hub}/api/instance/{uuid}", timeout=TIMEOUT).json()
        assert stored["organization"] == payload["organization"]
        assert stored["url"] == payload["url"]
