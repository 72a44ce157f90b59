"""Registration is rate-limited per client address, in memory or in Redis."""

from __future__ import annotations

import uuid as uuid_mod
from collections.abc import Callable, Iterator

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import count_rows
from tests.test_errors import assert_json_error

BODY = {
    "url": "https://indico.example.org",
    "contact": "Ann",
    "email": "ann@example.org",
    "organization": "Lab",
}
REDIS_URI = "redis://127.0.0.1:6379/15"


def post(client: FlaskClient, path: str = "/api/instance/", **environ: str) -> int:
    """Register from the client address (and headers) given; return the status."""
    headers = {"X-Forwarded-For": environ.pop("xff")} if "xff" in environ else {}
    response = client.post(path, json=BODY, headers=headers, environ_base=environ)
    if response.status_code >= 400:
        assert_json_error(response, response.status_code)
    return response.status_code


@pytest.fixture
def limited(make_app: Callable[..., Flask]) -> Callable[..., FlaskClient]:
    """A test client of an app allowing two registrations per hour (plus other overrides)."""

    def factory(**overrides: object) -> FlaskClient:
        return make_app(REGISTRATION_RATE_LIMIT="2 per hour", **overrides).test_client()

    return factory


def test_third_registration_in_an_hour_is_429_with_retry_after(
    app: Flask, limited: Callable[..., FlaskClient]
) -> None:
    client = limited()
    assert [post(client), post(client)] == [201, 201]
    response = client.post("/api/instance/", json=BODY)
    body = assert_json_error(response, 429)
    assert "2 per 1 hour" in body["error"]
    retry_after = int(response.headers["Retry-After"])
    assert 0 < retry_after <= 3600
    assert count_rows(client.application, "instances") == 2


def test_both_prefixes_share_one_budget(limited: Callable[..., FlaskClient]) -> None:
    client = limited()
    assert post(client, "/api/instance/") == 201
    assert post(client, "/instance/") == 201
    assert [post(client, p) for p in ("/instance/", "/instance", "/api/instance/")] == [429] * 3


def test_limit_is_per_client_address(limited: Callable[..., FlaskClient]) -> None:
    client = limited()
    ann = {"REMOTE_ADDR": "192.0.2.1"}
    bob = {"REMOTE_ADDR": "192.0.2.2"}
    assert [post(client, **ann), post(client, **ann), post(client, **ann)] == [201, 201, 429]
    assert post(client, **bob) == 201


def test_reads_and_updates_are_not_limited_by_the_registration_limit(
    limited: Callable[..., FlaskClient],
) -> None:
    client = limited()
    created = client.post("/api/instance/", json=BODY).json["uuid"]
    assert post(client) == 201
    assert post(client) == 429
    for _ in range(5):
        assert client.get(f"/api/instance/{created}").status_code == 200
        assert client.patch(f"/api/instance/{created}", json={"contact": "Bob"}).status_code == 200


def test_forwarded_for_is_ignored_without_use_proxy(limited: Callable[..., FlaskClient]) -> None:
    client = limited(USE_PROXY=False)
    statuses = [post(client, xff=f"198.51.100.{n}") for n in range(3)]
    assert statuses == [201, 201, 429]


def test_forwarded_for_is_honoured_with_use_proxy(limited: Callable[..., FlaskClient]) -> None:
    client = limited(USE_PROXY=True)
    assert [post(client, xff="198.51.100.1") for _ in range(3)] == [201, 201, 429]
    assert post(client, xff="198.51.100.2") == 201
    # one proxy is trusted: the address it appended is the client, earlier ones are not
    assert post(client, xff="203.0.113.9, 198.51.100.1") == 429


# --- Redis --------------------------------------------------------------------------------


@pytest.fixture
def redis_db() -> Iterator[redis.Redis]:
    """Redis database 15, reserved for tests; skipped when no server is running."""
    conn = redis.Redis.from_url(REDIS_URI, socket_connect_timeout=2)
    try:
        conn.ping()
    except redis.ConnectionError as exc:  # pragma: no cover - a machine without Redis
        pytest.fail(f"Redis is needed at {REDIS_URI}: {exc}")
    yield conn
    conn.close()


@pytest.mark.redis
def test_limit_counters_live_in_redis(
    limited: Callable[..., FlaskClient], redis_db: redis.Redis
) -> None:
    # a client address of its own, so parallel runs and leftovers never share counters
    address = f"10.{uuid_mod.uuid4().int % 250}.{uuid_mod.uuid4().int % 250}.7"
    pattern = f"*{address}*"
    for key in redis_db.scan_iter(pattern):
        redis_db.delete(key)
    try:
        client = limited(RATELIMIT_STORAGE_URI=REDIS_URI)
        assert [post(client, REMOTE_ADDR=address) for _ in range(2)] == [201, 201]
        keys = list(redis_db.scan_iter(pattern))
        assert keys, "no rate-limit counter was written to Redis"
        # a second app (another process in production) shares the counter
        other = limited(RATELIMIT_STORAGE_URI=REDIS_URI)
        assert post(other, REMOTE_ADDR=address) == 429
        assert 0 < redis_db.ttl(keys[0]) <= 3600
    finally:
        for key in redis_db.scan_iter(pattern):
            redis_db.delete(key)


def test_an_app_without_limits_does_not_switch_them_off_for_the_next(
    make_app: Callable[..., Flask], limited: Callable[..., FlaskClient]
) -> None:
    unlimited = make_app(RATELIMIT_ENABLED=False, REGISTRATION_RATE_LIMIT="1 per hour")
    assert [post(unlimited.test_client()) for _ in range(2)] == [201, 201]
    client = limited()
    assert [post(client) for _ in range(3)] == [201, 201, 429]
