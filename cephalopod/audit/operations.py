"""Writing the audit log: who acts (`Actor`), one entry per event (`record`), pruning.

`record` adds its INSERT to the session's transaction and never commits: the operation that
changes something records it before its own commit, so that the entry and the change are
committed, or rolled back, together. One statement, no read: the registration protocol's
requests (performance-sensitive) pay one INSERT for it.
"""

from __future__ import annotations

import getpass
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

import sqlalchemy as sa
from flask import g, has_request_context, request

from cephalopod.audit.models import (
    ACTIONS,
    ACTOR_KINDS,
    MAX_ACTOR,
    MAX_ADDRESS,
    MAX_INSTANCE_NAME,
    MAX_INSTANCE_URL,
    AuditEntry,
)
from cephalopod.db import db, utcnow

log = logging.getLogger(__name__)

_TOKEN_KEY = "cephalopod_audit_token_id"  # noqa: S105 - the name of a g attribute, no secret
_INSERT = sa.insert(AuditEntry.__table__)


@dataclass(frozen=True)
class Actor:
    """Who acts: a kind (`ACTOR_KINDS`), a name, the client address, the token used."""

    kind: str
    name: str | None = None
    address: str | None = None
    token_id: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in ACTOR_KINDS:
            raise ValueError(f"unknown actor kind {self.kind!r}")

    @classmethod
    def instance(cls, address: str | None) -> Actor:
        """The instance itself, speaking the registration protocol from ``address``."""
        return cls("instance", address=address)

    @classmethod
    def cli(cls) -> Actor:
        """The command line, named by the shell user running it (when the system knows)."""
        try:
            name: str | None = getpass.getuser()
        except (OSError, KeyError):  # no login name in the environment nor the user database
            name = None
        return cls("cli", name=name)


SYSTEM = Actor("system")


class Named(Protocol):
    """What an entry keeps of an instance (an `Instance` is one)."""

    @property
    def uuid(self) -> UUID: ...
    @property
    def organization(self) -> str: ...
    @property
    def url(self) -> str: ...


@dataclass(frozen=True)
class InstanceRef:
    """An instance as an entry names it, when the `Instance` itself holds other values."""

    uuid: UUID
    organization: str
    url: str


def remember_token(token_id: int) -> None:
    """Note that an API token authenticated this request (its entries name the token)."""
    setattr(g, _TOKEN_KEY, token_id)


def current_actor() -> Actor:
    """Who acts in this request: the logged-in user (or their token), else the client.

    Outside a request: `SYSTEM`. Views that know better (the registration protocol, the
    command line) pass their `Actor` to the operations instead.
    """
    if not has_request_context():
        return SYSTEM
    from flask_login import current_user  # here: an app without its web stack has no logins

    address = request.remote_addr
    if current_user and current_user.is_authenticated:
        token_id = g.get(_TOKEN_KEY)
        kind = "user" if token_id is None else "token"
        return Actor(kind, name=current_user.username, address=address, token_id=token_id)
    return Actor("anonymous", address=address)


def record(
    action: str,
    actor: Actor | None = None,
    *,
    instance: Named | None = None,
    changes: Mapping[str, Mapping[str, Any]] | None = None,
    token_id: int | None = None,
    at: datetime | None = None,
) -> None:
    """Add one entry to the current transaction (the caller commits it with its change).

    ``actor`` None: `current_actor`. ``token_id``: the token created or revoked (else the
    actor's own token, if one authenticated it).
    """
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    who = actor if actor is not None else current_actor()
    values = {
        "created_at": at or utcnow(),
        "action": action,
        "actor_kind": who.kind,
        "actor": _text(who.name, MAX_ACTOR),
        "token_id": token_id if token_id is not None else who.token_id,
        "address": _text(who.address, MAX_ADDRESS),
        "instance_uuid": instance.uuid if instance is not None else None,
        "instance_name": _text(instance.organization, MAX_INSTANCE_NAME) if instance else None,
        "instance_url": _text(instance.url, MAX_INSTANCE_URL) if instance else None,
        "changes": {k: dict(v) for k, v in changes.items()} if changes else None,
    }
    db.session.execute(_INSERT, values)


def _text(value: str | None, limit: int) -> str | None:
    """A string as a column takes it: no NUL (PostgreSQL refuses one), at most ``limit``."""
    if not value:
        return None
    return value.replace("\x00", "")[:limit] or None


def changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The changes of each field of ``new`` whose value differs from ``old``'s."""
    return {k: {"old": old.get(k), "new": v} for k, v in new.items() if old.get(k) != v}


def created(values: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The changes of a record that came to be: every value new."""
    return {k: {"old": None, "new": v} for k, v in values.items()}


def removed(values: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The changes of a record that went: every value old."""
    return {k: {"old": v, "new": None} for k, v in values.items()}


def prune(retention_days: int) -> int:
    """Delete the entries older than ``retention_days`` (AUDIT_RETENTION_DAYS); say how many."""
    keep_from = utcnow() - timedelta(days=retention_days)
    table = AuditEntry.__table__
    with db.engine.begin() as conn:
        deleted = conn.execute(sa.delete(table).where(table.c.created_at < keep_from))
    count = int(deleted.rowcount)
    log.info("Pruned %d audit entries older than %s", count, keep_from.isoformat())
    return count
