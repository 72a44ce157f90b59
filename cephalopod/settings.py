"""Settings: one table of defaults, a Python-syntax file, validated once at startup.

The file is executed like Flask's ``from_pyfile`` so that settings written for the original
project (``from datetime import timedelta`` and all) load unchanged. Validation turns every
mistake into a :class:`SettingsError` whose message names the key, the bad value and the
accepted values; the CLI prints it and exits with status 2.
"""

from __future__ import annotations

import ast
import difflib
import ipaddress
import logging
import math
import os
import secrets
import sys
import types
import zoneinfo
from collections.abc import Mapping
from datetime import timedelta
from email.utils import formataddr, parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import babel

from cephalopod.schedule import KNOWN_TASKS
from cephalopod.stats.fields import FieldRegistry, FieldSettingsError, parse_field_settings

log = logging.getLogger(__name__)

#: Every setting with its default and the one-line reason it exists. ``settings.cfg.example``
#: documents each of them (a test checks that).
DEFAULTS: dict[str, Any] = {
    # Signs sessions and CSRF tokens. Empty: a strong key is generated once and kept in the
    # instance folder (mode 0600).
    "SECRET_KEY": "",
    # Timezone in which every date is shown.
    "BABEL_DEFAULT_TIMEZONE": "UTC",
    # Locale that formats every date and number shown.
    "BABEL_DEFAULT_LOCALE": "en_GB",
    # Name shown in the page titles and the navigation bar.
    "APP_NAME": "Cephalopod",
    # Serve HTTPS with this certificate and key (both must be set).
    "SSL_CERT": None,
    "SSL_KEY": None,
    # Database URL; empty means the embedded SQLite file in the instance folder.
    "SQLALCHEMY_DATABASE_URI": None,
    # Celery broker (e.g. redis://127.0.0.1:6379/0); empty means the in-process scheduler.
    "CELERY_BROKER_URL": None,
    # Celery result backend; empty means none (results are stored in the database).
    "CELERY_RESULT_BACKEND": None,
    # Periodic work, read by Celery beat and by the in-process scheduler alike.
    "CELERYBEAT_SCHEDULE": {
        "crawl-all": {"task": "cephalopod.crawler.crawl_all", "schedule": timedelta(days=1)},
    },
    # JSON endpoints fetched from every instance: [{"url": "/system-info", "headers": {...}}].
    "CRAWLING_ENDPOINTS": [],
    # Per crawled field: label, chart options, aggregation; None hides the field everywhere.
    "CRAWLED_FIELDS_SETTINGS": {},
    # Simultaneous instance crawls.
    "CRAWLER_CONCURRENCY": 100,
    # Seconds to establish a connection to an instance.
    "CRAWLER_CONNECT_TIMEOUT": 5.0,
    # Seconds for a whole request including the body (cuts off servers that dribble bytes).
    "CRAWLER_TOTAL_TIMEOUT": 15.0,
    # Largest reply read from an instance, in bytes; reading stops beyond it.
    "CRAWLER_MAX_BYTES": 1024 * 1024,
    # Redirects followed per request.
    "CRAWLER_MAX_REDIRECTS": 3,
    # Deepest JSON nesting accepted in a reply.
    "CRAWLER_MAX_DEPTH": 32,
    # Most object keys accepted in a reply (all levels together).
    "CRAWLER_MAX_KEYS": 10000,
    # Networks the crawler may reach although they are not public (CIDR strings).
    "CRAWLER_ALLOWED_NETWORKS": [],
    # Crawl results written to the database per transaction.
    "CRAWLER_BATCH_SIZE": 500,
    # Instances per Celery task when a crawl of all instances fans out to workers.
    "CRAWLER_CHUNK_SIZE": 500,
    # User-Agent header sent to instances.
    "CRAWLER_USER_AGENT": "Cephalopod-crawler/1.0",
    # Days of daily crawl snapshots kept for trends.
    "HISTORY_RETENTION_DAYS": 730,
    # Days of audit log entries kept (registrations, changes, deletions, crawls, log-ins).
    "AUDIT_RETENTION_DAYS": 730,
    # Path or list of paths of .mmdb files (MaxMind or DB-IP) that replace the embedded data.
    "GEOIP_DATABASE": None,
    # Rate limit of registrations per client address (Flask-Limiter syntax).
    "REGISTRATION_RATE_LIMIT": "20 per hour",
    # Rate limit of login attempts per client address.
    "LOGIN_RATE_LIMIT": "10 per minute",
    # Failed login attempts per user name, from every address together.
    "LOGIN_ACCOUNT_RATE_LIMIT": "20 per hour",
    # Where rate-limit counters live: memory:// or redis://host:port/db.
    "RATELIMIT_STORAGE_URI": "memory://",
    # Trust X-Forwarded-For from one reverse proxy in front of the app.
    "USE_PROXY": False,
    # Serve aggregate statistics (no instance details) at /api/statistics without login.
    "PUBLIC_STATISTICS": False,
    # --- operations (cephalopod.ops): validated by _validate_operations ---
    # Client addresses (CIDR) that may read /metrics without a token.
    "METRICS_ALLOWED_NETWORKS": ["127.0.0.0/8", "::1/128"],
    # Log lines as 'text' (for people), 'json' or 'keyvalue' (for log collectors).
    "LOG_FORMAT": "text",
    # Least severe level logged: DEBUG, INFO, WARNING, ERROR or CRITICAL.
    "LOG_LEVEL": "INFO",
    # The mail server that sends the notifications (cephalopod.notify), and how to log in.
    "MAIL_SERVER": "localhost",
    "MAIL_PORT": 25,
    "MAIL_USE_TLS": False,  # STARTTLS
    "MAIL_USE_SSL": False,  # TLS from the start (SMTPS, usually port 465)
    "MAIL_USERNAME": None,
    "MAIL_PASSWORD": None,
    # The From of the notifications: 'hub@example.org' or 'Cephalopod <hub@example.org>'.
    "MAIL_DEFAULT_SENDER": None,
    # Who is told of new registrations; empty: nobody, no mail is sent.
    "NOTIFY_EMAILS": [],
    # 'each': a mail per registration; 'daily': one digest a day of the day's registrations.
    "NOTIFY_MODE": "each",
    # Mail when an instance fails after this many successful crawls in a row; 0/None: never.
    "NOTIFY_FAILING_AFTER": None,
    # The hub's own address (https://hub.example.org), for the links in the mails.
    "BASE_URL": None,
}

