"""Log-out ends sessions for good; brute force is limited per address and per account; a
password hashed with weaker parameters is rehashed when its owner logs in through the form.

SQLite and PostgreSQL (the app fixture).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from argon2 import PasswordHasher, profiles
from flask import Flask
from flask.testing import FlaskClient

from cephalopod.auth import operations as ops
from cephalopod.db import db
from tests.auth.test_login import PASSWORD, csrf_token, is_logged_in, login

pytestmark = pytest.mark.usefixtures("fast_hashing")


@pytest.fixture
def user(app: Flask) -> str:
    """A user named ann."""
    with app.app_context():
        ops.create_user("ann", PASSWORD)
    return "ann"


def session_cookie(client: FlaskClient) -> str:
    """The session cookie's value, as a thief would copy it from the browser."""
    cookie = client.get_cookie("session")
    assert cookie is not None
    return cookie.value


def with_cookie(app: Flask, value: str) -> FlaskClient:
    """A fresh client (another browser) that sends this session cookie."""
    client = app.test_client()
    client.set_cookie("session", value)
    return client


def logout(client: FlaskClient) -> None:
    response = client.post("/logout", data={"csrf_token": csrf_token(client, "/")})
    assert response.status_code == 302


def test_a_session_cookie_replayed_after_logout_is_refused(
    app: Flask, client: FlaskClient, user: str
) -> None:
    assert login(client).status_code == 302
    stolen = session_cookie(client)
    assert is_logged_in(with_cookie(app, stolen))  # the copy works while the session lives
    assert with_cookie(app, stolen).get("/api/admin/instances").status_code == 200
    logout(client)
    assert not is_logged_in(client)
    replayed = with_cookie(app, stolen)
    page = replayed.get("/")
    assert page.status_code == 302
    assert page.headers["Location"].startswith("/login")
    api = with_cookie(app, stolen).get("/api/admin/instances")
    assert api.status_code == 401
    assert api.json == {"error": "Authentication required"}


def test_logout_ends_the_other_sessions_of_the_user_too(
    app: Flask, client: FlaskClient, user: str
) -> None:
    other = app.test_client()  # the same user in another browser
    assert login(client).status_code == 302
    assert login(other).status_code == 302
    logout(client)
    assert not is_logged_in(other)
    assert login(client).status_code == 302  # a new log-in opens a new generation
    assert is_logged_in(client)


def test_a_session_without_generation_is_refused(
    app: Flask, client: FlaskClient, user: str
) -> None:
    """What sessions stored before generations: the bare user id."""
    with app.app_context():
        user_id = str(ops.get_user("ann").id)  # type: ignore[union-attr]
    with client.session_transaction() as session:
        session["_user_id"] = user_id
        session["_fresh"] = True
    assert not is_logged_in(client)


@pytest.mark.parametrize("stored", ["", "x.0", "1.", ".0", "1.x", "1.0.0", "99999.0"])
def test_malformed_or_unknown_session_ids_are_refused(app: Flask, stored: str) -> None:
    with app.app_context():
        assert ops.user_for_session(stored) is None


def test_the_logout_of_another_user_leaves_a_session_alone(
    app: Flask, client: FlaskClient, user: str
) -> None:
    with app.app_context():
        ops.create_user("bob", PASSWORD)
    bob = app.test_client()
    assert login(client).status_code == 302
    assert login(bob, "bob").status_code == 302
    logout(bob)
    assert is_logged_in(client)


# --- brute force --------------------------------------------------------------------------


def login_from(app: Flask, address: str, username: str = "ann", password: str = PASSWORD) -> int:
    """One log-in attempt from a browser at ``address``; its status."""
    client = app.test_client()
    token = csrf_token(client, environ_base={"REMOTE_ADDR": address})
    response = client.post(
        "/login",
        data={"csrf_token": token, "username": username, "password": password},
        environ_base={"REMOTE_ADDR": address},
    )
    return response.status_code


def test_failed_attempts_are_limited_per_account_across_addresses(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(LOGIN_ACCOUNT_RATE_LIMIT="3 per hour", LOGIN_RATE_LIMIT="100 per minute")
    with app.app_context():
        ops.create_user("ann", PASSWORD)
        ops.create_user("bob", PASSWORD)
    # a slow attack from many addresses: each stays far below the per-address limit
    assert [login_from(app, f"198.51.100.{n}", password="guess") for n in range(3)] == [401] * 3
    assert login_from(app, "198.51.100.200") == 429  # even the right password waits
    assert login_from(app, "198.51.100.201", username="ANN") == 429  # however it is spelt
    assert login_from(app, "198.51.100.202", username="bob") == 302  # other accounts are open


def test_successful_logins_do_not_count_against_the_account(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(LOGIN_ACCOUNT_RATE_LIMIT="2 per hour", LOGIN_RATE_LIMIT="100 per minute")
    with app.app_context():
        ops.create_user("ann", PASSWORD)
    assert [login_from(app, f"203.0.113.{n}") for n in range(5)] == [302] * 5
    assert login_from(app, "203.0.113.50", password="guess") == 401
    assert login_from(app, "203.0.113.51") == 302


def test_attempts_are_limited_per_address_across_accounts(
    make_app: Callable[..., Flask],
) -> None:
    app = make_app(LOGIN_RATE_LIMIT="3 per minute", LOGIN_ACCOUNT_RATE_LIMIT="100 per hour")
    with app.app_context():
        ops.create_user("ann", PASSWORD)
    tried = [login_from(app, "192.0.2.9", username=f"user{n}", password="x") for n in range(3)]
    assert tried == [401] * 3
    assert login_from(app, "192.0.2.9") == 429  # the address is spent, whatever the account
    assert login_from(app, "192.0.2.10") == 302


# --- rehash -------------------------------------------------------------------------------


def test_a_weak_hash_is_rehashed_when_logging_in_through_the_form(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parameters changed (here: from argon2's cheapest to its recommended ones)."""
    weak = PasswordHasher.from_parameters(profiles.CHEAPEST)
    with app.app_context():
        user = ops.create_user("ann", "placeholder")
        user.password_hash = weak.hash(PASSWORD)
        db.session.commit()
    monkeypatch.setattr(
        ops, "_hasher", PasswordHasher.from_parameters(profiles.RFC_9106_LOW_MEMORY)
    )
    assert login(client).status_code == 302
    with app.app_context():
        stored = ops.get_user("ann").password_hash  # type: ignore[union-attr]
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert PasswordHasher().verify(stored, PASSWORD)
    logout(client)
    assert login(client).status_code == 302  # the new hash verifies
    with app.app_context():
        assert ops.get_user("ann").password_hash == stored  # type: ignore[union-attr]
