"""Who may call what, proved over the app's whole URL map, so that no route slips through.

Every (route, method) of ``app.url_map`` is called. Only those on the explicit ``PUBLIC`` list
answer without login; every other one refuses an anonymous caller (the JSON 401 under /api/,
a redirect to the login page elsewhere) and a bad, revoked or expired token or one of a
disabled user, and answers the right credentials: a valid token on the JSON API, a session
on the pages (pages take no token). A new route is protected by this test until it is added
to ``PUBLIC`` on purpose. Every request carries a valid CSRF token of its client's session,
so that what refuses is the authentication, not the CSRF check.
"""

from __future__ import annotations

import re
import uuid as uuid_mod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.routing import Rule
from werkzeug.test import TestResponse

from cephalopod.auth import operations as ops
from cephalopod.auth.models import ApiToken
from cephalopod.db import db, utcnow
from cephalopod.instances.models import Instance
from cephalopod.services import services

pytestmark = pytest.mark.usefixtures("fast_hashing")

REGISTRATION = {"GET", "PATCH", "DELETE", "OPTIONS", "HEAD"}
#: (rule, methods) that answer without login: the registration protocol (an instance speaks
#: it about itself), logging in and out, the assets, the OpenAPI document and the public
#: statistics (404 unless PUBLIC_STATISTICS).
PUBLIC: dict[str, set[str]] = {
    "/api/instance/": {"POST"},
    "/api/instance/<uuid>": REGISTRATION,
    "/instance/": {"POST"},
    "/instance/<uuid>": REGISTRATION,
    "/login": {"GET", "HEAD", "POST"},
    "/logout": {"POST"},
    "/static/<path:filename>": {"GET", "HEAD"},
    "/api/openapi.json": {"GET", "HEAD"},
    "/api/statistics": {"GET", "HEAD"},
    "/public/statistics": {"GET", "HEAD"},
    "/healthz": {"GET", "HEAD"},  # no login by design, no personal data (tests/ops/test_health.py)
}
#: Routes for scripts only: a token (or, for /metrics, an address in METRICS_ALLOWED_NETWORKS,
#: loopback by default: tests/ops/test_metrics.py) and no session.
TOKEN_ONLY = {"/metrics"}
#: The walks call from an address outside every allowed network (METRICS_ALLOWED_NETWORKS).
CLIENT_ADDRESS = "198.51.100.7"
BODIES = {"PATCH": {"organization": "Changed by the authorization test"}, "POST": {}}
#: Query strings and forms without which a route answers 400 (the right caller gets a 2xx).
QUERIES = {"/api/admin/statistics/trend": "?field=instances"}
FORMS = {
    "/servers/<uuid>": {
        "organization": "Changed by the authorization test",
        "url": "https://indico.example.org",
        "contact": "Ann",
        "email": "ann@example.org",
        "enabled": "on",
    }
}


@dataclass(frozen=True)
class Call:
    """One method of one route."""

    rule: Rule
    method: str

    @property
    def id(self) -> str:
        return f"{self.method} {self.rule.rule}"

    @property
    def api(self) -> bool:
        """Answers a JSON 401, not the login page's redirect."""
        return self.rule.rule.startswith(("/api/", "/instance/")) or self.token_only

    @property
    def token_only(self) -> bool:
        return self.rule.rule in TOKEN_ONLY

    @property
    def automatic_options(self) -> bool:
        """Flask answers OPTIONS itself (the Allow header) on most routes."""
        return self.method == "OPTIONS" and self.rule.provide_automatic_options is not False


def calls(app: Flask) -> list[Call]:
    """Every (route, method) of the app."""
    return [
        Call(rule, method)
        for rule in app.url_map.iter_rules()
        for method in sorted(rule.methods or ())
    ]