#: Prefixes of keys that belong to Flask or its extensions: passed through without a warning.
PASSTHROUGH_PREFIXES = (
    "SQLALCHEMY_",
    "SESSION_",
    "REMEMBER_COOKIE_",
    "RATELIMIT_",
    "WTF_",
    "BABEL_",
    "CELERY",
    "MAX_CONTENT_LENGTH",
    "PERMANENT_SESSION_LIFETIME",
    "PREFERRED_URL_SCHEME",
    "SERVER_NAME",
    "TESTING",
    "DEBUG",
    "PROPAGATE_EXCEPTIONS",
    "TRAP_",
    "JSON_",
    "TEMPLATES_AUTO_RELOAD",
    "SEND_FILE_MAX_AGE_DEFAULT",
    "LOGIN_DISABLED",
)

SETTINGS_ENV = "CEPHALOPOD_SETTINGS"
INSTANCE_ENV = "CEPHALOPOD_INSTANCE_PATH"
PACKAGE_DIR = Path(__file__).resolve().parent


class SettingsError(Exception):
    """A setting that cannot be used; the message is meant for the person who wrote it.

    ``key``: the top-level setting at fault, so that the message can name its line.
    """

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


def instance_path() -> Path:
    """Return the folder holding the embedded database, secret key and geolocation data."""
    return Path(os.environ.get(INSTANCE_ENV) or Path.cwd() / "instance").resolve()


def find_settings_file() -> Path | None:
    """Return the settings file in the documented search order, or None for built-in defaults."""
    env = os.environ.get(SETTINGS_ENV)
    if env:
        path = Path(env)
        if not path.is_file():
            raise SettingsError(f"{SETTINGS_ENV} points to {env!r}, which is not a readable file")
        return path
    for candidate in (Path.cwd() / "settings.cfg", PACKAGE_DIR / "settings.cfg"):
        if candidate.is_file():
            return candidate
    return None


