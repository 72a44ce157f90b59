"""schemathesis against the real `cephalopod run`: every documented operation, fuzzed.

The document at ``/api/openapi.json`` is the contract scripts are written against: requests
generated from it, valid and invalid, must never get a 5xx; every reply must match the
documented status, content type, headers and schema; a valid request must be accepted and an
invalid one refused; no request may hang. On both databases; the admin API with a bearer
token made by ``cephalopod create_token``; every operation is one test.

Bounded and repeatable: a fixed number of examples per operation and phase, derandomized
generation with a fixed seed, no example database, a timeout on every request.

An operation on an instance gets a freshly registered instance's UUID whenever schemathesis
generated a valid UUID (a random one would only ever meet the 404). The server crawls no
endpoint (``CRAWLING_ENDPOINTS = []``), so "crawl now" and "crawl all" run for real and still
connect nowhere: the fuzzed registrations' host names are never resolved.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case
from schemathesis.specs.openapi.checks import positive_data_acceptance

from cephalopod.admin import openapi
from cephalopod.stats.trend import INSTANCES
from tests.databases import empty_database
from tests.test_server import CEPHALOPOD, PAYLOAD, run_server, server_env

pytestmark = [pytest.mark.slow]

#: Examples per operation and phase: every schema branch is met, in about a minute a backend.
MAX_EXAMPLES = 25
SEED = 20261204
REQUEST_TIMEOUT = 10.0

SERVER_SETTINGS = """
CRAWLING_ENDPOINTS = []  # a crawl connects to nothing: the fuzzed URLs are never resolved
REGISTRATION_RATE_LIMIT = "1000000 per hour"
PUBLIC_STATISTICS = True
"""

CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True},
        "request-timeout": REQUEST_TIMEOUT,
    }
)
schema = schemathesis.openapi.from_dict(openapi.document(), config=CONFIG)

FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    # the health checks judge generation speed and filtering, which a real server makes slow
    suppress_health_check=list(HealthCheck),
)


@dataclass
class Hub:
    """A running server, its admin token and a session that speaks to it."""

    url: str
    token: str
    http: requests.Session

    def register(self) -> str:
        """Register an instance; return its UUID."""
        response = self.http.post(f"{self.url}/api/instance/", json=PAYLOAD, timeout=10)
        assert response.status_code == 201, response.text
        return str(response.json()["uuid"])

    def crawl_all(self) -> str:
        """Start a crawl of all instances (or join the running one); return its job id."""
        response = self.http.post(
            f"{self.url}/api/admin/crawl", headers=self.auth(), timeout=REQUEST_TIMEOUT
        )
        assert response.status_code == 202, response.text
        return str(response.json()["job"])

    def auth(self) -> dict[str, str]:
        """The admin token's header."""
        return {"Authorization": f"Bearer {self.token}"}


def create_token(env: dict[str, str], folder: Path) -> str:
    """A token of the first user, made as an admin makes one."""
    result = subprocess.run(
        [str(CEPHALOPOD), "create_token", "admin"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=folder,
    )
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def hub(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    """`cephalopod run` on each database, with a token of its first user."""
    folder = tmp_path_factory.mktemp(f"fuzz-{request.param}")
    with contextlib.ExitStack() as stack:
        settings_text = SERVER_SETTINGS
        if request.param == "postgresql":
            url = stack.enter_context(empty_database("postgresql", folder))
            settings_text += f"SQLALCHEMY_DATABASE_URI = {url!r}\n"
        env = server_env(folder, settings_text)
        server = stack.enter_context(run_server(env, folder))  # demands a clean exit at the end
        http = requests.Session()
        http.trust_env = False
        stack.callback(http.close)
        served = http.get(f"{server.url}/api/openapi.json", timeout=REQUEST_TIMEOUT)
        assert served.json() == openapi.document()  # the generated requests follow the served one
        hub = Hub(server.url, create_token(env, folder), http)
        # the token works (else every admin operation would only meet its documented 401)
        assert http.get(f"{hub.url}/api/admin/geolocation", headers=hub.auth()).ok
        yield hub


def _data_dependent(case: Case) -> bool:
    """A crawled field's name is valid only if configured or reported: the document cannot
    list them, so a refused unknown name is no sign of a wrong document."""
    query = case.query or {}
    sort = query.get("sort")
    field = query.get("field")
    return (isinstance(sort, str) and sort.startswith("field:")) or (
        case.operation.definition.raw.get("operationId") == "admin_statistics_trend"
        and field != INSTANCES
    )


def _real_ids(hub: Hub, case: Case) -> None:
    """Point a valid generated UUID at a real instance or crawl job, so that it meets one."""
    parameters = case.path_parameters or {}
    for name, make in (("uuid", hub.register), ("job", hub.crawl_all)):
        with contextlib.suppress(KeyError, ValueError, TypeError, AttributeError):
            uuid.UUID(str(parameters[name]))
            parameters[name] = make()


@schema.parametrize()
@FUZZ_SETTINGS
def test_api_conforms_to_its_document(case: Case, hub: Hub) -> None:
    _real_ids(hub, case)
    case.call_and_validate(
        base_url=hub.url,
        session=hub.http,
        headers=hub.auth(),
        excluded_checks=[positive_data_acceptance] if _data_dependent(case) else None,
        timeout=REQUEST_TIMEOUT,
    )
