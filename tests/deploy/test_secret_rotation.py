"""Rotating SECRET_KEY as the production guide says: sessions end, API tokens carry on.

Two apps on one database stand for the processes before and after the restart with the
new key (SQLite and PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask

from cephalopod.auth import operations as ops
from tests.auth.test_login import PASSWORD, csrf_token, is_logged_in, login
from tests.auth.test_sessions import session_cookie, with_cookie

pytestmark = [pytest.mark.deploy, pytest.mark.usefixtures("fast_hashing")]


def test_a_new_secret_key_ends_sessions_and_keeps_api_tokens(
    make_app: Callable[..., Flask],
) -> None:
    before = make_app(SECRET_KEY="the-old-key-" + "o" * 40)
    with before.app_context():
        ops.create_user("ann", PASSWORD)
        token = ops.create_token("ann")
    client = before.test_client()
    assert login(client).status_code == 302
    cookie = session_cookie(client)
    form_token = csrf_token(client, "/")  # a form opened before the restart

    after = make_app(SECRET_KEY="the-new-key-" + "n" * 40)
    browser = with_cookie(after, cookie)
    assert not is_logged_in(browser)  # logged out: the old signature is refused
    assert browser.get("/api/admin/instances").status_code == 401
    # the form opened before is refused once; a reload gives a token that works
    assert browser.post("/login", data={"csrf_token": form_token, "username": "ann",
                                        "password": PASSWORD}).status_code == 400  # fmt: skip
    assert login(browser).status_code == 302
    assert is_logged_in(browser)
    # API tokens are stored hashed in the database, not signed with the key
    bearer = {"Authorization": f"Bearer {token}"}
    assert after.test_client().get("/api/admin/instances", headers=bearer).status_code == 200
    # and the protocol has no session at all
    body = {"url": "https://hub-test.example.org", "contact": "C", "email": "c@example.org",
            "organization": "O"}  # fmt: skip
    assert after.test_client().post("/api/instance/", json=body).status_code == 201
