"""Tokens expire when told to and can be revoked, by the operations and the real CLI."""

from __future__ import annotations

import os
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from cephalopod.app import create_app
from cephalopod.auth import operations as ops
from cephalopod.auth.models import ApiToken
from cephalopod.db import db, utcnow
from tests.test_cli import cli_env, empty_db, run_cli  # noqa: F401 - fixtures
from tests.test_server import CEPHALOPOD

pytestmark = pytest.mark.usefixtures("fast_hashing")

ROUTE = "/api/admin/geolocation"  # a cheap admin route


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def users(app: Flask) -> Flask:
    with app.app_context():
        ops.create_user("ann", "pw")
        ops.create_user("bob", "pw")
    return app


def status(app: Flask, token: str) -> int:
    return app.test_client().get(ROUTE, headers=bearer(token)).status_code


def test_a_token_without_expiry_stays_valid(users: Flask) -> None:
    with users.app_context():
        token = ops.create_token("ann")
        assert db.session.scalars(select(ApiToken)).one().expires_at is None
    assert status(users, token) == 200


def test_an_expired_token_is_refused(users: Flask) -> None:
    with users.app_context():
        token = ops.create_token("ann", expires_days=30)
        stored = db.session.scalars(select(ApiToken)).one()
        assert abs(stored.expires_at - (utcnow() + timedelta(days=30))) < timedelta(minutes=1)
    assert status(users, token) == 200
    with users.app_context():
        stored = db.session.scalars(select(ApiToken)).one()
        stored.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    response = users.test_client().get(ROUTE, headers=bearer(token))
    assert response.status_code == 401
    assert response.json == {"error": "Authentication required"}


@pytest.mark.parametrize("days", [0, -1, 3651])
def test_an_expiry_out_of_range_is_refused(users: Flask, days: int) -> None:
    with users.app_context(), pytest.raises(ops.UserError, match="1 to 3650 days"):
        ops.create_token("ann", expires_days=days)


def test_a_revoked_token_is_refused_and_the_others_stay(users: Flask) -> None:
    with users.app_context():
        first, second, bobs = (
            ops.create_token("ann"),
            ops.create_token("ann"),
            ops.create_token("bob"),
        )
        assert ops.revoke_token(first) is True
        assert ops.revoke_token(first) is False  # already gone
    assert [status(users, t) for t in (first, second, bobs)] == [401, 200, 200]
    with users.app_context():
        assert ops.revoke_tokens("ann") == 1
        with pytest.raises(ops.UserError, match="No user named 'carol'"):
            ops.revoke_tokens("carol")
    assert [status(users, t) for t in (second, bobs)] == [401, 200]


# --- the command line -------------------------------------------------------------------------


def cephalopod(env: dict[str, str], folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real console script."""
    return subprocess.run(
        [str(CEPHALOPOD), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=folder,
    )


def test_create_with_expiry_and_revoke_through_the_cli(
    cli_env: dict[str, str],  # noqa: F811 - the fixture
    tmp_path: Path,
) -> None:
    assert run_cli("db", "upgrade").exit_code == 0
    assert run_cli("create_usr", "ann", "pw").exit_code == 0
    made = cephalopod(cli_env, tmp_path, "create_token", "ann", "--expires-days", "7")
    assert made.returncode == 0, made.stderr
    assert "valid for 7 days" in made.stdout
    token = made.stdout.splitlines()[-1]
    assert token.startswith(ops.TOKEN_PREFIX)
    kept = run_cli("create_token", "ann").output.splitlines()[-1]
    app = create_app()  # the hub, on the CLI's database
    try:
        assert (status(app, token), status(app, kept)) == (200, 200)
        with app.app_context():
            stored = db.session.scalar(select(ApiToken).where(ApiToken.expires_at.is_not(None)))
            assert stored is not None
            assert stored.expires_at - utcnow() > timedelta(days=6, hours=23)

        revoked = cephalopod(cli_env, tmp_path, "revoke_token", token)
        assert (revoked.returncode, revoked.stdout) == (0, "Token revoked.\n")
        assert (status(app, token), status(app, kept)) == (401, 200)
        again = run_cli("revoke_token", token)
        assert again.exit_code == 1
        assert "No such token" in again.output

        every = run_cli("revoke_token", "--user", "ann")
        assert (every.exit_code, every.output) == (0, "Revoked 1 token of 'ann'.\n")
        assert status(app, kept) == 401
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["create_token", "ann", "--expires-days", "0"], "0 is not in the range 1<=x<=3650"),
        (["revoke_token"], "Give either a TOKEN or --user USER."),
        (["revoke_token", "ceph_x", "--user", "ann"], "Give either a TOKEN or --user USER."),
        (["revoke_token", "--user", "nobody"], "No user named 'nobody'"),
    ],
)
def test_cli_refusals(
    cli_env: dict[str, str],  # noqa: F811 - the fixture
    args: list[str],
    message: str,
) -> None:
    assert run_cli("db", "upgrade").exit_code == 0
    assert run_cli("create_usr", "ann", "pw").exit_code == 0
    result = run_cli(*args)
    assert result.exit_code != 0
    assert message in result.output
