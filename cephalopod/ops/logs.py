"""Logs: one line per event, as text (the default), JSON or ``key=value`` (``LOG_FORMAT``).

Every line carries what is known of its context: the request id (``X-Request-ID``, taken
from the client or the proxy when it is a sane token, else made up, and sent back) and the
instance's uuid in a request or a task about one. Nothing secret reaches a line: the
configured secrets (``SECRET_KEY``, ``MAIL_PASSWORD``, the passwords in the database and
broker URLs), API tokens, bearer credentials and URL passwords are masked in the message,
the traceback and every field, whatever logger wrote them.

The process's entry point owns the root logger: the CLI configures it before it builds the
app, and ``create_app`` configures it from the settings when nobody else has (a bare
``gunicorn 'cephalopod.app:create_app()'``); a host that set up its own logging (pytest, an
embedding application) keeps it.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any
from urllib.parse import urlsplit

from flask import g, has_request_context

FORMATS = ("text", "json", "keyvalue")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
REQUEST_ID_HEADER = "X-Request-ID"
#: A client's request id is kept when it looks like one (a proxy's uuid, a trace id).
REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/+=@-]{0,127}")
#: Settings whose values are secrets, and settings that are URLs with a password in them.
SECRET_SETTINGS = ("SECRET_KEY", "MAIL_PASSWORD")
URL_SETTINGS = (
    "SQLALCHEMY_DATABASE_URI",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "RATELIMIT_STORAGE_URI",
)
MASK = "***"

#: Fields of a task's log lines (a request's live on ``g``).
_context: ContextVar[Mapping[str, Any] | None] = ContextVar("cephalopod_log_context", default=None)
_REQUEST_FIELDS = "cephalopod_log_fields"
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}


# --- context ------------------------------------------------------------------------------------


@contextmanager
def log_context(**fields: Any) -> Iterator[None]:
    """Add ``fields`` (e.g. ``instance_uuid``) to every line logged inside the block."""
    token = _context.set({**(_context.get() or {}), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def bind(**fields: Any) -> None:
    """Add ``fields`` to the rest of the current request's lines (outside one: nothing)."""
    if has_request_context():
        g.setdefault(_REQUEST_FIELDS, {}).update(fields)


def current_fields() -> dict[str, Any]:
    """The context of a line logged now: the task's, then the request's."""
    fields = dict(_context.get() or {})
    if has_request_context():
        fields.update(g.get(_REQUEST_FIELDS, {}))
    return fields


def request_id_from(header: str | None) -> str:
    """The client's request id when it is a sane token, else a new one."""
    if header and REQUEST_ID.fullmatch(header):
        return header
    return uuid.uuid4().hex


class ContextFilter(logging.Filter):
    """Put the context's fields on each record (a field given as ``extra=`` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        fields = current_fields()
        for key, value in fields.items():
            if key not in record.__dict__:
                setattr(record, key, value)
        record.context_keys = tuple(fields)
        return True


# --- secrets ------------------------------------------------------------------------------------

_PATTERNS = (
    (re.compile(r"\bceph_[A-Za-z0-9_-]{8,}"), "ceph_" + MASK),  # our API tokens
    # an Authorization header's credentials
    (re.compile(r"(?i)\b(bearer|basic)(\s+)[^\s,;\"']+"), r"\1\2" + MASK),
    # user:password@ in any URL
    (re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s/:@]*:)[^\s/@]+@"), r"\1" + MASK + "@"),
    # password=..., "token": "..."
    (
        re.compile(r"(?i)\b(password|passwd|secret|token)([\"']?\s*[=:]\s*[\"']?)[^\s&,;\"']+"),
        r"\1\2" + MASK,
    ),
)


class Redactor:
    """Masks secrets in text: the configured values, and anything shaped like a credential."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # longest first, so that a secret containing another is masked whole
        self.secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        for pattern, replacement in _PATTERNS:
            text = pattern.sub(replacement, text)
        return text


def secrets_of(config: Mapping[str, Any]) -> list[str]:
    """The secret values in a configuration: keys, passwords, and passwords inside URLs."""
    found = [config.get(key) for key in SECRET_SETTINGS]
    for key in URL_SETTINGS:
        url = config.get(key)
        if isinstance(url, str) and "://" in url:
            try:
                found.append(urlsplit(url).password)
            except ValueError:  # not a URL after all: nothing to find in it
                continue
    return [s.decode(errors="replace") if isinstance(s, bytes) else s for s in found if s]


def safe_url(url: str) -> str:
    """The URL without its password, to name it in a log line."""
    return Redactor()(url)


