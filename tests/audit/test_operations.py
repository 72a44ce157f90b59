"""Each change of an instance is recorded once, with who, from where, and old → new values.

Through the registration protocol (the instance itself, with its client address: the
forwarded one only behind USE_PROXY), the admin API (a token) and the admin pages (a
session); in the transaction of the change (SQLite and PostgreSQL).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from cephalopod.audit import operations as audit
from cephalopod.audit.operations import Actor
from cephalopod.db import db
from cephalopod.instances import operations as ops
from cephalopod.instances.models import Instance
from cephalopod.services import services
from tests.audit.conftest import BODY, entries, form_token


def register(client: FlaskClient, **headers: str) -> str:
    response = client.post("/api/instance/", json=BODY, headers=headers)
    assert response.status_code == 201, response.json
    return str(response.json["uuid"])


def test_a_registration_is_recorded_with_its_values_and_address(app: Flask, client) -> None:
    made = register(client)
    (entry,) = entries(app)
    assert entry.action == "register"
    assert (entry.actor_kind, entry.actor, entry.address) == ("instance", None, "127.0.0.1")
    assert entry.instance_uuid == uuid.UUID(made)
    assert (entry.instance_name, entry.instance_url) == (BODY["organization"], BODY["url"])
    assert entry.changes == {
        "url": {"old": None, "new": BODY["url"]},
        "contact": {"old": None, "new": BODY["contact"]},
        "email": {"old": None, "new": BODY["email"]},
        "organization": {"old": None, "new": BODY["organization"]},
        "enabled": {"old": None, "new": True},
    }
    with app.app_context():
        registered = db.session.scalar(sa.select(Instance.registered_at))
    assert entry.created_at == registered  # the time of the change itself


def test_an_update_names_each_changed_field_with_old_and_new_values(app: Flask, client) -> None:
    made = register(client)
    changes = {"email": "new@example.org", "contact": BODY["contact"], "url": "https://b.example"}
    response = client.patch(f"/api/instance/{made}", json=changes)
    assert response.status_code == 200
    entry = entries(app)[-1]
    assert (entry.action, entry.actor_kind, entry.address) == ("update", "instance", "127.0.0.1")
    assert entry.changes == {  # the contact sent unchanged is no change
        "email": {"old": "ann@example.org", "new": "new@example.org"},
        "url": {"old": "https://indico.example.org", "new": "https://b.example"},
    }
    assert entry.instance_url == "https://b.example"  # named as it is now


def test_a_request_that_changes_nothing_records_nothing(app: Flask, client) -> None:
    made = register(client)
    same = client.patch(f"/api/instance/{made}", json={"contact": BODY["contact"]})
    assert same.status_code == 200
    assert client.patch(f"/api/instance/{made}", json={"url": "nope"}).status_code == 400
    assert [e.action for e in entries(app)] == ["register"]


def test_disabling_and_enabling_by_the_instance(app: Flask, client) -> None:
    made = register(client)
    client.patch(f"/api/instance/{made}", json={"enabled": False})
    client.patch(f"/api/instance/{made}", json={"enabled": True, "contact": "Bob"})
    disable, enable = entries(app)[1:]
    assert disable.action == "disable"
    assert disable.changes == {"enabled": {"old": True, "new": False}}
    assert enable.action == "enable"
    assert enable.changes == {
        "enabled": {"old": False, "new": True},
        "contact": {"old": "Ann Admin", "new": "Bob"},
    }


def test_the_forwarded_address_counts_only_behind_a_proxy(make_app) -> None:
    forwarded = {"X-Forwarded-For": "203.0.113.7"}
    direct = make_app()
    register(direct.test_client(), **forwarded)
    assert entries(direct)[-1].address == "127.0.0.1"  # a client cannot pick its own

    proxied = make_app(USE_PROXY=True)
    made = register(proxied.test_client(), **forwarded)
    proxied.test_client().patch(
        f"/api/instance/{made}", json={"contact": "X"}, headers={"X-Forwarded-For": "2001:db8::1"}
    )
    assert [e.address for e in entries(proxied)][-2:] == ["203.0.113.7", "2001:db8::1"]


def test_deleting_an_instance_keeps_its_entries_readable(app: Flask, client) -> None:
    made = register(client)
    client.patch(f"/api/instance/{made}", json={"organization": "Renamed Lab"})
    assert client.delete(f"/api/instance/{made}").status_code == 204
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Instance)) == 0
    found = entries(app, instance_uuid=uuid.UUID(made))
    assert [e.action for e in found] == ["register", "update", "delete"]
    gone = found[-1]
    assert (gone.actor_kind, gone.address) == ("instance", "127.0.0.1")
    assert (gone.instance_name, gone.instance_url) == ("Renamed Lab", BODY["url"])
    assert gone.changes is not None
    assert gone.changes["organization"] == {"old": "Renamed Lab", "new": None}
    assert gone.changes["email"] == {"old": "ann@example.org", "new": None}


def test_admin_api_changes_name_the_user_and_the_token(
    app: Flask, client, admin: dict[str, Any]
) -> None:
    made = register(client)
    headers = admin["headers"]
    url = f"/api/admin/instances/{made}"
    assert client.patch(url, json={"enabled": False}, headers=headers).status_code == 200
    assert client.patch(url, json={"email": "x@example.org"}, headers=headers).status_code == 200
    assert client.post(f"{url}/crawl", headers=headers).status_code in (200, 202)
    assert services(app).runner.join(30)  # type: ignore[attr-defined]  # the crawl is over
    assert client.delete(url, headers=headers).status_code == 204
    found = entries(app, instance_uuid=uuid.UUID(made))
    assert [e.action for e in found] == ["register", "disable", "update", "crawl", "delete"]
    for entry in found[1:]:
        assert (entry.actor_kind, entry.actor) == ("token", "admin")
        assert (entry.token_id, entry.address) == (admin["token_id"], "127.0.0.1")
    assert found[2].changes == {"email": {"old": "ann@example.org", "new": "x@example.org"}}
    assert found[3].changes is None


def test_admin_pages_changes_name_the_logged_in_user(app: Flask, logged_in: FlaskClient) -> None:
    made = register(logged_in)
    page = logged_in.get(f"/servers/{made}")
    form = {**BODY, "email": "page@example.org", "csrf_token": form_token(page.text)}  # disabled
    assert logged_in.post(f"/servers/{made}", data=form).status_code == 302
    token = {"csrf_token": form_token(logged_in.get(f"/servers/{made}").text)}
    assert logged_in.post(f"/servers/{made}/crawl", data=token).status_code == 302
    assert services(app).runner.join(30)  # type: ignore[attr-defined]  # the crawl is over
    confirmed = {**token, "confirmed": "1"}
    assert logged_in.post(f"/servers/{made}/delete", data=confirmed).status_code == 302
    found = entries(app, instance_uuid=uuid.UUID(made))
    assert [e.action for e in found] == ["register", "disable", "crawl", "delete"]
    for entry in found[1:]:
        assert (entry.actor_kind, entry.actor, entry.token_id) == ("user", "admin", None)
        assert entry.address == "127.0.0.1"
    assert found[1].changes == {  # the form saves every field: only the changed ones count
        "email": {"old": "ann@example.org", "new": "page@example.org"},
        "enabled": {"old": True, "new": False},
    }


def test_no_entry_for_a_change_that_rolled_back(app: Flask, make_instance, monkeypatch) -> None:
    first = make_instance()
    # a registration whose INSERT fails (its uuid is taken) takes its entry down with it
    monkeypatch.setattr(ops.uuid_mod, "uuid4", lambda: first.uuid)
    with app.app_context(), pytest.raises(sa.exc.IntegrityError):
        ops.register_instance({**BODY, "url": "https://other.example.org"})
    assert [e.action for e in entries(app)] == ["register"]
    assert entries(app)[0].instance_url == first.url


@contextlib.contextmanager
def failing_audit(app: Flask) -> Iterator[None]:
    """A trigger that makes every audit INSERT fail, as a full disk or a lost server would."""
    with app.app_context(), db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(
                sa.text(
                    "CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$ BEGIN RAISE EXCEPTION 'audit refused'; END $$"
                )
            )
            conn.execute(
                sa.text(
                    "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_entries "
                    "FOR EACH ROW EXECUTE FUNCTION refuse_audit()"
                )
            )
        else:
            conn.execute(
                sa.text(
                    "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_entries "
                    "BEGIN SELECT RAISE(ABORT, 'audit refused'); END"
                )
            )
    try:
        yield
    finally:
        with app.app_context(), db.engine.begin() as conn:
            postgres = conn.dialect.name == "postgresql"
            conn.execute(sa.text("DROP TRIGGER refuse_audit" + (" ON audit_entries" * postgres)))
            if postgres:
                conn.execute(sa.text("DROP FUNCTION refuse_audit()"))


def test_no_change_without_its_entry(app: Flask, make_instance) -> None:
    instance = make_instance()
    with failing_audit(app), app.app_context():
        for change in (
            lambda found: ops.update_instance(found, {"email": "x@example.org"}),
            lambda found: ops.update_instance(found, {"enabled": False}),
            lambda found: ops.delete_instance(found),
            lambda _found: ops.register_instance({**BODY, "url": "https://new.example.org"}),
        ):
            with pytest.raises(sa.exc.DBAPIError, match="audit refused"):
                change(ops.get_instance(str(instance.uuid)))
            db.session.rollback()
        rows = db.session.execute(sa.select(Instance.uuid, Instance.email, Instance.enabled)).all()
    assert rows == [(instance.uuid, instance.email, True)]  # nothing changed, nothing added


def test_outside_a_request_the_hub_itself_acts(app: Flask, make_instance) -> None:
    instance = make_instance()
    with app.app_context():
        audit.record("crawl", instance=instance)
        audit.record("crawl", Actor.cli(), instance=instance)
        db.session.commit()
    kinds = [(e.action, e.actor_kind) for e in entries(app)]
    assert kinds == [("register", "system"), ("crawl", "system"), ("crawl", "cli")]


def test_unknown_actions_and_actor_kinds_are_refused(app: Flask) -> None:
    with pytest.raises(ValueError, match="unknown actor kind"):
        Actor("robot")
    with app.app_context(), pytest.raises(ValueError, match="unknown audit action"):
        audit.record("explode")
