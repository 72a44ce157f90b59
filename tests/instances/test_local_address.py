"""Registrations pointing into a private network are accepted but flagged, without DNS.

The flag follows the crawler's guard for IP literals (every form the system's resolver reads
as an address) and names that only mean something inside one site.
"""

from __future__ import annotations

import _socket
import socket

import pytest
from flask import Flask
from flask.testing import FlaskClient

from cephalopod.auth import operations as auth_ops
from cephalopod.crawler.guard import is_public_address
from cephalopod.instances.urls import is_local_address

LOCAL = [
    "http://127.0.0.1",
    "http://127.0.0.1:8080/indico",
    "http://127.1",  # the resolver's short form
    "http://0x7f.1",  # hexadecimal
    "http://0x7f000001",
    "http://2130706433",  # one decimal number
    "http://017700000001",  # octal
    "http://0177.0.0.1",
    "http://0.0.0.0",
    "http://0",
    "http://10.1.2.3",
    "http://172.16.0.1",
    "http://192.168.1.10/",
    "http://169.254.169.254/latest/meta-data",  # the cloud metadata service
    "http://100.64.0.1",  # carrier-grade NAT
    "http://198.18.0.1",
    "http://192.0.2.1",  # documentation
    "http://224.0.0.1",  # multicast
    "http://255.255.255.255",
    "http://[::1]",
    "http://[::1]:5000/x",
    "http://[::]",
    "http://[fe80::1]",
    "http://[fc00::1]",
    "http://[fd12:3456::1]",
    "http://[::ffff:127.0.0.1]",  # IPv4-mapped
    "http://[::ffff:7f00:1]",
    "http://[64:ff9b::a00:1]",  # NAT64 of 10.0.0.1
    "http://[2002:7f00:1::]",  # 6to4
    "http://[2001:db8::1]",
    "http://localhost",
    "http://LOCALHOST:8000",
    "http://localhost.",
    "http://indico.localhost",
    "http://printer.local",
    "http://indico.LOCAL.",
    "http://hub.corp.internal",
    "http://intranet",  # a single label: resolved through the local search domains
    "https://indico/",
]
PUBLIC = [
    "https://indico.example.org",
    "https://indico.cern.ch/event/1",
    "http://8.8.8.8",
    "http://1.1.1.1:8080",
    "http://[2606:4700:4700::1111]",
    "http://[::ffff:8.8.8.8]",
    "https://localhost.example.org",  # localhost only as a label of a real name
    "https://local.example.org",
    "https://example.internal.org",
    "https://xn--bcher-kva.example",
    "https://1.2.3.example",  # digits and dots, but a name
    "https://dev.localhost-hub.org",
]


@pytest.mark.parametrize("url", LOCAL)
def test_local_or_private_addresses_are_flagged(url: str) -> None:
    assert is_local_address(url)


@pytest.mark.parametrize("url", PUBLIC)
def test_public_addresses_are_not_flagged(url: str) -> None:
    assert not is_local_address(url)


@pytest.mark.parametrize(
    "host", ["127.1", "0x7f.1", "2130706433", "017700000001", "10.1", "0xa.0x1.0x2.0x3"]
)
def test_numeric_forms_are_what_the_resolver_connects_to(host: str) -> None:
    """The forms the flag reads as addresses are the ones getaddrinfo turns into the address
    the guard refuses: numeric hosts, answered by the C library itself (AI_NUMERICHOST: no
    DNS; the C function, as the tests' no_dns fixture stands in for the module's)."""
    infos = _socket.getaddrinfo(
        host, 80, socket.AF_INET, socket.SOCK_STREAM, 0, socket.AI_NUMERICHOST
    )
    assert not is_public_address(infos[0][4][0])
    assert is_local_address(f"http://{host}")


def test_no_name_is_looked_up(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a DNS look-up at registration: {args}")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "gethostbyname", refuse)
    for url in (*LOCAL, *PUBLIC):
        is_local_address(url)


# --- through the API and the list -----------------------------------------------------------


@pytest.fixture
def admin(app: Flask) -> dict[str, str]:
    """The Authorization header of an admin's token."""
    with app.app_context():
        auth_ops.create_user("ann", "password")
        return {"Authorization": f"Bearer {auth_ops.create_token('ann')}"}


def register(client: FlaskClient, url: str) -> str:
    response = client.post(
        "/api/instance/",
        json={"url": url, "contact": "C", "email": "c@example.org", "organization": url},
    )
    assert response.status_code == 201, response.json  # accepted: only flagged
    return str(response.json["uuid"])


def test_the_admin_api_and_the_export_flag_local_registrations(
    client: FlaskClient, admin: dict[str, str]
) -> None:
    local = register(client, "http://192.168.1.10")
    public = register(client, "https://indico.example.org")
    assert client.get(f"/api/instance/{local}").status_code == 200
    item = client.get(f"/api/admin/instances/{local}", headers=admin).json
    assert item["local_address"] is True
    assert (
        client.get(f"/api/admin/instances/{public}", headers=admin).json["local_address"] is False
    )
    listed = client.get("/api/admin/instances", headers=admin).json["items"]
    assert {i["uuid"]: i["local_address"] for i in listed} == {local: True, public: False}
    exported = client.get("/api/admin/export?format=json", headers=admin).json
    assert {row["uuid"]: row["local_address"] for row in exported} == {local: True, public: False}
    # a PATCH to a public URL clears it
    changed = client.patch(
        f"/api/admin/instances/{local}", json={"url": "https://lab.example.org"}, headers=admin
    )
    assert changed.status_code == 200
    assert changed.json["local_address"] is False


def test_the_server_list_shows_a_badge(
    client: FlaskClient, admin: dict[str, str], app: Flask
) -> None:
    register(client, "http://intranet")
    register(client, "https://indico.example.org")
    with client.session_transaction() as session:
        with app.app_context():
            session["_user_id"] = auth_ops.get_user("ann").get_id()  # type: ignore[union-attr]
        session["_fresh"] = True
    page = client.get("/servers")
    assert page.status_code == 200
    assert page.text.count("Local or private address</span>") == 1
