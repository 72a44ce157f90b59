"""Whatever JSON an instance sends: refused as a crawl error, or stored and served intact.

Generated replies mix the awkward corners of JSON and of Python's decoder (unpaired
surrogates as escapes and as raw bytes, NUL, control characters, NaN and Infinity, numbers
beyond a float's range, ints of thousands of digits, aggregated lists of such ints). Each one
the parser accepts must store on both databases as one ordinary success (never "the reply
could not be stored", never an exception), and the admin API must then serve the instance
and the statistics as strict JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cephalopod.auth import operations as auth_ops
from cephalopod.crawler import writer
from cephalopod.crawler.results import FetchResult
from cephalopod.db import db, utcnow
from cephalopod.instances.models import Instance
from cephalopod.jsonlimits import loads_limited
from cephalopod.services import services

FIELDS = {"total": {"aggregation": "sum"}, "mean": {"aggregation": "avg"}, "hidden": None}

AWKWARD = ["\x00", "\ud800", "\udfff", "\ud83d", "\ude00", "\U0001f600", "\x01", "\x1f"]
AWKWARD += ["\\", '"', "é", "\u2028"]


def _nines(sign: int, digits: int) -> int:
    """A long int, cheap to generate (up to the 4,300 digits Python's JSON parser takes)."""
    return sign * int("9" * digits)


TEXT = st.text(
    st.sampled_from(AWKWARD) | st.characters(exclude_categories=()), max_size=30
) | st.builds(str.__mul__, st.sampled_from(AWKWARD), st.integers(1, 400))  # long, cheaply
NUMBERS = (
    st.integers()
    | st.builds(_nines, st.sampled_from([1, -1]), st.integers(1, 4300))
    | st.sampled_from([10**999 - 1, 10**999, -(10**999)])
    | st.floats()
    | st.sampled_from([1e308, 5e-324, -0.0, 1e16])
)
LEAVES = st.none() | st.booleans() | NUMBERS | TEXT
VALUES = st.recursive(
    LEAVES,
    lambda children: st.lists(children, max_size=20) | st.dictionaries(TEXT, children, max_size=5),
    max_leaves=40,
)
DOCUMENTS = st.dictionaries(st.sampled_from([*FIELDS, "version"]) | TEXT, VALUES, max_size=8)


def _strict(text: bytes) -> Any:
    """Parse as a browser would: NaN and Infinity are not JSON."""

    def refuse(name: str) -> Any:
        raise AssertionError(f"{name} in a reply of the admin API")

    return json.loads(text, parse_constant=refuse)


def _types(value: Any) -> Any:
    if type(value) is dict:
        return {key: _types(member) for key, member in value.items() if key != "hidden"}
    if type(value) is list:
        return [_types(member) for member in value]
    return type(value)


@pytest.fixture
def setup(
    make_app: Callable[..., Flask],
    make_instance: Callable[..., Any],
    fast_hashing: None,
) -> tuple[Flask, Instance, dict[str, str]]:
    app = make_app(CRAWLED_FIELDS_SETTINGS=FIELDS)
    with app.app_context():
        auth_ops.create_user("admin", "admin-password")
        headers = {"Authorization": f"Bearer {auth_ops.create_token('admin')}"}
    return app, make_instance(), headers


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(document=DOCUMENTS, ascii_only=st.booleans())
def test_any_accepted_reply_is_stored_and_served_as_json(
    setup: tuple[Flask, Instance, dict[str, str]], document: dict[str, Any], ascii_only: bool
) -> None:
    app, instance, headers = setup
    # NaN and Infinity come out as Python writes them; unpaired surrogates as escapes or,
    # with ascii_only off, as raw bytes
    body = json.dumps(document, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    try:
        value = loads_limited(body, max_depth=32, max_keys=1000)
    except ValueError:
        return  # refused: an ordinary crawl error (the fetcher's tests check which)
    result = FetchResult(instance.id, True, value, None, "127.0.0.1", utcnow(), 0.1)
    with app.app_context():
        outcome = writer._store(
            db.engine, services(app).settings.crawl, None, (None, None), [result]
        )
        stored = db.session.get(Instance, instance.id).crawled_data
        db.session.remove()
    assert (outcome.ok, outcome.failed, dict(outcome.errors)) == (1, 0, {})
    assert stored == {k: v for k, v in value.items() if k != "hidden"}
    assert _types(stored) == _types(value)  # 1e16 stays a float, 10**16 an int

    client = app.test_client()
    reply = client.get(f"/api/admin/instances/{instance.uuid}", headers=headers)
    assert reply.status_code == 200
    assert _strict(reply.data)["crawled_data"] == stored
    reply = client.get("/api/admin/statistics", headers=headers)
    assert reply.status_code == 200
    _strict(reply.data)
