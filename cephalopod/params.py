"""Query parameters, validated without knowing who asked: the JSON API or an HTML page.

A wrong parameter raises ``ParameterError`` (its name and a message); the JSON API turns it
into its 400 (the error shape with ``parameter``), a page can show the message next to its
filters. Each endpoint's parser refuses unknown parameters, so a typo never passes silently.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Protocol, TypeVar
from uuid import UUID

from cephalopod.audit import queries as audit_queries
from cephalopod.audit.models import ACTIONS, ACTOR_KINDS, MAX_ACTOR
from cephalopod.instances.models import CRAWL_STATUSES
from cephalopod.instances.queries import (
    DEFAULT_PER_PAGE,
    MAX_PER_PAGE,
    ORDERS,
    SORTS,
    ListQuery,
)
from cephalopod.stats.fields import FieldRegistry, FieldSpec
from cephalopod.stats.queries import STATUSES, known_field
from cephalopod.stats.rows import TrendInterval
from cephalopod.stats.trend import INSTANCES, INTERVALS

FIELD_SORT = "field:"
MAX_QUERY = 200
#: The longest crawl error stored (the instances' crawl_error column)
MAX_ERROR = 500
LIST_PARAMETERS = (
    "status",
    "q",
    "country",
    "health",
    "error",
    "duplicates",
    "sort",
    "order",
    "page",
    "per_page",
)
#: The highest page number of a list (beyond, a page would be empty anyway)
MAX_PAGE = 999_999_999  # the most digits `integer` reads: nine
_COUNTRY = re.compile(r"[A-Za-z]{2}")
AUDIT_PARAMETERS = (
    "instance",
    "action",
    "actor",
    "actor_kind",
    "since",
    "until",
    "page",
    "per_page",
)
EARLIEST = datetime.min.replace(tzinfo=UTC)
LATEST = datetime.max.replace(tzinfo=UTC)
#: A UUID in its canonical text form (what the document's ``format: uuid`` accepts)
_UUID = re.compile(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}")
#: RFC 3339's date-time (the document's ``format: date-time``): the offset is required
_DATE_TIME = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]+)?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})"
)
#: The control characters no free-text parameter may hold (the OpenAPI patterns say so too)
CONTROL_CHARACTERS = r"\x00-\x1f\x7f-\x9f"
_CONTROL = re.compile(f"[{CONTROL_CHARACTERS}]")
#: A parameter's accepted values (a Literal's, or plain strings)
Choice = TypeVar("Choice", bound=str)


class Args(Protocol):
    """What is read of the query string (werkzeug's ``MultiDict`` is one)."""

    def getlist(self, key: str) -> list[str]: ...
    def __iter__(self) -> Iterator[str]: ...


class ParameterError(ValueError):
    """A query parameter is wrong: ``name`` says which, ``message`` why."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"Invalid parameter {name}: {message}")
        self.name = name
        self.message = message


# --- primitives ---------------------------------------------------------------------------------


def single(args: Args, name: str) -> str | None:
    """Return a parameter given at most once (None when absent)."""
    values = args.getlist(name)
    if len(values) > 1:
        raise ParameterError(name, "given more than once")
    return values[0] if values else None


def text(args: Args, name: str, longest: int) -> str:
    """Return a text parameter ("" when absent): at most ``longest`` characters, no control
    characters (PostgreSQL refuses a NUL in any text: a 500 otherwise)."""
    value = single(args, name) or ""
    if len(value) > longest:
        raise ParameterError(name, f"must be at most {longest} characters")
    if _CONTROL.search(value):
        raise ParameterError(name, "must not contain control characters")
    return value


def choice(args: Args, name: str, choices: Sequence[Choice], default: Choice) -> Choice:
    """Return a parameter that must be one of ``choices`` (``default`` when absent or empty)."""
    value = single(args, name)
    if value is None or value == "":
        return default
    for accepted in choices:  # the choice itself, so its Literal type carries on
        if value == accepted:
            return accepted
    raise ParameterError(name, f"must be one of {', '.join(choices)}")


def integer(args: Args, name: str, default: int, low: int, high: int) -> int:
    """Return a whole number between ``low`` and ``high``."""
    value = single(args, name)
    if value is None or value == "":
        return default
    if not value.isascii() or not value.isdigit() or len(value) > 9:
        raise ParameterError(name, "must be a whole number")
    number = int(value)
    if not low <= number <= high:
        raise ParameterError(name, f"must be between {low} and {high}")
    return number


def uuid_value(args: Args, name: str) -> UUID | None:
    """Return a UUID in its canonical form (None when absent or empty)."""
    value = single(args, name)
    if not value:
        return None
    if not _UUID.fullmatch(value):
        raise ParameterError(name, "must be a UUID like 123e4567-e89b-42d3-a456-426614174000")
    return UUID(value)


def date_time(args: Args, name: str) -> datetime | None:
    """Return an RFC 3339 date-time with its offset, in UTC (None when absent or empty).

    Beyond the years a timestamp can hold, the earliest or latest one: a bound so far away
    filters nothing out. A leap second (``:60``) is the next second's start.
    """
    value = single(args, name)
    if not value:
        return None
    match = _DATE_TIME.fullmatch(value)
    if match is None:
        raise ParameterError(name, "must be an RFC 3339 date-time like 2026-01-31T12:00:00Z")
    year, month, day, hour, minute, second = (int(part) for part in match.groups()[:6])
    fraction, offset = match.group(7) or "", match.group(8)
    try:
        if not (0 <= hour <= 23 and 0 <= minute <= 59 and 0 <= second <= 60):
            raise ValueError("time out of range")
        zone: timezone = UTC
        if offset not in ("Z", "z"):
            sign = -1 if offset[0] == "-" else 1
            hours, minutes = int(offset[1:3]), int(offset[4:6])
            if hours > 23 or minutes > 59:
                raise ValueError("offset out of range")
            zone = timezone(sign * timedelta(hours=hours, minutes=minutes))
        if year == 0:
            return EARLIEST
        micro = int((fraction[1:] + "000000")[:6]) if fraction else 0
        moment = datetime(year, month, day, hour, minute, min(second, 59), micro, tzinfo=zone)
    except ValueError:
        raise ParameterError(name, "is not a valid date and time") from None
    if second == 60:
        moment += timedelta(seconds=1) - timedelta(microseconds=micro)
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # within a day of the first or the last year
        return EARLIEST if moment.year == 1 else LATEST


def reject_unknown(args: Args, known: Iterable[str]) -> None:
    """Refuse parameters the endpoint does not know (a typo must not pass silently)."""
    known = tuple(known)
    for name in args:
        if name not in known:
            raise ParameterError(name, "unknown parameter")


# --- the endpoints' parameters ------------------------------------------------------------------


def list_query(args: Args, registry: FieldRegistry, extra: Sequence[str] = ()) -> ListQuery:
    """Validate the list's parameters (``extra``: more that the caller reads itself)."""
    reject_unknown(args, (*LIST_PARAMETERS, *extra))
    q = text(args, "q", MAX_QUERY).strip()
    country = single(args, "country") or None
    if country is not None:
        if not _COUNTRY.fullmatch(country):
            raise ParameterError("country", "must be a two-letter ISO 3166 country code")
        country = country.upper()
    error = text(args, "error", MAX_ERROR) or None
    duplicates = single(args, "duplicates") or "0"
    if duplicates not in ("0", "1", "true", "false"):
        raise ParameterError("duplicates", "must be 1 or 0")
    sort = single(args, "sort") or "organization"
    field = None
    if sort.startswith(FIELD_SORT):
        field = sort.removeprefix(FIELD_SORT)
        if not field or not known_field(field, registry):
            raise ParameterError("sort", f"no visible crawled field is named {field!r}")
    elif sort not in SORTS:
        raise ParameterError("sort", f"must be one of {', '.join(SORTS)} or field:<name>")
    return ListQuery(
        status=choice(args, "status", STATUSES, "all"),
        q=q,
        country=country,
        health=choice(args, "health", CRAWL_STATUSES, "") or None,
        error=error,
        duplicates=duplicates in ("1", "true"),
        sort="field" if field else sort,
        field=field,
        order=choice(args, "order", ORDERS, "asc"),
        page=integer(args, "page", 1, 1, MAX_PAGE),
        per_page=integer(args, "per_page", DEFAULT_PER_PAGE, 1, MAX_PER_PAGE),
    )


def audit_query(args: Args) -> audit_queries.AuditQuery:
    """Validate the audit log's filters and page."""
    reject_unknown(args, AUDIT_PARAMETERS)
    actor = single(args, "actor") or None
    if actor is not None:
        if len(actor) > MAX_ACTOR:
            raise ParameterError("actor", f"must be at most {MAX_ACTOR} characters")
        if _CONTROL.search(actor):
            raise ParameterError("actor", "must not contain control characters")
    return audit_queries.AuditQuery(
        instance=uuid_value(args, "instance"),
        action=choice(args, "action", ACTIONS, "") or None,
        actor=actor,
        actor_kind=choice(args, "actor_kind", ACTOR_KINDS, "") or None,
        since=date_time(args, "since"),
        until=date_time(args, "until"),
        page=integer(args, "page", 1, 1, MAX_PAGE),
        per_page=integer(
            args, "per_page", audit_queries.DEFAULT_PER_PAGE, 1, audit_queries.MAX_PER_PAGE
        ),
    )


def statistics_status(args: Args) -> str:
    """Validate the statistics' only parameter: which instances are counted."""
    reject_unknown(args, ("status",))
    return choice(args, "status", STATUSES, "enabled")


@dataclass(frozen=True)
class TrendQuery:
    """A trend's validated parameters: the field (spec None: active instances), period, status."""

    name: str
    spec: FieldSpec | None
    interval: TrendInterval
    status: str


def trend_query(args: Args, registry: FieldRegistry) -> TrendQuery:
    """Validate a trend's parameters: a visible crawled field or ``instances``."""
    reject_unknown(args, ("field", "interval", "status"))
    name = single(args, "field")
    if not name:
        raise ParameterError("field", f"is required: a crawled field's name or {INSTANCES!r}")
    if name != INSTANCES and not known_field(name, registry):
        raise ParameterError("field", f"no visible crawled field is named {name!r}")
    interval = choice(args, "interval", INTERVALS, "month")
    status = choice(args, "status", STATUSES, "enabled")
    spec = None if name == INSTANCES else registry.spec(name)
    return TrendQuery(name=name, spec=spec, interval=interval, status=status)
