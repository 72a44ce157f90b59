"""The audit entries: one row per recorded event, readable without the instance it names."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from cephalopod.db import JSONType, Model, UTCDateTime, intpk, utcnow

#: What an entry records (the API's ``action`` filter takes these).
INSTANCE_ACTIONS = ("register", "update", "enable", "disable", "delete", "crawl")
ACCOUNT_ACTIONS = ("login", "login_failed", "token_create", "token_revoke")
ACTIONS = (*INSTANCE_ACTIONS, *ACCOUNT_ACTIONS)
#: Who acted: the instance itself (the registration protocol), a user logged in (a session),
#: a user's API token, the command line, someone not logged in (a failed log-in), or the
#: application itself (code run outside any request or command that said who it was).
ACTOR_KINDS = ("instance", "user", "token", "cli", "anonymous", "system")
MAX_ACTOR = 255
MAX_ADDRESS = 45  # the longest IPv6 text form
MAX_INSTANCE_NAME = 255
MAX_INSTANCE_URL = 2048


class AuditEntry(Model):
    """One recorded event: when, who (and from where), what, on which instance, old → new.

    Deliberately no foreign key to ``instances``: an instance's entries outlive it (deleting
    it must not delete its history), so each keeps the instance's uuid, organization and URL
    as they were. Inserted with one Core INSERT in the transaction of the change it records.
    """

    __tablename__ = "audit_entries"
    __table_args__ = (
        # an instance's own history, newest first (its detail page and API item)
        sa.Index("ix_audit_entries_instance_uuid_created_at", "instance_uuid", "created_at"),
    )

    id: Mapped[intpk]
    #: indexed: the log's order, its since/until filters and the retention's pruning
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    action: Mapped[str] = mapped_column(sa.String(20))
    actor_kind: Mapped[str] = mapped_column(sa.String(10))
    #: the user name (for a failed log-in: the name tried); the shell user for the CLI
    actor: Mapped[str | None] = mapped_column(sa.String(MAX_ACTOR))
    #: the API token that authenticated the actor, or the token created or revoked
    token_id: Mapped[int | None]
    #: the client address (as the reverse proxy gave it when USE_PROXY is on)
    address: Mapped[str | None] = mapped_column(sa.String(MAX_ADDRESS))
    instance_uuid: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid())
    instance_name: Mapped[str | None] = mapped_column(sa.String(MAX_INSTANCE_NAME))
    instance_url: Mapped[str | None] = mapped_column(sa.String(MAX_INSTANCE_URL))
    #: ``{field: {"old": value, "new": value}}``: what the event changed (a registration:
    #: only new values; a deletion: only old ones)
    changes: Mapped[dict[str, Any] | None] = mapped_column(JSONType)

    def __repr__(self) -> str:
        return f"<AuditEntry {self.id} {self.action} by {self.actor_kind} {self.actor!r}>"
