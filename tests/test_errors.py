"""One JSON error shape for every error under /api/ and /instance/: never HTML, never a trace."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import count_rows

VALID = {
    "url": "https://indico.example.org",
    "contact": "Ann",
    "email": "ann@example.org",
    "organization": "Lab",
}
UNKNOWN_UUID = "6b2f5a4e-0000-4000-8000-000000000000"


def assert_json_error(response: Any, status: int) -> dict[str, Any]:
    """Check the one error shape and return the body."""
    assert response.status_code == status, response.data
    assert response.mimetype == "application/json"
    body = json.loads(response.data)
    assert isinstance(body, dict)
    assert isinstance(body["error"], str)
    assert body["error"]
    text = response.data.decode()
    assert "Traceback" not in text
    assert "<html" not in text.lower()
    return body


@pytest.fixture
def uuid(client: FlaskClient) -> str:
    """An instance to PATCH."""
    response = client.post("/api/instance/", json=VALID)
    assert response.status_code == 201
    return response.json["uuid"]


def _targets(uuid: str) -> list[tuple[str, str]]:
    return [("POST", "/api/instance/"), ("POST", "/instance/"), ("PATCH", f"/api/instance/{uuid}")]


# (raw body, content type, the message must mention)
BAD_BODIES = [
    pytest.param("{bad json", "application/json", "Malformed JSON", id="malformed"),
    pytest.param('{"url": "x",}', "application/json", "Malformed JSON", id="trailing-comma"),
    pytest.param("", "application/json", "Malformed JSON", id="empty"),
    pytest.param(b"\xff\xfe{}", "application/json", "Malformed JSON", id="not-utf8"),
    pytest.param("[]", "application/json", "object", id="array"),
    pytest.param('"text"', "application/json", "object", id="string"),
    pytest.param("42", "application/json", "object", id="number"),
    pytest.param("null", "application/json", "object", id="null"),
    pytest.param(json.dumps(VALID), "text/plain", "application/json", id="text-plain"),
    pytest.param(
        "url=https://x.org", "application/x-www-form-urlencoded", "application/json", id="form"
    ),
    pytest.param(json.dumps(VALID), None, "application/json", id="no-content-type"),
]


@pytest.mark.parametrize(("body", "content_type", "mentions"), BAD_BODIES)
def test_bad_bodies_are_400(
    app: Flask,
    client: FlaskClient,
    uuid: str,
    body: str | bytes,
    content_type: str | None,
    mentions: str,
) -> None:
    for method, path in _targets(uuid):
        headers = {"Content-Type": content_type} if content_type else {}
        response = client.open(path, method=method, data=body, headers=headers)
        error = assert_json_error(response, 400)["error"]
        assert mentions in error, (method, path, error)
    assert count_rows(app, "instances") == 1


def _nested(depth: int, kind: str) -> str:
    """A JSON object whose "url" holds ``depth`` levels of arrays or objects."""
    inner = "[" * depth + "]" * depth if kind == "array" else '{"a": ' * depth + "1" + "}" * depth
    return json.dumps({**VALID, "url": "REPLACE"}).replace('"REPLACE"', inner)


@pytest.mark.parametrize("kind", ["array", "object"])
@pytest.mark.parametrize("depth", [40, 3000, 8000])
def test_deeply_nested_bodies_are_400(
    app: Flask, client: FlaskClient, uuid: str, kind: str, depth: int
) -> None:
    """Thousands of levels made the decoder recurse into a 500; the depth is bounded first."""
    before = client.get(f"/api/instance/{uuid}").json
    for method, path in _targets(uuid):
        body = _nested(depth, kind)
        response = client.open(path, method=method, data=body, content_type="application/json")
        error = assert_json_error(response, 400)["error"]
        assert "nested deeper than" in error, (method, path, error)
    assert count_rows(app, "instances") == 1
    assert client.get(f"/api/instance/{uuid}").json == before


def test_bodies_with_too_many_keys_are_400(client: FlaskClient, uuid: str) -> None:
    extra = {f"k{i}": i for i in range(2000)}
    for method, path in _targets(uuid):
        response = client.open(path, method=method, json={**VALID, **extra})
        assert "keys" in assert_json_error(response, 400)["error"]


@pytest.mark.parametrize("raw", ['{"url": NaN}', '{"url": Infinity}', '{"url": 1e400}'])
def test_non_standard_json_is_400(client: FlaskClient, uuid: str, raw: str) -> None:
    for method, path in _targets(uuid):
        response = client.open(path, method=method, data=raw, content_type="application/json")
        assert_json_error(response, 400)


@pytest.mark.parametrize("text", ["a\\u0000b", "a\\ud800b"])
def test_unstorable_text_is_refused_with_its_field(
    client: FlaskClient, uuid: str, text: str
) -> None:
    raw = json.dumps(VALID).replace('"Lab"', f'"{text}"')
    for method, path in _targets(uuid):
        response = client.open(path, method=method, data=raw, content_type="application/json")
        assert assert_json_error(response, 400).get("field") == "organization", (method, path)


def test_body_nested_within_the_bound_is_read(client: FlaskClient, uuid: str) -> None:
    """Depth is no reason to refuse by itself: the fields' own validation answers."""
    body = _nested(30, "array")
    response = client.patch(f"/api/instance/{uuid}", data=body, content_type="application/json")
    error = assert_json_error(response, 400)
    assert error.get("field") == "url"