@dataclass
class Hub:
    """The app, an existing instance per call, and credentials of every kind."""

    app: Flask
    tokens: dict[str, str]
    job: str
    #: The instances that protected routes were called on (public ones may change theirs).
    guarded: list[str] = field(default_factory=list)

    def url(self, call: Call) -> str:
        """The call's URL, its arguments pointing at things that exist."""
        values: dict[str, str] = {}
        for name in call.rule.arguments:
            if name == "uuid":
                values[name] = self.new_instance()
                if call.method not in PUBLIC.get(call.rule.rule, set()):
                    self.guarded.append(values[name])
            elif name == "job":
                values[name] = self.job
            elif name == "filename":
                values[name] = "css/app.css"
            else:  # pragma: no cover - a new kind of argument: teach the test about it
                pytest.fail(f"{call.id}: no value for the argument {name!r}")
        with self.app.test_request_context():
            path = call.rule.build(values, append_unknown=False)[1]  # type: ignore[index]
        return path + QUERIES.get(call.rule.rule, "")

    def new_instance(self) -> str:
        from cephalopod.instances import operations as instance_ops

        with self.app.app_context():
            instance = instance_ops.register_instance(
                {
                    "url": "https://indico.example.org",
                    "contact": "Ann",
                    "email": "ann@example.org",
                    "organization": "Untouched",
                }
            )
            return str(instance.uuid)

    def client(self) -> FlaskClient:
        """A browser that has seen a form: its session holds a CSRF token, sent as a header."""
        client = self.app.test_client()
        client.environ_base["REMOTE_ADDR"] = CLIENT_ADDRESS
        page = client.get("/login")
        match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page.text)
        assert match, page.text
        client.environ_base["HTTP_X_CSRFTOKEN"] = match.group(1)
        return client

    def send(self, call: Call, client: FlaskClient | None = None, **headers: str) -> TestResponse:
        client = client or self.client()
        kwargs: dict[str, object] = {"headers": headers}
        if call.rule.rule in FORMS and call.method == "POST":
            kwargs["data"] = FORMS[call.rule.rule]
        elif call.method in BODIES:
            kwargs["json"] = BODIES[call.method]
        # buffered: a streamed reply (the export) is read and closed, which pops its contexts
        return client.open(  # type: ignore[arg-type]
            self.url(call), method=call.method, buffered=True, **kwargs
        )

    def session(self, username: str = "ann") -> FlaskClient:
        client = self.client()
        with client.session_transaction() as session:
            with self.app.app_context():
                session["_user_id"] = ops.get_user(username).get_id()  # type: ignore[union-attr]
            session["_fresh"] = True
        return client


@pytest.fixture
def hub(make_app: Callable[..., Flask]) -> Iterator[Hub]:
    app = make_app(PUBLIC_STATISTICS=True)
    with app.app_context():
        ops.create_user("ann", "pw")
        ops.create_user("carol", "pw")
        revoked = ops.create_token("ann")
        ops.revoke_token(revoked)
        expired = ops.create_token("ann", expires_days=1)
        row = db.session.scalar(select(ApiToken).where(ApiToken.expires_at.is_not(None)))
        row.expires_at = utcnow() - timedelta(seconds=1)  # type: ignore[union-attr]
        disabled = ops.create_token("carol")
        ops.get_user("carol").is_enabled = False  # type: ignore[union-attr]
        db.session.commit()
        tokens = {
            "valid": ops.create_token("ann"),
            "revoked": revoked,
            "expired": expired,
            "disabled-user": disabled,
            "unknown": ops.TOKEN_PREFIX + "x" * 43,
            "empty": "",
        }
    client = app.test_client()
    job = client.post("/api/admin/crawl", headers={"Authorization": f"Bearer {tokens['valid']}"})
    assert job.status_code == 202, job.json
    yield Hub(app, tokens, job.json["job"])
    # the crawls the walks started end before the database goes (their connections with it)
    assert services(app).runner.join(timeout=60)  # type: ignore[attr-defined]


