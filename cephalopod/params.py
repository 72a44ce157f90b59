"""Query parameters, validated without knowing who asked: the JSON API or an HTML page.

A wrong parameter raises ``ParameterError`` (its name and a message); the JSON API turns it
into its 400 (the error shape with ``parameter``), a page can show the message next to its
filters. Each endpoint's parser refuses unknown parameters, so a typo never passes silently.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

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
_COUNTRY = re.compile(r"[A-Za-z]{2}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
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
        page=integer(args, "page", 1, 1, 10**9),
        per_page=integer(args, "per_page", DEFAULT_PER_PAGE, 1, MAX_PER_PAGE),
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
