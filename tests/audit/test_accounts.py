"""Log-ins, failed log-ins, and tokens made and revoked are recorded (never a password)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from cephalopod.app import create_app
from cephalopod.audit.models import AuditEntry
from cephalopod.auth import operations as auth_ops
from cephalopod.auth.models import ApiToken
from cephalopod.db import db
from tests.audit.conftest import entries, form_token
from tests.test_cli import cli_env, empty_db, run_cli  # noqa: F401 - fixtures

pytestmark = pytest.mark.usefixtures("fast_hashing")

SECRET_PASSWORD = "correct horse battery staple"


def log_in(client: FlaskClient, username: str, password: str, **headers: str) -> int:
    token = form_token(client.get("/login").text)
    data = {"username": username, "password": password, "csrf_token": token}
    return client.post("/login", data=data, headers=headers).status_code


def test_log_ins_and_failed_log_ins(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        auth_ops.create_user("ann", SECRET_PASSWORD)
    assert log_in(client, "ann", "wrong password") == 401
    assert log_in(client, "nobody", SECRET_PASSWORD) == 401
    assert log_in(client, "ann", SECRET_PASSWORD) == 302
    failed_ann, failed_nobody, login = entries(app)
    assert (failed_ann.action, failed_ann.actor_kind, failed_ann.actor) == (
        "login_failed",
        "anonymous",
        "ann",
    )
    assert (failed_nobody.actor, failed_nobody.address) == ("nobody", "127.0.0.1")
    assert (login.action, login.actor_kind, login.actor) == ("login", "user", "ann")
    assert login.address == "127.0.0.1"
    with app.app_context():
        stored = db.session.execute(sa.select(AuditEntry.__table__)).all()
        last_login = auth_ops.get_user("ann").last_login_at  # type: ignore[union-attr]
    assert login.created_at == last_login
    assert "wrong password" not in repr(stored)
    assert SECRET_PASSWORD not in repr(stored)


def test_a_log_in_behind_a_proxy_records_the_forwarded_address(make_app) -> None:
    app = make_app(USE_PROXY=True)
    with app.app_context():
        auth_ops.create_user("ann", SECRET_PASSWORD)
    client = app.test_client()
    assert log_in(client, "ann", "nope", **{"X-Forwarded-For": "198.51.100.4"}) == 401
    assert entries(app)[-1].address == "198.51.100.4"


def test_a_disabled_user_fails_to_log_in(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        user = auth_ops.create_user("carol", SECRET_PASSWORD)
        user.is_enabled = False
        db.session.commit()
    assert log_in(client, "carol", SECRET_PASSWORD) == 401
    assert [(e.action, e.actor) for e in entries(app)] == [("login_failed", "carol")]


def test_tokens_made_and_revoked_by_the_operations(app: Flask) -> None:
    with app.app_context():
        auth_ops.create_user("ann", "pw")
        first = auth_ops.create_token("ann", expires_days=7)
        auth_ops.create_token("ann")
        ids = list(db.session.scalars(sa.select(ApiToken.id).order_by(ApiToken.id)))
        expires = db.session.scalar(sa.select(ApiToken.expires_at).where(ApiToken.id == ids[0]))
        assert auth_ops.revoke_token(first) is True
        assert auth_ops.revoke_token(first) is False  # nothing revoked: nothing recorded
        assert auth_ops.revoke_tokens("ann") == 1
    made_1, made_2, revoked_1, revoked_2 = entries(app)
    assert [e.action for e in (made_1, made_2, revoked_1, revoked_2)] == [
        "token_create",
        "token_create",
        "token_revoke",
        "token_revoke",
    ]
    assert [e.token_id for e in (made_1, made_2, revoked_1, revoked_2)] == [*ids, *ids]
    assert expires is not None
    assert made_1.changes == {
        "user": {"old": None, "new": "ann"},
        "expires_at": {"old": None, "new": expires.isoformat()},
    }
    assert revoked_2.changes == {
        "user": {"old": "ann", "new": None},
        "expires_at": {"old": None, "new": None},
    }
    assert first not in repr([e.changes for e in entries(app)])  # never the token itself


def test_tokens_made_and_revoked_on_the_command_line(
    cli_env: dict[str, str],  # noqa: F811 - the fixture
    tmp_path: Path,
) -> None:
    assert run_cli("db", "upgrade").exit_code == 0
    assert run_cli("create_usr", "ann", "pw").exit_code == 0
    token = run_cli("create_token", "ann").output.splitlines()[-1]
    assert run_cli("revoke_token", token).exit_code == 0
    run_cli("create_token", "ann")
    assert run_cli("revoke_token", "--user", "ann").exit_code == 0
    app = create_app()  # the hub, on the CLI's database
    try:
        found = entries(app)
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    actions = [e.action for e in found]
    assert actions == ["token_create", "token_revoke", "token_create", "token_revoke"]
    assert {e.actor_kind for e in found} == {"cli"}
    # each revocation names the token made before it (SQLite may give a new token the id of
    # one revoked before it: the log's order tells them apart)
    assert found[1].token_id == found[0].token_id
    assert found[3].token_id == found[2].token_id


def test_a_request_with_a_token_names_it(app: Flask, admin: dict[str, Any], make_instance) -> None:
    instance = make_instance()
    client = app.test_client()
    url = f"/api/admin/instances/{instance.uuid}"
    reply = client.patch(url, json={"contact": "New"}, headers=admin["headers"])
    assert reply.status_code == 200
    entry = entries(app, action="update")[0]
    assert (entry.actor_kind, entry.actor, entry.token_id) == ("token", "admin", admin["token_id"])
