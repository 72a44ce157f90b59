"""API tokens: only their hash is stored; ``Authorization: Bearer`` authenticates JSON routes."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from flask import Flask, jsonify
from flask_login import current_user, login_required
from sqlalchemy import select

from cephalopod.auth import operations as ops
from cephalopod.auth.models import ApiToken
from cephalopod.db import db
from tests.test_errors import assert_json_error

pytestmark = pytest.mark.usefixtures("fast_hashing")


@pytest.fixture
def api_app(make_app: Callable[..., Flask]) -> Flask:
    """The app plus a protected JSON route, standing in for the admin API of later issues."""
    app = make_app()

    @app.route("/api/test-whoami")
    @login_required
    def whoami() -> object:
        return jsonify(user=current_user.username)

    with app.app_context():
        ops.create_user("ann", "password")
        ops.create_user("bob", "password")
    return app


@pytest.fixture
def token(api_app: Flask) -> str:
    """A token of ann."""
    with api_app.app_context():
        return ops.create_token("ann")


def bearer(value: str) -> dict[str, str]:
    """The Authorization header of a token."""
    return {"Authorization": f"Bearer {value}"}


def test_only_the_hash_is_stored(api_app: Flask, token: str) -> None:
    assert token.startswith(ops.TOKEN_PREFIX)
    assert len(token) > 40
    with api_app.app_context():
        stored = db.session.scalars(select(ApiToken)).one()
        assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest()
        assert stored.user.username == "ann"
        assert stored.last_used_at is None


def test_tokens_are_unique(api_app: Flask) -> None:
    with api_app.app_context():
        tokens = {ops.create_token("ann") for _ in range(5)}
    assert len(tokens) == 5


def test_bearer_token_authenticates(api_app: Flask, token: str) -> None:
    client = api_app.test_client()
    response = client.get("/api/test-whoami", headers=bearer(token))
    assert response.status_code == 200
    assert response.json == {"user": "ann"}
    assert "Set-Cookie" not in response.headers  # a token request opens no session
    with api_app.app_context():
        assert db.session.scalars(select(ApiToken)).one().last_used_at is not None
    # the next request without the header is anonymous again
    assert client.get("/api/test-whoami").status_code == 401


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer",
        "Bearer ",
        "Bearer ceph_wrong",
        "Basic YW5uOnBhc3N3b3Jk",
        "Token {token}",
        "Bearer {token}x",
        "Bearer {token_upper}",
    ],
)
def test_missing_or_wrong_token_is_json_401(api_app: Flask, token: str, header: str | None) -> None:
    headers = {}
    if header is not None:
        headers["Authorization"] = header.format(token=token, token_upper=token.upper())
    response = api_app.test_client().get("/api/test-whoami", headers=headers)
    assert assert_json_error(response, 401)["error"] == "Authentication required"


def test_scheme_is_case_insensitive(api_app: Flask, token: str) -> None:
    response = api_app.test_client().get(
        "/api/test-whoami", headers={"Authorization": f"bearer {token}"}
    )
    assert response.status_code == 200


def test_token_of_a_disabled_user_is_refused(api_app: Flask, token: str) -> None:
    with api_app.app_context():
        ops.get_user("ann").is_enabled = False  # type: ignore[union-attr]
        db.session.commit()
    response = api_app.test_client().get("/api/test-whoami", headers=bearer(token))
    assert_json_error(response, 401)


def test_session_login_works_on_the_same_route(api_app: Flask) -> None:
    client = api_app.test_client()
    with client.session_transaction() as session:
        with api_app.app_context():
            session["_user_id"] = ops.get_user("bob").get_id()  # type: ignore[union-attr]
        session["_fresh"] = True
    assert client.get("/api/test-whoami").json == {"user": "bob"}


def test_token_for_unknown_user_is_refused(api_app: Flask) -> None:
    with api_app.app_context(), pytest.raises(ops.UserError, match="No user named 'carol'"):
        ops.create_token("carol")