def read_settings_file(path: Path) -> dict[str, Any]:
    """Execute a Python-syntax settings file and return its upper-case names.

    Whatever goes wrong (the file unreadable, its syntax, an error its code raises, even a
    ``sys.exit`` in it) becomes a SettingsError naming the file and, where known, the line.
    """
    module = types.ModuleType("cephalopod_settings")
    module.__file__ = str(path)
    try:
        code = compile(path.read_bytes(), str(path), "exec")
        exec(code, module.__dict__)  # noqa: S102 - the settings file is trusted configuration
    except SyntaxError as exc:
        where = f"syntax error on line {exc.lineno}" if exc.lineno else "syntax error"
        raise SettingsError(f"{path}: {where}: {exc.msg}") from None
    except OSError as exc:
        if exc.filename == str(path):
            raise SettingsError(f"{path}: cannot be read: {exc.strerror}") from None
        raise SettingsError(f"{_where(path, exc)}{type(exc).__name__}: {exc}") from None
    except (Exception, SystemExit) as exc:  # any error raised by the file's own code
        raise SettingsError(f"{_where(path, exc)}{type(exc).__name__}: {exc}") from None
    return {k: v for k, v in vars(module).items() if k.isupper()}


def _where(path: Path, exc: BaseException) -> str:
    """``path, line N: `` of the file's own line where the exception was raised."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == str(path):
            line = tb.tb_lineno
        tb = tb.tb_next
    return f"{path}, line {line}: " if line else f"{path}: "


def assignment_lines(path: Path) -> dict[str, int]:
    """Map each top-level name the file assigns to the line of its last assignment."""
    try:
        tree = ast.parse(path.read_bytes(), str(path))
    except (SyntaxError, ValueError, OSError):  # pragma: no cover - read_settings_file said so
        return {}
    lines: dict[str, int] = {}
    for node in tree.body:
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign | ast.AugAssign):
            targets = [node.target]
        for target in targets:
            for name in ast.walk(target):
                if isinstance(name, ast.Name):
                    lines[name.id] = node.lineno
    return lines


def load_settings(
    path: Path | None = None, overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Merge defaults, the settings file and overrides, then validate the result."""
    return load(path, overrides)[0]


def load(
    path: Path | None = None, overrides: Mapping[str, Any] | None = None
) -> tuple[dict[str, Any], FieldRegistry]:
    """Return the validated configuration and the field registry that validation parsed."""
    config = {k: _copy_default(v) for k, v in DEFAULTS.items()}
    source = Path(path) if path is not None else find_settings_file()
    from_file: dict[str, int] = {}  # the keys the file sets (not overridden) → their line
    if source is not None:
        values = read_settings_file(source)
        config.update(values)
        lines = assignment_lines(source)
        from_file = {key: lines.get(key, 0) for key in values}
    if overrides:
        config.update(overrides)
        for key in overrides:
            from_file.pop(key, None)
    for key in sorted(config):
        if key not in DEFAULTS and not key.startswith(PASSTHROUGH_PREFIXES):
            _warn_unknown(key, source, from_file)
    try:
        registry = validate(config)
    except SettingsError as exc:
        if source is None or exc.key not in from_file:
            raise
        line = from_file[exc.key]
        where = f"{source}, line {line}" if line else str(source)
        raise SettingsError(f"{where}: {exc}", exc.key) from None
    config["_SETTINGS_FILE"] = str(source) if source else None
    return config, registry


def _warn_unknown(key: str, source: Path | None, from_file: Mapping[str, int]) -> None:
    """Warn of a key nothing reads, with its line and the known key it may be a typo of."""
    where = "overrides"
    if source is not None and key in from_file:
        where = f"{source}, line {from_file[key]}" if from_file[key] else str(source)
    close = difflib.get_close_matches(key, DEFAULTS, n=1, cutoff=0.8)
    hint = f" (did you mean {close[0]}?)" if close else ""
    log.warning("Unknown setting %s in %s is ignored%s", key, where, hint)


def _copy_default(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy_default(v) for k, v in value.items()}
    if isinstance(value, list):
        return list(value)
    return value


def _fail(key: str, value: Any, accepted: str) -> SettingsError:
    top = key.split("[", 1)[0]
    return SettingsError(f"{key} = {_short(value)} is invalid; accepted: {accepted}", top)


