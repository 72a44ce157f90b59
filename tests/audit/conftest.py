"""Fixtures of the audit log tests: the entries as stored, an admin with a token, a session."""

from __future__ import annotations

import re
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from cephalopod.audit.models import AuditEntry
from cephalopod.auth import operations as auth_ops
from cephalopod.auth.models import ApiToken
from cephalopod.db import db

BODY = {
    "url": "https://indico.example.org",
    "contact": "Ann Admin",
    "email": "ann@example.org",
    "organization": "Example Lab",
}


def entries(app: Flask, **where: Any) -> list[AuditEntry]:
    """The stored entries (columns equal to ``where``), in the order they were written."""
    with app.app_context():
        query = sa.select(AuditEntry).filter_by(**where).order_by(AuditEntry.id)
        found = list(db.session.scalars(query))
        db.session.expunge_all()
    return found


@pytest.fixture
def admin(app: Flask, fast_hashing: None) -> dict[str, Any]:
    """The user "admin" (password "admin-password"), a token of theirs and its id."""
    with app.app_context():
        auth_ops.create_user("admin", "admin-password")
        token = auth_ops.create_token("admin")
        token_id = db.session.scalar(sa.select(ApiToken.id))
    return {"token": token, "token_id": token_id, "headers": {"Authorization": f"Bearer {token}"}}


def form_token(html: str) -> str:
    """The CSRF token of a page's form."""
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


@pytest.fixture
def logged_in(client: FlaskClient, admin: dict[str, Any]) -> FlaskClient:
    """The test client with a session of "admin"."""
    token = form_token(client.get("/login").text)
    reply = client.post(
        "/login",
        data={"username": "admin", "password": "admin-password", "csrf_token": token},
    )
    assert reply.status_code == 302
    return client