def assert_refused(call: Call, response: TestResponse) -> None:
    if call.api:
        assert response.status_code == 401, (call.id, response.status_code, response.data[:200])
        if call.method != "HEAD":
            assert response.json["error"].startswith("Authentication required"), call.id
    else:
        assert response.status_code == 302, (call.id, response.status_code)
        assert response.headers["Location"].startswith("/login?next="), call.id


def assert_untouched(hub: Hub) -> None:
    """Every instance that a refused call named is still there, unchanged."""
    assert hub.guarded
    with hub.app.app_context():
        names = db.session.scalars(
            select(Instance.organization).where(
                Instance.uuid.in_([uuid_mod.UUID(u) for u in hub.guarded])
            )
        ).all()
    assert names == ["Untouched"] * len(hub.guarded), names


def test_the_public_list_names_existing_routes(hub: Hub) -> None:
    routes: dict[str, set[str]] = {}
    for call in calls(hub.app):
        routes.setdefault(call.rule.rule, set()).add(call.method)
    for rule, methods in PUBLIC.items():
        assert rule in routes, f"{rule} is on the public list but is no route"
        assert methods <= routes[rule], (rule, methods - routes[rule])
    assert len(calls(hub.app)) > 60  # the walk sees the whole app


def test_anonymous_callers_get_only_the_public_routes(hub: Hub) -> None:
    for call in calls(hub.app):
        response = hub.send(call)  # a new browser each time: /logout and /login change one
        if call.method in PUBLIC.get(call.rule.rule, set()):
            assert response.status_code != 401, call.id
            assert not response.headers.get("Location", "").startswith("/login?next="), call.id
        elif call.automatic_options and response.status_code == 200:
            assert response.data == b"", call.id  # only the Allow header: nothing disclosed
        else:
            assert_refused(call, response)
    assert_untouched(hub)


@pytest.mark.parametrize("kind", ["revoked", "expired", "disabled-user", "unknown", "empty"])
def test_bad_tokens_are_refused_everywhere_but_public_routes(hub: Hub, kind: str) -> None:
    authorization = f"Bearer {hub.tokens[kind]}"
    client = hub.client()
    for call in calls(hub.app):
        if call.method in PUBLIC.get(call.rule.rule, set()) or call.automatic_options:
            continue
        assert_refused(call, hub.send(call, client, Authorization=authorization))
    assert_untouched(hub)


def test_a_valid_token_opens_the_json_api_and_no_page(hub: Hub) -> None:
    authorization = f"Bearer {hub.tokens['valid']}"
    client = hub.client()
    for call in calls(hub.app):
        if call.method in PUBLIC.get(call.rule.rule, set()) or call.automatic_options:
            continue
        response = hub.send(call, client, Authorization=authorization)
        if call.api:
            assert response.status_code < 400, (call.id, response.status_code, response.data)
        else:
            assert_refused(call, response)  # pages want a session


def test_a_session_opens_every_page_and_the_json_api_but_no_script_route(hub: Hub) -> None:
    client = hub.session()
    for call in calls(hub.app):
        if call.method in PUBLIC.get(call.rule.rule, set()) or call.automatic_options:
            continue
        response = hub.send(call, client)
        if call.token_only:
            assert_refused(call, response)  # a script's route: a session does not open it
            continue
        assert response.status_code < 400, (call.id, response.status_code, response.data[:200])
        assert not response.headers.get("Location", "").startswith("/login"), call.id


def test_a_session_of_a_disabled_user_is_refused(hub: Hub) -> None:
    with hub.app.app_context():
        carol = ops.get_user("carol")
        session_id = carol.get_id()  # type: ignore[union-attr]
    client = hub.client()
    with client.session_transaction() as session:
        session["_user_id"] = session_id
    for call in calls(hub.app):
        if call.method in PUBLIC.get(call.rule.rule, set()) or call.automatic_options:
            continue
        assert_refused(call, hub.send(call, client))
