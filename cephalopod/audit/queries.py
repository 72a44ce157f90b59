"""Reading the audit log: the filtered, paged list and an instance's own latest entries."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from cephalopod.audit.models import AuditEntry
from cephalopod.audit.rows import AuditItem, AuditPage, Change
from cephalopod.db import db

DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 500
#: How many of its latest entries an instance's detail carries (API item and page).
RECENT = 20

entries = AuditEntry.__table__
NEWEST_FIRST = (entries.c.created_at.desc(), entries.c.id.desc())


@dataclass(frozen=True)
class AuditQuery:
    """The validated filters and page of ``GET /api/admin/audit`` (``params.audit_query``).

    ``since`` is inclusive, ``until`` exclusive; None: no bound.
    """

    instance: UUID | None = None
    action: str | None = None
    actor: str | None = None
    actor_kind: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE


def _where(query: AuditQuery) -> list[sa.ColumnElement[bool]]:
    c = entries.c
    clauses: list[sa.ColumnElement[bool]] = []
    if query.instance is not None:
        clauses.append(c.instance_uuid == query.instance)
    if query.action is not None:
        clauses.append(c.action == query.action)
    if query.actor is not None:
        clauses.append(c.actor == query.actor)
    if query.actor_kind is not None:
        clauses.append(c.actor_kind == query.actor_kind)
    if query.since is not None:
        clauses.append(c.created_at >= query.since)
    if query.until is not None:
        clauses.append(c.created_at < query.until)
    return clauses


def list_entries(query: AuditQuery) -> AuditPage:
    """Return a page of the entries that match, newest first, and how many match in all."""
    where = _where(query)
    total = db.session.scalar(sa.select(sa.func.count()).select_from(entries).where(*where))
    rows = db.session.execute(
        sa.select(entries)
        .where(*where)
        .order_by(*NEWEST_FIRST)
        .limit(query.per_page)
        .offset((query.page - 1) * query.per_page)
    )
    return AuditPage(total=total or 0, page=query.page, per_page=query.per_page, items=items(rows))


def instance_entries(uuid: UUID, limit: int = RECENT) -> list[AuditItem]:
    """Return an instance's latest entries, newest first (also once it is deleted)."""
    rows = db.session.execute(
        sa.select(entries)
        .where(entries.c.instance_uuid == uuid)
        .order_by(*NEWEST_FIRST)
        .limit(limit)
    )
    return items(rows)


def items(rows: Iterable[Any]) -> list[AuditItem]:
    """The rows of ``audit_entries`` as API items."""
    return [
        AuditItem(
            id=row.id,
            time=row.created_at,
            action=row.action,
            actor_kind=row.actor_kind,
            actor=row.actor,
            token_id=row.token_id,
            address=row.address,
            instance_uuid=row.instance_uuid,
            instance_name=row.instance_name,
            instance_url=row.instance_url,
            changes=_changes(row.changes),
        )
        for row in rows
    ]


def _changes(value: Any) -> dict[str, Change] | None:
    if not isinstance(value, dict):
        return None
    return {
        str(name): Change(old=pair.get("old"), new=pair.get("new"))
        for name, pair in value.items()
        if isinstance(pair, dict)
    }
