"""Models and migrations agree, there is one head, and the history runs both ways."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask
from flask_migrate import downgrade, upgrade

from cephalopod.app import create_app
from cephalopod.db import JSONType, db
from cephalopod.instances.models import INSTANCES_FILLFACTOR, Instance
from cephalopod.schema import (
    HEAD_REVISION,
    MIGRATIONS_DIR,
    at_head,
    create_schema,
    database_revisions,
    ensure_schema,
    prepare_database,
    table_names,
)
from tests.databases import empty_database

SCRIPTS = ScriptDirectory(str(MIGRATIONS_DIR))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_app(
    request: pytest.FixtureRequest, tmp_path: Path, instance_dir: Path
) -> Iterator[Flask]:
    """An app on a new, empty database, with an application context."""
    with empty_database(request.param, tmp_path) as url:
        app = create_app(overrides={"SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": url})
        with app.app_context():
            try:
                yield app
            finally:
                db.session.remove()
                db.engine.dispose()


def differences() -> list[object]:
    """What autogenerate would write into a new migration (nothing, when they agree)."""
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(context, db.metadata)


def test_single_head() -> None:
    assert len(SCRIPTS.get_heads()) == 1


def test_revision_files_carry_a_date_prefix() -> None:
    for script in SCRIPTS.walk_revisions():
        assert re.match(r"\d{8}_[0-9a-f]+_\w+\.py$", Path(script.path).name), script.path


def test_the_cached_head_is_alembics_head() -> None:
    """A new migration must move HEAD_REVISION too, or a database at the old head would be
    taken for up to date and never upgraded."""
    assert SCRIPTS.get_current_head() == HEAD_REVISION


def current_heads() -> tuple[str, ...]:
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_heads()


@pytest.mark.parametrize("web", [True, False], ids=["whole app", "app without web"])
def test_a_database_behind_the_head_is_upgraded(
    empty_app: Flask, web: bool, tmp_path: Path
) -> None:
    """prepare_database (every command's start) upgrades a database one migration behind."""
    behind = SCRIPTS.get_revision(HEAD_REVISION).down_revision
    assert isinstance(behind, str)
    upgrade(revision=behind)
    assert database_revisions() == {behind}
    assert not at_head()
    url = empty_app.config["SQLALCHEMY_DATABASE_URI"]
    app = create_app(overrides={"SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": url}, web=web)
    with app.app_context():
        try:
            prepare_database()  # the app without web sets Flask-Migrate up only now
            assert at_head()
            assert current_heads() == (HEAD_REVISION,)
            assert differences() == []
        finally:
            db.session.remove()
            db.engine.dispose()


def test_a_database_without_tables_or_history_is_created_by_prepare_database(
    empty_app: Flask,
) -> None:
    assert database_revisions() is None
    prepare_database()
    assert current_heads() == (HEAD_REVISION,)
    assert differences() == []


def test_a_database_at_an_unknown_revision_is_refused(empty_app: Flask) -> None:
    """A database migrated by newer code is not taken for up to date: Alembic refuses it."""
    ensure_schema()
    with db.engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = 'ffffffffffff'"))
    assert not at_head()
    with pytest.raises(SystemExit):  # Flask-Migrate logs Alembic's error and exits with 1
        prepare_database()
    assert database_revisions() == {"ffffffffffff"}


def test_a_command_at_head_loads_neither_alembic_nor_the_web_stack(tmp_path: Path) -> None:
    """What keeps ``cephalopod crawl`` quick to start: checked in a fresh interpreter."""
    settings = tmp_path / "settings.cfg"
    settings.write_text(
        f"SECRET_KEY = 'x'\nSQLALCHEMY_DATABASE_URI = 'sqlite:///{tmp_path}/h.db'\n"
    )
    env = {
        **os.environ,
        "CEPHALOPOD_SETTINGS": str(settings),
        "CEPHALOPOD_INSTANCE_PATH": str(tmp_path),
    }
    subprocess.run([sys.executable, "-m", "cephalopod", "db", "create"], env=env, check=True)
    script = (
        "import json, sys\n"
        "from cephalopod.app import create_app\n"
        "from cephalopod.schema import at_head, prepare_database\n"
        "with create_app(web=False).app_context():\n"
        "    assert at_head()\n"
        "    prepare_database()\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    ).stdout
    loaded = set(json.loads(out.splitlines()[-1]))
    assert {"cephalopod.schema", "cephalopod.crawler.run"} <= loaded
    heavy = {"alembic", "flask_migrate", "cephalopod.web", "cephalopod.admin.api", "flask_wtf"}
    assert not heavy & loaded
    assert "cephalopod.auth.operations" not in loaded  # its import hashes a dummy password


def test_upgraded_database_matches_the_models(empty_app: Flask) -> None:
    ensure_schema()
    assert differences() == []


def test_created_database_matches_an_upgraded_one(empty_app: Flask) -> None:
    create_schema()  # create_all + stamp, as "db create" does
    assert differences() == []
    with db.engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_heads() == (SCRIPTS.get_current_head(),)


def test_downgrade_to_base_and_upgrade_again(empty_app: Flask) -> None:
    ensure_schema()
    downgrade(revision="base")
    assert table_names() <= {"alembic_version"}
    ensure_schema()
    assert differences() == []


def test_tables_without_history_are_stamped_and_upgraded(empty_app: Flask) -> None:
    """An old "db create" without Alembic: ensure_schema records and upgrades it."""
    db.create_all()
    assert "alembic_version" not in table_names()
    ensure_schema()
    with db.engine.connect() as conn:
        assert MigrationContext.configure(conn).get_current_heads() == (SCRIPTS.get_current_head(),)
        assert conn.execute(sa.text("SELECT count(*) FROM instances")).scalar() == 0


@pytest.mark.postgres
@pytest.mark.parametrize("make", [create_schema, ensure_schema], ids=["created", "upgraded"])
def test_instances_leave_room_for_updates_in_place(
    instance_dir: Path, make: Callable[[], None]
) -> None:
    """autogenerate compares no storage parameters: check the fillfactor itself, both ways."""
    with empty_database("postgresql", instance_dir) as url:
        app = create_app(overrides={"SECRET_KEY": "x", "SQLALCHEMY_DATABASE_URI": url})
        with app.app_context():
            try:
                make()
                options = db.session.scalar(
                    sa.text("SELECT reloptions FROM pg_class WHERE relname = 'instances'")
                )
            finally:
                db.session.remove()
                db.engine.dispose()
    assert options == [f"fillfactor={INSTANCES_FILLFACTOR}"]


def test_the_comparison_sees_a_difference(empty_app: Flask) -> None:
    """Guard against a check that always passes: a missing index must show."""
    ensure_schema()
    with db.engine.begin() as conn:
        conn.execute(sa.text("DROP INDEX ix_instances_enabled"))
    assert [d[0] for d in differences()] == ["add_index"]  # type: ignore[index]


def test_snapshots_keep_their_rows_across_their_new_key(empty_app: Flask) -> None:
    """The migration that keys snapshots by (instance, day) keeps every row, both ways."""
    before = "0e342f2a4c11"  # the revision whose snapshots still had a surrogate id
    ensure_schema()
    downgrade(revision=before)
    # the columns both revisions have
    snapshots = sa.table(
        "snapshots",
        sa.column("instance_id"),
        sa.column("day", sa.Date()),
        sa.column("data", JSONType),
    )
    registration = {"uuid": uuid.uuid4(), "url": "https://a.example.org", "url_key": "a",
                    "contact": "C", "email": "c@example.org", "organization": "O"}  # fmt: skip
    with db.engine.begin() as conn:
        iid = conn.execute(sa.insert(Instance.__table__).values(registration)).inserted_primary_key
        for day in (1, 2):
            row = {"instance_id": iid[0], "day": date(2026, 1, day), "data": {"v": day}}
            conn.execute(sa.insert(snapshots).values(row))
    expected = [(iid[0], date(2026, 1, 1), {"v": 1}), (iid[0], date(2026, 1, 2), {"v": 2})]

    def kept() -> list[tuple[object, ...]]:
        with db.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(sa.select(snapshots).order_by("day"))]

    upgrade()
    assert kept() == expected
    assert differences() == []
    again = {"instance_id": iid[0], "day": date(2026, 1, 1), "data": {}}
    with pytest.raises(sa.exc.IntegrityError), db.engine.begin() as conn:  # now the key
        conn.execute(sa.insert(snapshots).values(again))
    downgrade(revision=before)
    assert kept() == expected
    with db.engine.connect() as conn:
        ids = conn.execute(sa.text("SELECT id FROM snapshots")).scalars().all()
    assert None not in ids
    assert len(set(ids)) == 2