# --- formats ------------------------------------------------------------------------------------


def _one_line(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\r", "\\r").replace("\n", "\\n")


def _timestamp(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


class TextFormatter(logging.Formatter):
    """Today's human format; a request's or task's fields after the message, in brackets.

    A message is kept on one line (a stranger's organization name cannot forge a second
    one); a traceback still follows on its own lines, for a human to read.
    """

    def __init__(self, redact: Redactor) -> None:
        super().__init__(TEXT_FORMAT)
        self.redact = redact

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        record.message = _one_line(self.redact(record.message))
        line = super().formatMessage(record)
        keys = getattr(record, "context_keys", ())
        if keys:
            fields = " ".join(f"{k}={_kv_value(self.redact, getattr(record, k))}" for k in keys)
            line = f"{line} [{fields}]"
        return line

    def formatException(self, ei: Any) -> str:  # noqa: N802 - logging's name
        return self.redact(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:  # noqa: N802 - logging's name
        return self.redact(stack_info)


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """The fields of a record besides the standard ones: context and ``extra=``."""
    return {
        k: v
        for k, v in record.__dict__.items()
        if k not in _STANDARD and k != "context_keys" and not k.startswith("_")
    }


def _exception(formatter: logging.Formatter, record: logging.LogRecord) -> str | None:
    if record.exc_info:
        return formatter.formatException(record.exc_info)
    if record.exc_text:
        return record.exc_text
    return None


class _EntryFormatter(logging.Formatter):
    """What the one-line formats share: a record as one entry of named values, in order.

    The values are as logged; each format redacts them as it writes them.
    """

    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self.redact = redact

    def entry(self, record: logging.LogRecord) -> dict[str, Any]:
        """Time, level, logger, message, the fields, then the exception and stack if any."""
        entry: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_fields(record),
        }
        exception = _exception(self, record)
        if exception:
            entry["exception"] = exception
        if record.stack_info:
            entry["stack"] = record.stack_info
        return entry


class JsonFormatter(_EntryFormatter):
    """One JSON object per line: time, level, logger, message, the fields, the exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {key: self._clean(value) for key, value in self.entry(record).items()}
        return json.dumps(entry, default=str)  # ASCII: no line separator can hide in it

    def _clean(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.redact(value)
        if value is None or isinstance(value, bool | int | float):
            return value
        return self.redact(str(value))


_BARE = re.compile(r"[A-Za-z0-9._:/+@-]+")


def _kv_value(redact: Redactor, value: Any) -> str:
    text = redact(value if isinstance(value, str) else str(value))
    if _BARE.fullmatch(text):
        return text
    return '"' + _one_line(text).replace('"', '\\"').replace("\t", "\\t") + '"'


class KeyValueFormatter(_EntryFormatter):
    """``time=... level=... logger=... message="..." key=value ...``: one line (logfmt)."""

    def format(self, record: logging.LogRecord) -> str:
        pairs = self.entry(record)
        return " ".join(f"{key}={_kv_value(self.redact, value)}" for key, value in pairs.items())


def make_formatter(fmt: str, secrets: Iterable[str] = ()) -> logging.Formatter:
    """The formatter of a ``LOG_FORMAT``."""
    redact = Redactor(secrets)
    formatters = {"text": TextFormatter, "json": JsonFormatter, "keyvalue": KeyValueFormatter}
    return formatters[fmt](redact)


# --- the root logger ----------------------------------------------------------------------------


class _Handler(logging.StreamHandler[IO[str]]):
    """Ours, so that configuring again replaces it and nothing else."""


def configure_logging(
    level: str | int = "INFO",
    fmt: str = "text",
    secrets: Iterable[str] = (),
    stream: IO[str] | None = None,
) -> logging.Handler:
    """Send every logger's lines to ``stream`` (stderr) in ``fmt``; return the handler."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, _Handler):
            root.removeHandler(handler)
    handler = _Handler(stream if stream is not None else sys.stderr)
    handler.setFormatter(make_formatter(fmt, secrets))
    handler.addFilter(ContextFilter())
    root.addHandler(handler)
    root.setLevel(level)
    # alembic narrates every plugin it loads (seven lines in each web and worker process)
    debug = root.getEffectiveLevel() <= logging.DEBUG
    logging.getLogger("alembic").setLevel(logging.NOTSET if debug else logging.WARNING)
    return handler


def configured_by_us() -> bool:
    """True when the root logger's handler is ours (or nobody configured one yet)."""
    handlers = logging.getLogger().handlers
    return not handlers or any(isinstance(h, _Handler) for h in handlers)