def _short(value: Any, limit: int = 200) -> str:
    """The value's repr, cut: a message is one line someone reads."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_type(
    config: Mapping[str, Any], key: str, types_: tuple[type, ...], accepted: str
) -> None:
    value = config[key]
    # bool is an int subclass: a True where a number is expected is a mistake, not 1
    if isinstance(value, bool) and bool not in types_:
        raise _fail(key, value, accepted)
    if not isinstance(value, types_):
        raise _fail(key, value, accepted)


def validate(config: dict[str, Any]) -> FieldRegistry:
    """Check every known key; normalise the ones that have an easier form for the code.

    Returns the parsed field settings, kept by the app (they are parsed once).
    """
    for key in ("APP_NAME", "BABEL_DEFAULT_TIMEZONE", "BABEL_DEFAULT_LOCALE", "CRAWLER_USER_AGENT"):
        _check_type(config, key, (str,), "a non-empty string")
        if not config[key].strip() or not config[key].isprintable():
            raise _fail(key, config[key], "a non-empty string without control characters")
    _check_type(config, "SECRET_KEY", (str, bytes, type(None)), "a string (empty: generated)")
    try:
        zoneinfo.ZoneInfo(config["BABEL_DEFAULT_TIMEZONE"])
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise _fail(
            "BABEL_DEFAULT_TIMEZONE", config["BABEL_DEFAULT_TIMEZONE"], "an IANA zone like 'UTC'"
        ) from None
    try:
        babel.Locale.parse(config["BABEL_DEFAULT_LOCALE"])
    except (ValueError, babel.UnknownLocaleError):
        raise _fail(
            "BABEL_DEFAULT_LOCALE", config["BABEL_DEFAULT_LOCALE"], "a locale like 'en_GB'"
        ) from None
    for key in ("SSL_CERT", "SSL_KEY", "SQLALCHEMY_DATABASE_URI", "CELERY_BROKER_URL"):
        _check_type(config, key, (str, type(None)), "a string or None")
    for key in ("SSL_CERT", "SSL_KEY"):
        if config[key] and not Path(config[key]).is_file():
            raise _fail(key, config[key], "the path of a readable file")
    if bool(config["SSL_CERT"]) != bool(config["SSL_KEY"]):
        raise SettingsError(
            "SSL_CERT and SSL_KEY must be set together (or both left empty)",
            "SSL_CERT" if config["SSL_CERT"] else "SSL_KEY",
        )
    for key in ("USE_PROXY", "PUBLIC_STATISTICS"):
        _check_type(config, key, (bool,), "True or False")
    for key in (*RATE_LIMITS, "RATELIMIT_STORAGE_URI"):
        _check_type(config, key, (str,), "a string")
    _validate_rate_limits(config)
    _validate_database_url(config)
    _validate_flask_keys(config)
    _validate_numbers(config)
    _validate_networks(config)
    config["CRAWLING_ENDPOINTS"] = parse_endpoints(config["CRAWLING_ENDPOINTS"])
    registry = _validate_fields(config)
    _validate_schedule(config)
    _validate_operations(config)
    geoip = config["GEOIP_DATABASE"]
    if geoip is not None and not (
        isinstance(geoip, str)
        or (isinstance(geoip, list | tuple) and all(isinstance(p, str) for p in geoip))
    ):
        raise _fail("GEOIP_DATABASE", geoip, "a path or a list of paths to .mmdb files")
    return registry


RATE_LIMITS = ("REGISTRATION_RATE_LIMIT", "LOGIN_RATE_LIMIT", "LOGIN_ACCOUNT_RATE_LIMIT")


def _validate_rate_limits(config: Mapping[str, Any]) -> None:
    # limits is Flask-Limiter's: imported only when settings are loaded, not for --help
    from limits import parse_many
    from limits.storage import SCHEMES  # type: ignore[attr-defined]  # (not in its __all__)

    for key in RATE_LIMITS:
        try:
            parse_many(config[key])
        except ValueError:
            raise _fail(key, config[key], "a limit like '20 per hour'") from None
    storage = config["RATELIMIT_STORAGE_URI"]
    if storage.partition("://")[0] not in SCHEMES or "://" not in storage:
        raise _fail("RATELIMIT_STORAGE_URI", storage, "'memory://' or 'redis://host:port/db'")


def _validate_database_url(config: Mapping[str, Any]) -> None:
    url = config["SQLALCHEMY_DATABASE_URI"]
    if not url:
        return
    # SQLAlchemy costs a fifth of a second to import: only when settings are loaded
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    accepted = "a database URL like 'postgresql://user@host/db' or 'sqlite:///path'"
    try:
        make_url(url).get_dialect()
    except (ArgumentError, NoSuchModuleError, ValueError):
        raise _fail("SQLALCHEMY_DATABASE_URI", url, accepted) from None


#: Flask's and its extensions' keys that the app reads itself or that fail late when wrong
#: (a request, a session save): checked when set, all others pass through unchecked.
_FLASK_KEYS: dict[str, tuple[tuple[type, ...], str]] = {
    "MAX_CONTENT_LENGTH": ((int, type(None)), "a number of bytes, or None"),
    "PERMANENT_SESSION_LIFETIME": ((int, timedelta), "seconds or a timedelta"),
    "SQLALCHEMY_ENGINE_OPTIONS": ((Mapping,), "a dictionary of create_engine options"),
    "SQLALCHEMY_ECHO": ((bool,), "True or False"),
    "SESSION_COOKIE_SECURE": ((bool,), "True or False"),
    "SESSION_COOKIE_HTTPONLY": ((bool,), "True or False"),
    "REMEMBER_COOKIE_SECURE": ((bool,), "True or False"),
    "RATELIMIT_ENABLED": ((bool,), "True or False"),
    "WTF_CSRF_ENABLED": ((bool,), "True or False"),
    "TESTING": ((bool,), "True or False"),
    "DEBUG": ((bool,), "True or False"),
}


def _validate_flask_keys(config: Mapping[str, Any]) -> None:
    for key, (types_, accepted) in _FLASK_KEYS.items():
        if key in config:
            _check_type(config, key, types_, accepted)
    size = config.get("MAX_CONTENT_LENGTH")
    if size is not None and size < 1:
        raise _fail("MAX_CONTENT_LENGTH", size, "a positive number of bytes, or None")


_NUMBERS: dict[str, tuple[type | tuple[type, ...], float, float]] = {
    "CRAWLER_CONCURRENCY": (int, 1, 10000),
    "CRAWLER_CONNECT_TIMEOUT": ((int, float), 0.1, 600),
    "CRAWLER_TOTAL_TIMEOUT": ((int, float), 0.1, 3600),
    "CRAWLER_MAX_BYTES": (int, 1024, 1024**3),
    "CRAWLER_MAX_REDIRECTS": (int, 0, 20),
    "CRAWLER_MAX_DEPTH": (int, 1, 512),
    "CRAWLER_MAX_KEYS": (int, 1, 10_000_000),
    "CRAWLER_BATCH_SIZE": (int, 1, 100_000),
    "CRAWLER_CHUNK_SIZE": (int, 1, 100_000),
    "HISTORY_RETENTION_DAYS": (int, 1, 100_000),
    "AUDIT_RETENTION_DAYS": (int, 1, 100_000),
}


def _validate_numbers(config: Mapping[str, Any]) -> None:
    for key, (type_, low, high) in _NUMBERS.items():
        types_ = type_ if isinstance(type_, tuple) else (type_,)
        kind = "an integer" if types_ == (int,) else "a number"
        accepted = f"{kind} from {low:g} to {high:g}"
        _check_type(config, key, types_, accepted)
        if not low <= config[key] <= high:
            raise _fail(key, config[key], accepted)


def _validate_networks(config: dict[str, Any], key: str = "CRAWLER_ALLOWED_NETWORKS") -> None:
    value = config[key]
    accepted = "a list of CIDR strings like ['127.0.0.0/8']"
    if not isinstance(value, list | tuple):
        raise _fail(key, value, accepted)
    for item in value:
        try:
            ipaddress.ip_network(item, strict=False)
        except (TypeError, ValueError):
            raise _fail(key, item, accepted) from None
    config[key] = [str(n) for n in value]


def parse_endpoints(value: Any) -> list[dict[str, Any]]:
    """Return CRAWLING_ENDPOINTS as ``[{"url", "headers"}]`` dicts; entries without url skip."""
    accepted = "a list of {'url': '/path', 'headers': {'Name': 'value'}} dictionaries"
    if not isinstance(value, list | tuple):
        raise _fail("CRAWLING_ENDPOINTS", value, accepted)
    endpoints = []
    for index, entry in enumerate(value):
        key = f"CRAWLING_ENDPOINTS[{index}]"
        if not isinstance(entry, Mapping):
            raise _fail(key, entry, accepted)
        unknown = set(entry) - {"url", "headers"}
        if unknown:
            raise _fail(key, entry, "only the keys 'url' and 'headers'")
        url = entry.get("url")
        if url is None or url == "":
            # as the original: an entry without a url is skipped
            log.warning("%s has no url and is skipped", key)
            continue
        if not isinstance(url, str) or any(c in url for c in "\r\n\t ") or "://" in url:
            raise _fail(f"{key}['url']", url, "a path appended to the instance URL, like '/info'")
        headers = entry.get("headers") or {}
        if not isinstance(headers, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) and "\n" not in v and "\r" not in v
            for k, v in headers.items()
        ):
            raise _fail(f"{key}['headers']", headers, "a dictionary of string header values")
        endpoints.append({"url": url, "headers": dict(headers)})
    return endpoints


def _validate_fields(config: Mapping[str, Any]) -> FieldRegistry:
    value = config["CRAWLED_FIELDS_SETTINGS"]
    if not isinstance(value, Mapping):
        raise _fail("CRAWLED_FIELDS_SETTINGS", value, "a dictionary of field name → options")
    try:
        return parse_field_settings(value)
    except FieldSettingsError as exc:
        raise SettingsError(str(exc), "CRAWLED_FIELDS_SETTINGS") from None


#: What a Celery beat entry may hold (``options`` and ``relative`` are Celery's own).
_ENTRY_KEYS = ("task", "schedule", "args", "kwargs", "options", "relative")


def _validate_schedule(config: Mapping[str, Any]) -> None:
    # a crontab in the settings file imported Celery's schedules already; without one,
    # importing Celery here would cost every command a fifth of a second for nothing
    celery_schedules = sys.modules.get("celery.schedules")
    schedule_types: tuple[type, ...] = (timedelta,)
    if celery_schedules is not None:
        schedule_types += (celery_schedules.BaseSchedule,)  # schedule, crontab, solar
    value = config["CELERYBEAT_SCHEDULE"]
    accepted = "a dictionary of name → {'task': ..., 'schedule': timedelta or crontab}"
    if not isinstance(value, Mapping):
        raise _fail("CELERYBEAT_SCHEDULE", value, accepted)
    for name, entry in value.items():
        key = f"CELERYBEAT_SCHEDULE[{name!r}]"
        if not isinstance(entry, Mapping) or "task" not in entry or "schedule" not in entry:
            raise _fail(key, entry, accepted)
        unknown = set(entry) - set(_ENTRY_KEYS)
        if unknown:
            raise _fail(key, entry, "only the keys " + ", ".join(map(repr, _ENTRY_KEYS)))
        task = entry["task"]
        if not isinstance(task, str) or task not in KNOWN_TASKS:
            raise _fail(f"{key}['task']", task, ", ".join(sorted(KNOWN_TASKS)))
        sched = entry["schedule"]
        seconds = isinstance(sched, int | float) and not isinstance(sched, bool)
        if not (seconds or isinstance(sched, schedule_types)):
            raise _fail(f"{key}['schedule']", sched, "a timedelta, seconds, or a celery crontab")
        if (seconds and not (math.isfinite(sched) and sched >= 1)) or (
            isinstance(sched, timedelta) and sched.total_seconds() < 1
        ):
            raise _fail(f"{key}['schedule']", sched, "an interval of at least a second")
        for option, types_ in (("args", (list, tuple)), ("kwargs", (Mapping,))):
            if option in entry and not isinstance(entry[option], types_):
                raise _fail(f"{key}[{option!r}]", entry[option], f"a {types_[0].__name__}")


def ensure_secret_key(config: dict[str, Any], folder: Path) -> None:
    """Generate and persist a secret key when none is configured, so sessions survive restarts."""
    if config.get("SECRET_KEY"):
        return
    key_file = folder / "secret_key"
    if key_file.is_file():
        config["SECRET_KEY"] = key_file.read_text().strip()
        return
    folder.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    try:
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race: use its key
        config["SECRET_KEY"] = key_file.read_text().strip()
        return
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    log.warning("SECRET_KEY is empty: generated one and stored it in %s", key_file)
    config["SECRET_KEY"] = key


def _validate_operations(config: dict[str, Any]) -> None:
    """The operations keys (metrics, logs, mail), in one block of their own."""
    _validate_networks(config, "METRICS_ALLOWED_NETWORKS")
    _check_choice(config, "LOG_FORMAT", ("text", "json", "keyvalue"))
    if isinstance(config["LOG_LEVEL"], str):
        config["LOG_LEVEL"] = config["LOG_LEVEL"].upper()
    _check_choice(config, "LOG_LEVEL", ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"))
    _validate_mail(config)


def _check_choice(config: Mapping[str, Any], key: str, choices: tuple[str, ...]) -> None:
    if config[key] not in choices:
        raise _fail(key, config[key], ", ".join(repr(c) for c in choices))


#: The longest run of successes NOTIFY_FAILING_AFTER may ask for (years of daily crawls).
MAX_FAILING_AFTER = 100_000


def _validate_mail(config: dict[str, Any]) -> None:
    _check_type(config, "MAIL_SERVER", (str,), "a host name or address")
    if not config["MAIL_SERVER"].strip():
        raise _fail("MAIL_SERVER", config["MAIL_SERVER"], "a host name or address")
    _check_type(config, "MAIL_PORT", (int,), "a port from 1 to 65535")
    if not 1 <= config["MAIL_PORT"] <= 65535:
        raise _fail("MAIL_PORT", config["MAIL_PORT"], "a port from 1 to 65535")
    for key in ("MAIL_USE_TLS", "MAIL_USE_SSL"):
        _check_type(config, key, (bool,), "True or False")
    if config["MAIL_USE_TLS"] and config["MAIL_USE_SSL"]:
        raise SettingsError(
            "MAIL_USE_TLS (STARTTLS) and MAIL_USE_SSL (SMTPS) exclude each other: set one"
        )
    for key in ("MAIL_USERNAME", "MAIL_PASSWORD"):
        _check_type(config, key, (str, type(None)), "a string or None")
    _check_choice(config, "NOTIFY_MODE", ("each", "daily"))
    accepted = f"a number of successful crawls from 1 to {MAX_FAILING_AFTER}, or 0 or None (off)"
    _check_type(config, "NOTIFY_FAILING_AFTER", (int, type(None)), accepted)
    if not 0 <= (config["NOTIFY_FAILING_AFTER"] or 0) <= MAX_FAILING_AFTER:
        raise _fail("NOTIFY_FAILING_AFTER", config["NOTIFY_FAILING_AFTER"], accepted)
    recipients = config["NOTIFY_EMAILS"]
    if not isinstance(recipients, list | tuple):
        raise _fail("NOTIFY_EMAILS", recipients, "a list of e-mail addresses")
    config["NOTIFY_EMAILS"] = [_address("NOTIFY_EMAILS", item) for item in recipients]
    sender = config["MAIL_DEFAULT_SENDER"]
    if isinstance(sender, list | tuple) and len(sender) == 2:  # Flask-Mail's (name, address)
        sender = formataddr((str(sender[0]), str(sender[1])))
    if sender is not None:
        name, address = parseaddr(sender) if isinstance(sender, str) else ("", sender)
        sender = formataddr((name, _address("MAIL_DEFAULT_SENDER", address)))
    elif config["NOTIFY_EMAILS"]:
        raise SettingsError("NOTIFY_EMAILS is set, so MAIL_DEFAULT_SENDER must be too")
    config["MAIL_DEFAULT_SENDER"] = sender
    base = config["BASE_URL"]
    if base is not None:
        parts = urlsplit(base) if isinstance(base, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
            raise _fail("BASE_URL", base, "the hub's address, like 'https://hub.example.org'")
        config["BASE_URL"] = base.rstrip("/")


def _address(key: str, value: Any) -> str:
    # here, not at the top: every command loads the settings, and e-mail validation costs
    # a tenth of a second to import; only a hub that sends mail pays it
    from email_validator import EmailNotValidError, validate_email

    accepted = "an e-mail address like 'maintainer@example.org'"
    if not isinstance(value, str):
        raise _fail(key, value, accepted)
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError:
        raise _fail(key, value, accepted) from None
