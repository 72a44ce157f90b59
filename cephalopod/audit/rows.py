"""The audit entry as the admin API answers it and the detail page shows it.

The OpenAPI document takes its component schemas from these types (``admin.openapi``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, get_args
from uuid import UUID

import msgspec

from cephalopod.audit.models import ACTIONS, ACTOR_KINDS

Action = Literal[
    "register",
    "update",
    "enable",
    "disable",
    "delete",
    "crawl",
    "login",
    "login_failed",
    "token_create",
    "token_revoke",
]
ActorKind = Literal["instance", "user", "token", "cli", "anonymous", "system"]
if get_args(Action) != ACTIONS or get_args(ActorKind) != ACTOR_KINDS:
    raise RuntimeError("Action and ActorKind must list audit.models.ACTIONS and ACTOR_KINDS")

#: A changed field's value: what the record held (text, a flag) or null.
Value = str | int | float | bool | None


class Change(msgspec.Struct, frozen=True, kw_only=True):
    """A field's value before and after the event (null: it had none, or has none now)."""

    old: Value
    new: Value


class AuditItem(msgspec.Struct, frozen=True, kw_only=True):
    """One recorded event."""

    id: int
    time: datetime
    action: Action
    actor_kind: Annotated[
        ActorKind,
        msgspec.Meta(
            description="instance: the instance itself (the registration protocol); user: a "
            "logged-in user; token: a user's API token; cli: the command line; anonymous: "
            "someone not logged in (a failed log-in); system: the application itself."
        ),
    ]
    actor: Annotated[
        str | None,
        msgspec.Meta(
            description="The user name (for a failed log-in: the name tried; for the "
            "command line: the shell user, when known); null for an instance."
        ),
    ]
    token_id: Annotated[
        int | None,
        msgspec.Meta(description="The API token that acted, or the one created or revoked."),
    ]
    address: Annotated[
        str | None,
        msgspec.Meta(description="The client's address (behind USE_PROXY, the proxy's word)."),
    ]
    instance_uuid: UUID | None
    instance_name: Annotated[
        str | None, msgspec.Meta(description="The instance's organization at the time.")
    ]
    instance_url: Annotated[str | None, msgspec.Meta(description="The instance's URL at the time.")]
    changes: Annotated[
        dict[str, Change] | None,
        msgspec.Meta(
            description="By field: its old and new value. A registration has only new "
            "values, a deletion only old ones; null when the event changed no field."
        ),
    ]


class AuditPage(msgspec.Struct, frozen=True, kw_only=True):
    """A page of the audit log (newest first) and the number of all entries that match."""

    total: int
    page: int
    per_page: int
    items: list[AuditItem]
