"""Login and logout pages: CSRF, cookies, rate limit, no open redirect (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from cephalopod.auth import operations as ops
from cephalopod.db import db

PASSWORD = "correct horse battery staple"

pytestmark = pytest.mark.usefixtures("fast_hashing")


@pytest.fixture
def user(app: Flask) -> str:
    """A user named ann."""
    with app.app_context():
        ops.create_user("ann", PASSWORD)
    return "ann"


def csrf_token(client: FlaskClient, path: str = "/login", **kwargs: str) -> str:
    """The CSRF token of the form on ``path``, as a browser would read it."""
    page = client.get(path, **kwargs)
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text)
    assert match, page.text
    return match.group(1)


def login(
    client: FlaskClient, username: str = "ann", password: str = PASSWORD, next_: str | None = None
) -> TestResponse:
    """Fill in and submit the login form."""
    path = "/login" if next_ is None else f"/login?next={next_}"
    token = csrf_token(client, path)
    data = {"csrf_token": token, "username": username, "password": password}
    return client.post(path, data=data)


def is_logged_in(client: FlaskClient) -> bool:
    """Tell whether the client's session opens the start page."""
    return client.get("/").status_code == 200


def test_login_page_renders(client: FlaskClient) -> None:
    response = client.get("/login")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    for piece in ('name="username"', 'type="password"', 'name="csrf_token"', "Cephalopod"):
        assert piece in response.text
    assert "http://" not in response.text  # nothing loaded from elsewhere
    assert "https://" not in response.text


def test_pages_redirect_to_login(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=/")


def test_login_with_the_right_password(client: FlaskClient, user: str) -> None:
    response = login(client)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    home = client.get("/")
    assert home.status_code == 200
    assert "ann" in home.text


def test_session_cookie_is_httponly_and_samesite_lax(client: FlaskClient, user: str) -> None:
    response = login(client)
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("session="))
    attributes = {part.strip().split("=")[0].lower(): part for part in cookie.split(";")}
    assert "httponly" in attributes
    assert attributes["samesite"].strip().lower() == "samesite=lax"
    assert "secure" not in attributes  # plain HTTP: a Secure cookie would never come back


def test_session_cookie_is_secure_under_https(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("only its existence is checked here")
    key.write_text("only its existence is checked here")
    app = make_app(SSL_CERT=str(cert), SSL_KEY=str(key))
    with app.app_context():
        ops.create_user("ann", PASSWORD)
    client = app.test_client()
    token = csrf_token(client, base_url="https://localhost")
    response = client.post(
        "/login",
        data={"csrf_token": token, "username": "ann", "password": PASSWORD},
        base_url="https://localhost",
        headers={"Referer": "https://localhost/login"},  # checked by CSRF under HTTPS
    )
    assert response.status_code == 302
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith("session="))
    assert "Secure" in cookie
    assert "HttpOnly" in cookie


@pytest.mark.parametrize(
    ("username", "password"),
    [("ann", "wrong"), ("ann", PASSWORD.upper()), ("nobody", PASSWORD), ("ANN", PASSWORD)],
)
def test_wrong_credentials_are_401_without_session(
    client: FlaskClient, user: str, username: str, password: str
) -> None:
    response = login(client, username, password)
    assert response.status_code == 401
    assert "Wrong user name or password" in response.text
    assert not any(c.startswith("remember_token") for c in response.headers.getlist("Set-Cookie"))
    assert not is_logged_in(client)


def test_disabled_user_cannot_log_in(app: Flask, client: FlaskClient, user: str) -> None:
    with app.app_context():
        ops.get_user("ann").is_enabled = False  # type: ignore[union-attr]
        db.session.commit()
    assert login(client).status_code == 401
    assert not is_logged_in(client)


@pytest.mark.parametrize(
    "token",
    [None, "", "forged-token", "ImFiYyI.Zz.abc"],
    ids=["absent", "empty", "forged", "bad-sig"],
)
def test_login_requires_csrf_token(client: FlaskClient, user: str, token: str | None) -> None:
    client.get("/login")  # a session exists, as in a browser
    data = {"username": "ann", "password": PASSWORD}
    if token is not None:
        data["csrf_token"] = token
    response = client.post("/login", data=data)
    assert response.status_code == 400
    assert not is_logged_in(client)


def test_csrf_token_of_another_session_is_refused(
    app: Flask, client: FlaskClient, user: str
) -> None:
    stolen = csrf_token(app.test_client())  # the attacker's own session's token
    client.get("/login")
    response = client.post(
        "/login", data={"csrf_token": stolen, "username": "ann", "password": PASSWORD}
    )
    assert response.status_code == 400
    assert not is_logged_in(client)


def test_login_attempts_are_rate_limited(make_app: Callable[..., Flask]) -> None:
    app = make_app(LOGIN_RATE_LIMIT="3 per minute")
    with app.app_context():
        ops.create_user("ann", PASSWORD)
    client = app.test_client()
    assert [login(client, password="wrong").status_code for _ in range(3)] == [401] * 3
    blocked = login(client)  # even the right password waits
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) > 0
    assert "Traceback" not in blocked.text
    assert not is_logged_in(client)
    assert client.get("/login").status_code == 200  # the form itself stays reachable
    other = app.test_client()
    token = csrf_token(other)
    response = other.post(
        "/login",
        data={"csrf_token": token, "username": "ann", "password": PASSWORD},
        environ_base={"REMOTE_ADDR": "192.0.2.77"},
    )
    assert response.status_code == 302  # another address has its own budget


def test_logout_requires_post_with_csrf(client: FlaskClient, user: str) -> None:
    login(client)
    assert client.get("/logout").status_code == 405
    assert is_logged_in(client)
    assert client.post("/logout").status_code == 400  # no CSRF token: a forged form
    assert is_logged_in(client)
    token = csrf_token(client, "/")
    response = client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 302
    assert response.headers["Location"] == "/login"
    assert not is_logged_in(client)


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example",
        "//evil.example/path",
        "https://evil.example",
        "http:evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "/%09/evil.example",
        "javascript:alert(1)",
        "evil.example",
        "///evil.example",
    ],
)
def test_login_refuses_open_redirects(client: FlaskClient, user: str, target: str) -> None:
    response = login(client, next_=target)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_login_follows_a_local_next(client: FlaskClient, user: str) -> None:
    response = login(client, next_="/servers?sort=country")
    assert response.status_code == 302
    assert response.headers["Location"] == "/servers?sort=country"


def test_logged_in_user_visiting_login_is_sent_on(client: FlaskClient, user: str) -> None:
    login(client)
    for target, expected in (("/servers", "/servers"), ("//evil.example", "/")):
        response = client.get(f"/login?next={target}")
        assert response.status_code == 302
        assert response.headers["Location"] == expected
