"""Whatever a client sends, the API answers with a 2xx or a 4xx JSON error, never a 500.

Generated query strings, paths and JSON bodies (awkward text, huge and odd numbers, wrong
types, repeated and unknown parameters) go to the admin API and to the registration
protocol, on both databases; the stored fleet must come out of it unchanged unless a
request was accepted.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.admin.conftest import SETTINGS as FIELDS

AWKWARD = ["", "\x00", "\ud800", "é", "%", "&", "=", "+", " ", "-1", "0", "1e9", "NaN", "9" * 30]
TEXT = st.text(max_size=20) | st.sampled_from(AWKWARD)
LIST_PARAMETERS = ["status", "q", "country", "health", "duplicates", "sort", "order", "page"]
LIST_PARAMETERS += ["per_page", "colour"]
SORTS = ["organization", "url", "registered", "last_crawl_at", "field:version", "field:", "x"]
VALUES = TEXT | st.sampled_from(SORTS) | st.integers().map(str)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | TEXT,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(TEXT, children, max_size=3),
    max_leaves=8,
)
FIELD_NAMES = st.sampled_from(["url", "contact", "email", "organization", "enabled", "uuid"])
BODIES = st.dictionaries(FIELD_NAMES | TEXT, JSON_VALUES, max_size=6)

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _query(pairs: list[tuple[str, str]]) -> str:
    def encode(text: str) -> str:
        return quote(text, safe="", errors="surrogatepass")

    return "&".join(f"{encode(key)}={encode(value)}" for key, value in pairs)


def _check(response: Any) -> None:
    assert response.status_code < 500, response.get_data(as_text=True)[:500]
    if response.status_code >= 400 and response.status_code != 405:
        assert "error" in response.get_json(), response.get_data(as_text=True)[:500]


def _fleet(api: Any) -> list[dict[str, Any]]:
    return api("/api/admin/instances?per_page=100").get_json()["items"]


@SETTINGS
@given(
    pairs=st.lists(st.tuples(st.sampled_from(LIST_PARAMETERS) | TEXT, VALUES), max_size=5),
    path=st.sampled_from(["instances", "export", "statistics/trend", "statistics", "crawl/x"]),
)
def test_any_query_string(
    api: Any, instances: dict[int, str], pairs: list[tuple[str, str]], path: str
) -> None:
    if path == "export":
        pairs = [("format", "csv"), *pairs]
    response = api(f"/api/admin/{path}?{_query(pairs)}")
    _check(response)


@SETTINGS
@given(body=BODIES | JSON_VALUES, raw=st.booleans())
def test_any_edit_of_an_instance(api: Any, instances: dict[int, str], body: Any, raw: bool) -> None:
    before = _fleet(api)
    data = json.dumps(body) if raw else json.dumps(body)[:-1]  # also cut-off JSON
    response = api(
        f"/api/admin/instances/{instances[1]}",
        method="PATCH",
        data=data.encode("utf-8", "surrogatepass"),
        content_type="application/json",
    )
    _check(response)
    if response.status_code >= 400:
        assert _fleet(api) == before


@pytest.fixture
def unlimited(make_app: Callable[..., Flask]) -> FlaskClient:
    """A client of an app on the same database without the registration rate limit."""
    return make_app(CRAWLED_FIELDS_SETTINGS=FIELDS, RATELIMIT_ENABLED=False).test_client()


@SETTINGS
@given(body=BODIES | JSON_VALUES, uuid=st.sampled_from(["known", "unknown"]) | TEXT)
def test_any_registration_or_update(
    unlimited: FlaskClient, instances: dict[int, str], body: Any, uuid: str
) -> None:
    client = unlimited
    data = json.dumps(body).encode("utf-8", "surrogatepass")
    _check(client.post("/api/instance/", data=data, content_type="application/json"))
    target = {"known": instances[2], "unknown": "6f1c0c0e-0000-4000-8000-000000000000"}.get(
        uuid, quote(uuid, safe="", errors="surrogatepass")
    )
    response = client.patch(f"/api/instance/{target}", data=data, content_type="application/json")
    _check(response)
    _check(client.get(f"/api/instance/{target}"))
