"""The ``cephalopod`` command: database, users and tokens, on SQLite and PostgreSQL.

Most commands run in-process through click's runner; the entry points themselves (the console
script, ``python -m cephalopod``, ``python manage.py``) run once each in a subprocess.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from click.testing import CliRunner, Result

from cephalopod.app import create_app
from cephalopod.auth import operations as ops
from cephalopod.cli import AppContext, cli
from cephalopod.db import db
from cephalopod.schema import MIGRATIONS_DIR
from tests.databases import empty_database

REPO = Path(__file__).resolve().parent.parent
CEPHALOPOD = Path(sys.executable).with_name("cephalopod")
HEAD = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
TABLES = {
    "instances",
    "instance_fields",
    "snapshots",
    "users",
    "api_tokens",
    "meta",
    "crawl_jobs",
    "crawl_job_chunks",
    "audit_entries",
}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new, empty database of the test (not the session's shared one)."""
    with empty_database(request.param, tmp_path) as url:
        yield url


@pytest.fixture
def cli_env(
    empty_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast_hashing: None
) -> dict[str, str]:
    """A settings file pointing to the empty database, in the environment of the commands."""
    settings = tmp_path / "settings.cfg"
    settings.write_text(f"SECRET_KEY = 'cli-test'\nSQLALCHEMY_DATABASE_URI = {empty_db!r}\n")
    env = {
        "CEPHALOPOD_SETTINGS": str(settings),
        "CEPHALOPOD_INSTANCE_PATH": str(tmp_path / "instance"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # in-process commands hash with argon2's cheapest parameters: fast_hashing
    return env


def run_cli(*args: str, input: str | None = None) -> Result:
    """Run a command in-process; close the app's connections afterwards."""
    holder = AppContext()
    result = CliRunner().invoke(cli, list(args), input=input, obj=holder)
    for app in holder.built:  # the apps the command built, if any
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    return result


def tables(url: str) -> set[str]:
    """The tables in the database."""
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def stamped(url: str) -> list[str]:
    """The revisions recorded in alembic_version."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())
    finally:
        engine.dispose()


def scalar(url: str, query: str) -> object:
    """One value from the database."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(query)).scalar()
    finally:
        engine.dispose()


# --- db -------------------------------------------------------------------------------------


def test_db_create_on_empty_database_stamps_the_head(
    cli_env: dict[str, str], empty_db: str
) -> None:
    assert tables(empty_db) == set()
    result = run_cli("db", "create")
    assert result.exit_code == 0, result.output
    assert "Tables created" in result.output
    assert tables(empty_db) == TABLES | {"alembic_version"}
    assert stamped(empty_db) == [HEAD]
    # a second create changes nothing and keeps the stamp
    assert run_cli("db", "create").exit_code == 0
    assert stamped(empty_db) == [HEAD]
    # and an upgrade afterwards has nothing to do
    assert run_cli("db", "upgrade").exit_code == 0
    assert stamped(empty_db) == [HEAD]


def test_db_upgrade_on_empty_database(cli_env: dict[str, str], empty_db: str) -> None:
    result = run_cli("db", "upgrade")
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output
    assert tables(empty_db) == TABLES | {"alembic_version"}
    assert stamped(empty_db) == [HEAD]


def test_db_drop_asks_and_no_keeps_everything(cli_env: dict[str, str], empty_db: str) -> None:
    assert run_cli("db", "create").exit_code == 0
    assert run_cli("create_usr", "ann", "pw").exit_code == 0
    for command in (["db", "drop"], ["db", "recreate"]):
        result = run_cli(*command, input="n\n")
        assert result.exit_code != 0
        assert "[y/N]" in result.output
        assert "Aborted" in result.output
        assert tables(empty_db) == TABLES | {"alembic_version"}
        assert scalar(empty_db, "SELECT count(*) FROM users") == 1
    # an empty answer is the default: no
    assert run_cli("db", "drop", input="\n").exit_code != 0
    assert scalar(empty_db, "SELECT count(*) FROM users") == 1


def test_db_drop_and_recreate(cli_env: dict[str, str], empty_db: str) -> None:
    assert run_cli("db", "create").exit_code == 0
    assert run_cli("create_usr", "ann", "pw").exit_code == 0

    result = run_cli("db", "drop", input="y\n")
    assert result.exit_code == 0, result.output
    assert tables(empty_db) == set()

    assert run_cli("db", "create").exit_code == 0
    assert run_cli("create_usr", "ann", "pw").exit_code == 0
    result = run_cli("db", "recreate", "--yes")
    assert result.exit_code == 0, result.output
    assert "Tables recreated" in result.output
    assert tables(empty_db) == TABLES | {"alembic_version"}
    assert stamped(empty_db) == [HEAD]
    assert scalar(empty_db, "SELECT count(*) FROM users") == 0

    result = run_cli("db", "drop", "--yes")
    assert result.exit_code == 0, result.output
    assert tables(empty_db) == set()


# --- users and tokens -----------------------------------------------------------------------


def _password_ok(username: str, password: str) -> bool:
    app = create_app()
    try:
        with app.app_context():
            return ops.authenticate(username, password) is not None
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def test_create_usr(cli_env: dict[str, str]) -> None:
    assert run_cli("db", "upgrade").exit_code == 0
    result = run_cli("create_usr", "ann", "s3cret pass")
    assert result.exit_code == 0, result.output
    assert "'ann' created" in result.output
    assert "s3cret" not in result.output
    assert _password_ok("ann", "s3cret pass")
    assert not _password_ok("ann", "wrong")


def test_create_user_prompts_for_the_password(cli_env: dict[str, str]) -> None:
    assert run_cli("db", "upgrade").exit_code == 0
    # a mismatched confirmation asks again
    result = run_cli("create-user", "bob", input="first\nsecond\ntyped twice\ntyped twice\n")
    assert result.exit_code == 0, result.output
    assert "Password" in result.output
    assert "typed twice" not in result.output  # hidden input
    assert _password_ok("bob", "typed twice")
    assert run_cli("create-user", "carol", "given").exit_code == 0
    assert _password_ok("carol", "given")


@pytest.mark.parametrize("command", ["create_usr", "create-user"])
def test_duplicate_user_is_a_clear_error(cli_env: dict[str, str], command: str) -> None:
    assert run_cli("db", "upgrade").exit_code == 0
    assert run_cli("create_usr", "ann", "first").exit_code == 0
    result = run_cli(command, "ann", "second")
    assert result.exit_code == 1
    assert "User 'ann' already exists" in result.output
    assert "Traceback" not in result.output
    assert _password_ok("ann", "first")


def test_create_usr_refuses_an_empty_password(cli_env: dict[str, str]) -> None:
    assert run_cli("db", "upgrade").exit_code == 0
    result = run_cli("create_usr", "ann", "")
    assert result.exit_code == 1
    assert "password must not be empty" in result.output


def test_create_token_for_unknown_user(cli_env: dict[str, str]) -> None:
    assert run_cli("db", "upgrade").exit_code == 0
    result = run_cli("create_token", "nobody")
    assert result.exit_code == 1
    assert "No user named 'nobody'" in result.output


def test_create_token_prints_it_alone_on_the_last_line(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    """The real console script, as a provisioning script would call it."""
    assert run_cli("db", "upgrade").exit_code == 0
    assert run_cli("create_usr", "ann", "pw").exit_code == 0
    result = subprocess.run(
        [str(CEPHALOPOD), "create_token", "ann"],
        env={**os.environ, **cli_env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=tmp_path,
    )
    token = result.stdout.splitlines()[-1]
    assert token == token.strip()
    assert token.startswith(ops.TOKEN_PREFIX)
    assert " " not in token
    assert result.stdout.endswith(token + "\n")

    app = create_app()
    try:

        @app.route("/api/test-token")
        def check() -> str:
            from flask_login import current_user

            return current_user.username if current_user.is_authenticated else "anonymous"

        client = app.test_client()
        response = client.get("/api/test-token", headers={"Authorization": f"Bearer {token}"})
        assert response.text == "ann"
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


# --- entry points ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        [str(CEPHALOPOD), "--help"],
        [sys.executable, "-m", "cephalopod", "--help"],
        [sys.executable, "manage.py", "--help"],
    ],
    ids=["console-script", "python-m", "manage.py"],
)
def test_entry_points_show_the_same_commands(command: list[str], tmp_path: Path) -> None:
    env = {
        **os.environ,
        # --help must work even when the settings are broken
        "CEPHALOPOD_SETTINGS": str(tmp_path / "missing.cfg"),
        "CEPHALOPOD_INSTANCE_PATH": str(tmp_path / "instance"),
    }
    result = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=60, check=False, cwd=REPO
    )
    assert result.returncode == 0, result.stderr
    for name in ("db", "create_usr", "create-user", "create_token", "run", "runserver"):
        assert f"  {name} " in result.stdout or f"  {name}\n" in result.stdout, name
    assert not (tmp_path / "instance").exists()  # --help touches nothing


def test_run_options() -> None:
    result = CliRunner().invoke(cli, ["run", "--help"])
    assert result.exit_code == 0
    assert "--host" in result.output
    assert "127.0.0.1" in result.output
    assert "5000" in result.output
    alias = CliRunner().invoke(cli, ["runserver", "--help"])
    assert alias.exit_code == 0
    assert "--port" in alias.output


@pytest.mark.parametrize("args", [["db", "--help"], ["db", "drop", "--help"]])
def test_db_help(args: list[str]) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0
    if args[-2] == "drop":
        assert "--yes" in result.output
    else:
        for name in ("create", "drop", "recreate", "upgrade"):
            assert name in result.output
