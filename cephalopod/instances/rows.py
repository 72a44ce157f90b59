"""The instance, declared once: the rows the read functions return.

The JSON API serializes these (``cephalopod.serialize``), the HTML pages render them (dates
stay ``datetime``), the export takes its main columns from ``InstanceItem``'s fields and the
OpenAPI document its component schemas from the types (``msgspec.json.schema_components``).
Field order is the JSON key order and the export's column order (both contracts).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal, get_args
from uuid import UUID

import msgspec

from cephalopod.audit.rows import AuditItem
from cephalopod.instances.models import CRAWL_STATUSES

#: A crawled field's display value (after its aggregation); None when it cannot be displayed.
DisplayValue = Annotated[
    str | int | float | bool | None,
    msgspec.Meta(
        description="A crawled field's display value (after its aggregation); null when the "
        "value cannot be displayed (a list or dict without aggregation)."
    ),
]
CrawlStatus = Literal["ok", "error", "never"]
if get_args(CrawlStatus) != CRAWL_STATUSES:
    raise RuntimeError("CrawlStatus must list instances.models.CRAWL_STATUSES")


class InstanceSummary(msgspec.Struct, frozen=True, kw_only=True):
    """What the registration protocol answers about a record (clients compare it with theirs).

    The item's record fields in the protocol's own, older key order (a contract).
    """

    uuid: UUID
    enabled: bool
    url: str
    contact: str
    email: str
    organization: str
    registered: datetime


class InstanceItem(msgspec.Struct, frozen=True, kw_only=True):
    """An instance of the admin list: the record, its latest crawl, its location."""

    uuid: UUID
    url: str
    organization: str
    contact: str
    email: str
    enabled: bool
    registered: datetime
    last_crawl: datetime | None
    last_success: datetime | None
    crawl_status: CrawlStatus
    crawl_error: str | None
    consecutive_failures: int
    country_code: str | None
    country_name: str | None
    latitude: float | None
    longitude: float | None
    duplicate_of: Annotated[
        UUID | None,
        msgspec.Meta(description="The earliest registered instance with the same normalised URL."),
    ]
    local_address: Annotated[
        bool,
        msgspec.Meta(
            description="The URL's host is a local or private address: a non-public IP "
            "literal, localhost, a .local, .internal or .localhost name, or a single-label "
            "name. Kept, but the crawler will not reach it (unless CRAWLER_ALLOWED_NETWORKS "
            "lets it) and it may point into the hub's own network."
        ),
    ]
    fields: Annotated[
        dict[str, DisplayValue],
        msgspec.Meta(description="Each visible crawled field's display value by field name."),
    ]


class HistoryEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One daily snapshot of an instance's crawled data (hidden fields removed)."""

    date: date
    data: dict[str, Any]


class InstanceDetail(InstanceItem, frozen=True, kw_only=True):
    """An instance with its raw crawled data, its history and its latest audit entries."""

    crawled_data: Annotated[
        dict[str, Any] | None, msgspec.Meta(description="Raw, hidden fields removed.")
    ]
    history: Annotated[
        list[HistoryEntry], msgspec.Meta(description="Daily snapshots, newest first, at most 90.")
    ]
    audit: Annotated[
        list[AuditItem],
        msgspec.Meta(
            description="Its latest audit entries, newest first, at most 20 (all of them: "
            "GET /api/admin/audit?instance=<uuid>)."
        ),
    ]


class InstancePage(msgspec.Struct, frozen=True, kw_only=True):
    """A page of the instance list and the number of all instances that match."""

    total: int
    page: int
    per_page: int
    items: list[InstanceItem]


class InstanceCounts(msgspec.Struct, frozen=True, kw_only=True):
    """The installed base at a glance: each number is the total of a list filter.

    ``registered``: every instance; ``active``: ``status=enabled``; ``ok``, ``error`` and
    ``never``: ``health=`` that value.
    """

    registered: int
    active: int
    ok: int
    error: int
    never: int


def item_columns() -> tuple[str, ...]:
    """Return the main columns of an instance (the export's, before the crawled fields)."""
    return tuple(name for name in InstanceItem.__struct_fields__ if name != "fields")