def test_json_content_type_with_charset_is_accepted(client: FlaskClient) -> None:
    response = client.post(
        "/api/instance/", data=json.dumps(VALID), content_type="application/json; charset=utf-8"
    )
    assert response.status_code == 201


@pytest.mark.parametrize("size", [64 * 1024 + 1, 1024 * 1024])
def test_body_over_64_kib_is_413(app: Flask, client: FlaskClient, uuid: str, size: int) -> None:
    padding = "x" * size
    for method, path in _targets(uuid):
        body = json.dumps({**VALID, "padding": padding})
        response = client.open(path, method=method, data=body, content_type="application/json")
        assert "64 KiB" in assert_json_error(response, 413)["error"]
    assert count_rows(app, "instances") == 1


def test_body_just_under_64_kib_is_read(client: FlaskClient) -> None:
    body = json.dumps({**VALID, "padding": "x" * (64 * 1024 - len(json.dumps(VALID)) - 20)})
    assert len(body.encode()) <= 64 * 1024
    assert (
        client.post("/api/instance/", data=body, content_type="application/json").status_code == 201
    )


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/api/instance/", {"POST"}),
        ("PUT", "/api/instance/", {"POST"}),
        ("DELETE", "/instance/", {"POST"}),
        ("POST", "/api/instance/{uuid}", {"GET", "PATCH", "DELETE"}),
        ("PUT", "/api/instance/{uuid}", {"GET", "PATCH", "DELETE"}),
        ("PUT", "/instance/{uuid}", {"GET", "PATCH", "DELETE"}),
    ],
)
def test_wrong_method_is_json_405_with_allow(
    client: FlaskClient, uuid: str, method: str, path: str, allowed: set[str]
) -> None:
    response = client.open(path.format(uuid=uuid), method=method, json=VALID)
    assert_json_error(response, 405)
    assert allowed <= {m.strip() for m in response.headers["Allow"].split(",")}


@pytest.mark.parametrize(
    "path",
    [
        "/api/",
        "/api/nothing",
        "/api/instance/a/b",
        "/api/instances/",
        "/api/admin/secret",
        "/instance/a/b",
    ],
)
def test_unknown_api_route_is_json_404(client: FlaskClient, path: str) -> None:
    for method in ("GET", "POST", "PATCH", "DELETE"):
        assert_json_error(client.open(path, method=method, json={}), 404)


@pytest.mark.parametrize(
    "path", ["/no-such-page", "/instances", "/instances/1", "/apix", "/api-docs"]
)
def test_pages_outside_the_api_get_html_errors(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    assert "Traceback" not in response.text


@pytest.mark.parametrize("path", ["/api", "/instance"])
def test_api_roots_get_json_errors(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code in (404, 405)
    assert_json_error(response, response.status_code)


def test_every_api_rule_answers_json_to_every_method(
    app: Flask, client: FlaskClient, uuid: str
) -> None:
    """Datasette's test_error_shape: walk the URL map, try every method, demand the shape."""
    api_rules = [
        rule for rule in app.url_map.iter_rules() if rule.rule.startswith(("/api/", "/instance"))
    ]
    assert len(api_rules) >= 4
    for rule in api_rules:
        path = rule.rule.replace("<uuid>", UNKNOWN_UUID)
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            response = client.open(
                path, method=method, data="{bad", content_type="application/json"
            )
            if response.status_code < 400:
                continue
            assert_json_error(response, response.status_code)


def test_internal_error_is_json_without_trace(
    make_app: Callable[..., Flask], caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app()

    @app.route("/api/test-explode", methods=["GET", "POST"])
    def explode() -> str:
        raise RuntimeError("secret internal detail in /srv/cephalopod/app.py line 42")

    response = app.test_client().get("/api/test-explode")
    body = assert_json_error(response, 500)
    assert body == {"error": "Internal server error"}
    assert "secret internal detail" not in response.text
    # the trace is logged for the operator, not sent to the client
    assert "secret internal detail" in caplog.text


def test_internal_error_on_a_page_is_an_html_page_without_trace(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app()

    @app.route("/test-explode")
    def explode() -> str:
        raise RuntimeError("secret internal detail")

    response = app.test_client().get("/test-explode")
    assert response.status_code == 500
    assert response.mimetype == "text/html"
    assert "secret internal detail" not in response.text
    assert "Traceback" not in response.text


def test_database_failure_is_json_500(make_app: Callable[..., Flask]) -> None:
    """A real failure below the view (the table is gone) still gives the shape."""
    app = make_app()

    @app.route("/api/test-bad-sql")
    def bad_sql() -> str:
        from sqlalchemy import text

        from cephalopod.db import db

        db.session.execute(text("SELECT * FROM no_such_table"))
        return "unreachable"

    response = app.test_client().get("/api/test-bad-sql")
    assert assert_json_error(response, 500) == {"error": "Internal server error"}
    assert "no_such_table" not in response.text
