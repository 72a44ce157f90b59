"""Validation of the registration protocol's fields: one declared rule per field.

Pure functions, no Flask: the public API, the admin API and the admin forms share them.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from email_validator import EmailNotValidError, validate_email

MAX_URL = 2048
MAX_TEXT = 255

#: The British spelling is accepted as an alias (older clients send it).
ALIASES = {"organisation": "organization"}
EDITABLE = ("url", "contact", "email", "organization")
REQUIRED = EDITABLE


class FieldError(ValueError):
    """One field that failed validation; ``field`` is the name the client sent."""

    def __init__(self, field: str, message: str, *, empty: bool = False) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.empty = empty


def _clean_text(field: str, value: object, max_len: int = MAX_TEXT) -> str:
    if not isinstance(value, str):
        raise FieldError(field, f"{field} must be a string")
    value = value.strip()
    if not value:
        raise FieldError(field, f"{field} must not be empty", empty=True)
    if len(value) > max_len:
        raise FieldError(field, f"{field} must be at most {max_len} characters")
    for char in value:
        category = unicodedata.category(char)
        if category == "Cc":
            raise FieldError(field, f"{field} must not contain control characters")
        if category == "Cs":
            raise FieldError(field, f"{field} must not contain unpaired surrogates")
    return value


def clean_url(value: Any, field: str = "url") -> str:
    """Return an absolute http(s) URL with a host and no credentials, without trailing ``/``."""
    text = _clean_text(field, value, MAX_URL)
    if any(c.isspace() for c in text):
        raise FieldError(field, f"{field} must not contain spaces")
    try:
        parts = urlsplit(text)
        port = parts.port  # raises for a bad port
    except ValueError:
        raise FieldError(field, f"{field} is not a valid URL") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise FieldError(field, f"{field} must start with http:// or https://")
    if not parts.hostname:
        raise FieldError(field, f"{field} must have a host name")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise FieldError(field, f"{field} must not contain user information")
    if parts.fragment or text.endswith("#"):
        raise FieldError(field, f"{field} must not contain a fragment (#...)")
    if port == 0:
        raise FieldError(field, f"{field} has an invalid port")
    text = text.rstrip("/")
    if not urlsplit(text).hostname:
        raise FieldError(field, f"{field} must have a host name")
    return text


def clean_email(value: Any, field: str = "email") -> str:
    """Return a syntactically valid e-mail address (no DNS look-up: the hub stays offline).

    The address is kept as sent, not normalised: Indico's admin page compares the stored value
    with its own using ``===`` and would report a lower-cased domain as "out of sync".
    """
    text = _clean_text(field, value)
    try:
        validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        raise FieldError(field, f"{field} is not a valid e-mail address: {exc}") from None
    return text


def clean_name(field: str) -> Callable[[Any], str]:
    """Return the validator of a plain text field."""
    return lambda value: _clean_text(field, value)


def clean_enabled(value: Any) -> bool:
    """Accept only a JSON boolean: ``"false"`` is truthy and would silently enable tracking."""
    if not isinstance(value, bool):
        raise FieldError("enabled", "enabled must be true or false")
    return value


VALIDATORS: dict[str, Callable[[Any], Any]] = {
    "url": clean_url,
    "contact": clean_name("contact"),
    "email": clean_email,
    "organization": clean_name("organization"),
    "enabled": clean_enabled,
}


@dataclass(frozen=True)
class UnexpectedKeysError(ValueError):
    """Keys that a PATCH does not know: the original answered "Unexpected data"."""

    data: dict[str, Any]


def _canonical(payload: Mapping[str, Any]) -> dict[str, tuple[str, Any]]:
    """Map canonical names to (name as sent, value), refusing a name sent twice."""
    out: dict[str, tuple[str, Any]] = {}
    for sent, value in payload.items():
        name = ALIASES.get(sent, sent)
        if name in out:
            raise FieldError(sent, f"{name} is given twice (as {out[name][0]} and {sent})")
        out[name] = (sent, value)
    return out


def validate_registration(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a POST body: every field required, unknown keys ignored (as the original)."""
    fields = _canonical({k: v for k, v in payload.items() if ALIASES.get(k, k) in REQUIRED})
    cleaned = {}
    for name in REQUIRED:
        if name not in fields or fields[name][1] is None:
            raise FieldError(name, f"{name} is required", empty=True)
        sent, value = fields[name]
        try:
            cleaned[name] = VALIDATORS[name](value)
        except FieldError as exc:
            raise FieldError(sent, exc.message, empty=exc.empty) from None
    return cleaned


def validate_update(payload: Mapping[str, Any], allowed: tuple[str, ...]) -> dict[str, Any]:
    """Validate a PATCH body: any subset of ``allowed``; ``null`` values are ignored."""
    unknown = {k: v for k, v in payload.items() if ALIASES.get(k, k) not in allowed}
    if unknown:
        raise UnexpectedKeysError(unknown)
    cleaned = {}
    for name, (sent, value) in _canonical(payload).items():
        if value is None:
            continue
        try:
            cleaned[name] = VALIDATORS[name](value)
        except FieldError as exc:
            raise FieldError(sent, exc.message, empty=exc.empty) from None
    return cleaned
