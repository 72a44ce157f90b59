"""Settings: where the file is found, what loads, what is refused and how, what is documented."""

from __future__ import annotations

import ast
import logging
import os
import stat
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import hypothesis as settings_
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cephalopod import settings
from cephalopod.app import create_app
from cephalopod.settings import DEFAULTS, SettingsError, load_settings
from tests.refused_settings import Refused, assert_refused, each_refused

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = Path(settings.__file__).with_name("settings.cfg.example")
CEPHALOPOD = Path(sys.executable).with_name("cephalopod")

# A settings file as written for the original project (its README's keys, its task name).
ORIGINAL_SETTINGS = """\
from datetime import timedelta

SECRET_KEY = 'my-old-secret'
BABEL_DEFAULT_TIMEZONE = 'Europe/Zurich'
BABEL_DEFAULT_LOCALE = 'en_GB'
APP_NAME = 'Indico Community Hub'
# SSL_CERT = '/path/to/cert'
# SSL_KEY = '/path/to/key'
SQLALCHEMY_DATABASE_URI = 'sqlite:////tmp/cephalopod-original.db'
CELERY_BROKER_URL = 'redis://127.0.0.1:6379/0'
CELERYBEAT_SCHEDULE = {
    'crawl-every-day': {
        'task': 'cephalopod.crawler.crawl_all',
        'schedule': timedelta(days=1)
    }
}
CRAWLING_ENDPOINTS = [
    {'url': '/system-info', 'headers': {'Accept': 'application/json'}},
    {'url': '/api/stats'}
]
CRAWLED_FIELDS_SETTINGS = {
    'python_version': {'label': 'Python', 'chart': True, 'chart_type': 'pie'},
    'indico_version': {'chart': True},
    'postgres_version': {'chart': True, 'chart_type': 'bar'},
    'language': {'label': 'Language', 'chart': True, 'chart_type': 'pie'},
    'debug': None,
    'secret_stuff': None,
    'event_count': {'aggregation': 'sum', 'chart': True, 'chart_aggregation': 'avg',
                    'chart_aggregate_by': 'country'},
}
"""


@pytest.fixture
def no_settings_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No CEPHALOPOD_SETTINGS, an empty working directory and an empty fake package folder."""
    monkeypatch.delenv(settings.SETTINGS_ENV, raising=False)
    cwd = tmp_path / "cwd"
    package = tmp_path / "package"
    cwd.mkdir()
    package.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(settings, "PACKAGE_DIR", package)
    return tmp_path


def _write(path: Path, app_name: str) -> Path:
    path.write_text(f"APP_NAME = {app_name!r}\n")
    return path


# --- where the file is found ----------------------------------------------------------------


def test_search_order(no_settings_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cwd_file = no_settings_env / "cwd" / "settings.cfg"
    package_file = no_settings_env / "package" / "settings.cfg"
    env_file = no_settings_env / "elsewhere.cfg"

    assert settings.find_settings_file() is None
    assert load_settings()["APP_NAME"] == DEFAULTS["APP_NAME"]

    _write(package_file, "from the package")
    assert settings.find_settings_file() == package_file
    assert load_settings()["APP_NAME"] == "from the package"

    _write(cwd_file, "from the working directory")
    assert load_settings()["APP_NAME"] == "from the working directory"

    monkeypatch.setenv(settings.SETTINGS_ENV, str(_write(env_file, "from the environment")))
    assert load_settings()["APP_NAME"] == "from the environment"
    assert load_settings()["_SETTINGS_FILE"] == str(env_file)


def test_settings_env_pointing_nowhere_is_an_error(
    no_settings_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = no_settings_env / "missing.cfg"
    monkeypatch.setenv(settings.SETTINGS_ENV, str(missing))
    with pytest.raises(SettingsError, match="CEPHALOPOD_SETTINGS") as exc:
        load_settings()
    assert str(missing) in str(exc.value)


def test_overrides_win_over_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "s.cfg", "file")
    assert load_settings(path, overrides={"APP_NAME": "override"})["APP_NAME"] == "override"


# --- what loads ---------------------------------------------------------------------------------


def test_original_project_settings_load_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "settings.cfg"
    path.write_text(ORIGINAL_SETTINGS)
    config = load_settings(path)
    assert config["APP_NAME"] == "Indico Community Hub"
    assert config["BABEL_DEFAULT_TIMEZONE"] == "Europe/Zurich"
    assert config["CELERYBEAT_SCHEDULE"]["crawl-every-day"] == {
        "task": "cephalopod.crawler.crawl_all",
        "schedule": timedelta(days=1),
    }
    assert config["CRAWLING_ENDPOINTS"] == [
        {"url": "/system-info", "headers": {"Accept": "application/json"}},
        {"url": "/api/stats", "headers": {}},
    ]
    assert config["CRAWLED_FIELDS_SETTINGS"]["debug"] is None
    assert config["CRAWLED_FIELDS_SETTINGS"]["python_version"]["label"] == "Python"
    assert "timedelta" not in config  # imports are not settings


def test_a_celery_crontab_schedule_loads(tmp_path: Path) -> None:
    path = tmp_path / "settings.cfg"
    path.write_text(
        "from celery.schedules import crontab\n"
        "CELERYBEAT_SCHEDULE = {'nightly': {'task': 'cephalopod.crawler.crawl_all',"
        " 'schedule': crontab(hour=3, minute=30)}}\n"
    )
    schedule = load_settings(path)["CELERYBEAT_SCHEDULE"]["nightly"]["schedule"]
    assert (schedule.hour, schedule.minute) == ({3}, {30})


def test_loading_settings_without_a_crontab_does_not_import_celery(tmp_path: Path) -> None:
    # every command loads the settings: Celery costs a fifth of a second to import
    path = tmp_path / "settings.cfg"
    path.write_text(ORIGINAL_SETTINGS)
    code = (
        "import sys; from pathlib import Path; from cephalopod.settings import load_settings; "
        f"load_settings(Path({str(path)!r})); print('celery' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_defaults_are_valid() -> None:
    config = load_settings(overrides={})
    assert {k: config[k] for k in ("APP_NAME", "BABEL_DEFAULT_LOCALE")} == {
        "APP_NAME": "Cephalopod",
        "BABEL_DEFAULT_LOCALE": "en_GB",
    }
    assert config["BABEL_DEFAULT_TIMEZONE"] == "UTC"
    assert config["REGISTRATION_RATE_LIMIT"] == "20 per hour"


def test_defaults_are_not_shared_between_loads() -> None:
    first = load_settings(overrides={})
    first["CELERYBEAT_SCHEDULE"]["crawl-all"]["task"] = "changed"
    first["CRAWLER_ALLOWED_NETWORKS"].append("10.0.0.0/8")
    second = load_settings(overrides={})
    assert second["CELERYBEAT_SCHEDULE"]["crawl-all"]["task"] == "cephalopod.crawler.crawl_all"
    assert second["CRAWLER_ALLOWED_NETWORKS"] == []


# --- what is refused ----------------------------------------------------------------------------

CRAWL_ALL = "cephalopod.crawler.crawl_all"
BAD_SCHEDULE = {"crawl": {"task": "cephalopod.crawler.crawl_everything", "schedule": 60}}

# (overrides, the key as named in the message, the bad value's repr, a piece of what is accepted)
INVALID: list[Refused] = [
    ({"APP_NAME": ""}, "APP_NAME", "''", "non-empty string"),
    ({"APP_NAME": 42}, "APP_NAME", "42", "non-empty string"),
    ({"SECRET_KEY": 42}, "SECRET_KEY", "42", "a string"),
    ({"BABEL_DEFAULT_TIMEZONE": "Mars/Olympus"}, "BABEL_DEFAULT_TIMEZONE", "'Mars/Olympus'", "UTC"),
    ({"BABEL_DEFAULT_LOCALE": "xx_QQ"}, "BABEL_DEFAULT_LOCALE", "'xx_QQ'", "en_GB"),
    ({"SSL_CERT": 42}, "SSL_CERT", "42", "a string or None"),
    ({"SSL_CERT": "/nonexistent/c.pem"}, "SSL_CERT", "'/nonexistent/c.pem'", "readable file"),
    ({"SQLALCHEMY_DATABASE_URI": 5}, "SQLALCHEMY_DATABASE_URI", "5", "a string or None"),
    ({"USE_PROXY": "yes"}, "USE_PROXY", "'yes'", "True or False"),
    ({"PUBLIC_STATISTICS": 1}, "PUBLIC_STATISTICS", "1", "True or False"),
    ({"REGISTRATION_RATE_LIMIT": "lots"}, "REGISTRATION_RATE_LIMIT", "'lots'", "20 per hour"),
    ({"LOGIN_RATE_LIMIT": 10}, "LOGIN_RATE_LIMIT", "10", "a string"),
    ({"CRAWLER_CONCURRENCY": 0}, "CRAWLER_CONCURRENCY", "0", "an integer from 1 to 10000"),
    ({"CRAWLER_CONCURRENCY": "100"}, "CRAWLER_CONCURRENCY", "'100'", "an integer"),
    ({"CRAWLER_CONCURRENCY": True}, "CRAWLER_CONCURRENCY", "True", "an integer"),
    ({"CRAWLER_CONNECT_TIMEOUT": -1}, "CRAWLER_CONNECT_TIMEOUT", "-1", "a number from 0.1"),
    ({"CRAWLER_MAX_BYTES": 1.5}, "CRAWLER_MAX_BYTES", "1.5", "an integer"),
    ({"HISTORY_RETENTION_DAYS": 0}, "HISTORY_RETENTION_DAYS", "0", "an integer from 1"),
    ({"AUDIT_RETENTION_DAYS": 0}, "AUDIT_RETENTION_DAYS", "0", "an integer from 1"),
    ({"CRAWLER_ALLOWED_NETWORKS": "10/8"}, "CRAWLER_ALLOWED_NETWORKS", "'10/8'", "CIDR"),
    ({"CRAWLER_ALLOWED_NETWORKS": ["10.0.0.0/33"]}, "CRAWLER_ALLOWED_NETWORKS", "/33'", "CIDR"),
    ({"CRAWLING_ENDPOINTS": {"url": "/x"}}, "CRAWLING_ENDPOINTS", "{'url': '/x'}", "a list of"),
    ({"CRAWLING_ENDPOINTS": ["/x"]}, "CRAWLING_ENDPOINTS[0]", "'/x'", "'url'"),
    ({"CRAWLING_ENDPOINTS": [{"uri": "/x"}]}, "CRAWLING_ENDPOINTS[0]", "'uri'", "'headers'"),
    (
        {"CRAWLING_ENDPOINTS": [{"url": "https://evil.example/x"}]},
        "CRAWLING_ENDPOINTS[0]['url']",
        "'https://evil.example/x'",
        "a path",
    ),
    (
        {"CRAWLING_ENDPOINTS": [{"url": "/x", "headers": {"X-Token": 1}}]},
        "CRAWLING_ENDPOINTS[0]['headers']",
        "{'X-Token': 1}",
        "string header values",
    ),
    ({"CRAWLED_FIELDS_SETTINGS": []}, "CRAWLED_FIELDS_SETTINGS", "[]", "dictionary"),
    (
        {"CRAWLED_FIELDS_SETTINGS": {"v": {"chart_type": "donut"}}},
        "CRAWLED_FIELDS_SETTINGS['v']['chart_type']",
        "'donut'",
        "'bar', 'line', 'pie'",
    ),
    (
        {"CRAWLED_FIELDS_SETTINGS": {"v": {"aggregation": "median"}}},
        "CRAWLED_FIELDS_SETTINGS['v']['aggregation']",
        "'median'",
        "None, 'sum', 'avg', 'min', 'max'",
    ),
    (
        {"CRAWLED_FIELDS_SETTINGS": {"v": {"chart_aggregation": "median"}}},
        "CRAWLED_FIELDS_SETTINGS['v']['chart_aggregation']",
        "'median'",
        "'count', 'sum', 'avg', 'min', 'max'",
    ),
    (
        {"CRAWLED_FIELDS_SETTINGS": {"v": {"chart": "yes"}}},
        "CRAWLED_FIELDS_SETTINGS['v']['chart']",
        "'yes'",
        "True, False",
    ),
    (
        {"CRAWLED_FIELDS_SETTINGS": {"v": {"colour": "red"}}},
        "CRAWLED_FIELDS_SETTINGS['v']['colour']",
        "is not an option",
        "'chart_type'",
    ),
    (
        {"CRAWLED_FIELDS_SETTINGS": {"v": "bar"}},
        "CRAWLED_FIELDS_SETTINGS['v']",
        "'bar'",
        "None (to hide the field)",
    ),
    ({"CELERYBEAT_SCHEDULE": []}, "CELERYBEAT_SCHEDULE", "[]", "dictionary of name"),
    (
        {"CELERYBEAT_SCHEDULE": BAD_SCHEDULE},
        "CELERYBEAT_SCHEDULE['crawl']['task']",
        "'cephalopod.crawler.crawl_everything'",
        "cephalopod.crawler.crawl_all",
    ),
    (
        {"CELERYBEAT_SCHEDULE": {"crawl": {"task": "cephalopod.crawler.crawl_all"}}},
        "CELERYBEAT_SCHEDULE['crawl']",
        "{'task': 'cephalopod.crawler.crawl_all'}",
        "'schedule'",
    ),
    (
        {"CELERYBEAT_SCHEDULE": {"c": {"task": CRAWL_ALL, "schedule": "daily"}}},
        "CELERYBEAT_SCHEDULE['c']['schedule']",
        "'daily'",
        "timedelta",
    ),
    ({"GEOIP_DATABASE": 42}, "GEOIP_DATABASE", "42", ".mmdb"),
]


@each_refused(INVALID)
def test_invalid_value_names_key_value_and_accepted(
    overrides: dict[str, Any], key: str, value: str, accepted: str
) -> None:
    assert_refused(overrides, key, value, accepted)


def test_ssl_cert_without_key_is_refused(tmp_path: Path) -> None:
    cert = tmp_path / "cert.pem"
    cert.write_text("not checked here")
    with pytest.raises(SettingsError, match="SSL_CERT and SSL_KEY must be set together"):
        load_settings(overrides={"SSL_CERT": str(cert)})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("APP_NAME = 'unterminated\n", "syntax error on line 1"),
        ("import nonexistent_module_xyz\n", "ModuleNotFoundError"),
        ("APP_NAME = 1 / 0\n", "ZeroDivisionError"),
    ],
)
def test_broken_file_is_one_clear_error(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "broken.cfg"
    path.write_text(text)
    with pytest.raises(SettingsError, match=expected) as exc:
        load_settings(path)
    assert str(path) in str(exc.value)


def test_unknown_keys_warn(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "s.cfg"
    path.write_text(
        "APP_NAME = 'x'\nCRAWLING_ENDPIONTS = []\nSQLALCHEMY_ECHO = False\n_private = 1\n"
    )
    with caplog.at_level(logging.WARNING, logger="cephalopod.settings"):
        load_settings(path)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "CRAWLING_ENDPIONTS" in warnings[0]
    assert str(path) in warnings[0]


def test_endpoint_without_url_is_skipped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="cephalopod.settings"):
        config = load_settings(overrides={"CRAWLING_ENDPOINTS": [{"headers": {}}, {"url": "/a"}]})
    assert config["CRAWLING_ENDPOINTS"] == [{"url": "/a", "headers": {}}]
    assert "CRAWLING_ENDPOINTS[0]" in caplog.text


# --- the secret key -------------------------------------------------------------------------


def test_empty_secret_key_is_generated_once_and_reused(
    instance_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    overrides = {"SECRET_KEY": "", "SQLALCHEMY_DATABASE_URI": "sqlite://"}
    with caplog.at_level(logging.WARNING, logger="cephalopod.settings"):
        first = create_app(overrides=overrides)
    key_file = instance_dir / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = first.config["SECRET_KEY"]
    assert len(key) >= 32
    assert key_file.read_text().strip() == key
    assert "SECRET_KEY is empty" in caplog.text
    assert key not in caplog.text

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="cephalopod.settings"):
        second = create_app(overrides=overrides)
    assert second.config["SECRET_KEY"] == key
    assert "SECRET_KEY is empty" not in caplog.text


def test_configured_secret_key_writes_no_file(instance_dir: Path) -> None:
    app = create_app(overrides={"SECRET_KEY": "set", "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    assert app.config["SECRET_KEY"] == "set"
    assert not (instance_dir / "secret_key").exists()


def test_embedded_database_lives_in_the_instance_folder(instance_dir: Path) -> None:
    app = create_app(overrides={"SECRET_KEY": "x"})
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{instance_dir / 'cephalopod.db'}"


# --- the command line -----------------------------------------------------------------------


def test_cli_bad_settings_exit_2_without_traceback(tmp_path: Path) -> None:
    """The real console script, as a person at a shell runs it."""
    bad = tmp_path / "bad.cfg"
    bad.write_text("CRAWLED_FIELDS_SETTINGS = {'v': {'chart_type': 'donut'}}\n")
    env = {
        **os.environ,
        "CEPHALOPOD_SETTINGS": str(bad),
        "CEPHALOPOD_INSTANCE_PATH": str(tmp_path / "instance"),
    }
    result = subprocess.run(
        [str(CEPHALOPOD), "db", "upgrade"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr == (
        f"Configuration error: {bad}, line 1: CRAWLED_FIELDS_SETTINGS['v']['chart_type'] ="
        " 'donut' is invalid; accepted values: 'bar', 'line', 'pie'\n"
    )
    assert result.stdout == ""
    assert not (tmp_path / "instance").exists()  # nothing was created


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("APP_NAME = (\n", "syntax error on line"),
        ("import nonexistent_module_xyz\n", "ModuleNotFoundError"),
        ("USE_PROXY = 'yes'\n", "USE_PROXY = 'yes' is invalid; accepted: True or False"),
    ],
    ids=["syntax-error", "import-error", "bad-value"],
)
def test_cli_main_turns_settings_errors_into_status_2(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    text: str,
    expected: str,
) -> None:
    from cephalopod.cli import main

    bad = tmp_path / "bad.cfg"
    bad.write_text(text)
    monkeypatch.setenv("CEPHALOPOD_SETTINGS", str(bad))
    monkeypatch.setenv("CEPHALOPOD_INSTANCE_PATH", str(tmp_path / "instance"))
    with pytest.raises(SystemExit) as exc:
        main(["db", "upgrade"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("Configuration error: ")
    assert expected in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


# --- documentation ------------------------------------------------------------------------


def _assigned_names(path: Path) -> dict[str, ast.expr]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return {
        target.id: node.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }


def _commented(path: Path) -> set[str]:
    """Names whose assignment has a comment on the line above or at the end of the line."""
    lines = path.read_text().splitlines()
    names = set()
    for number, line in enumerate(lines):
        name = line.split("=", 1)[0].strip()
        if "=" not in line or not name.isupper():
            continue
        above = lines[number - 1].strip() if number else ""
        if above.startswith("#") or "#" in line:
            names.add(name)
    return names


def test_example_documents_every_key_with_a_comment() -> None:
    assigned = _assigned_names(EXAMPLE)
    assert sorted(set(DEFAULTS) - set(assigned)) == []
    assert sorted(set(assigned) - set(DEFAULTS)) == []
    assert sorted(set(DEFAULTS) - _commented(EXAMPLE)) == []


def test_example_loads_and_shows_the_defaults(tmp_path: Path) -> None:
    config = load_settings(EXAMPLE)
    examples = {"CRAWLING_ENDPOINTS", "CRAWLED_FIELDS_SETTINGS"}  # filled in to show the shape
    for key, default in DEFAULTS.items():
        if key not in examples:
            assert config[key] == default, key
    assert config["CRAWLING_ENDPOINTS"]
    assert any(v is None for v in config["CRAWLED_FIELDS_SETTINGS"].values())


def test_readme_documents_every_key() -> None:
    readme = REPO / "README.md"
    assert readme.is_file(), "README.md is missing"
    text = readme.read_text()
    assert sorted(key for key in DEFAULTS if key not in text) == []


# --- broken settings files through the real command line ----------------------------------

CRAWL = "'cephalopod.crawler.crawl_all'"
#: (the file's text, what its one line of error must say after naming the file)
BROKEN_FILES: list[tuple[str, str, bytes]] = [
    ("syntax-error", "syntax error on line 2", b"APP_NAME = 'x'\nUSE_PROXY = (\n"),
    ("null-byte", "syntax error: source code string cannot contain null bytes", b"A = 1\x00\n"),
    ("not-utf8", "syntax error on line 1", b"APP_NAME = '\xff'\n"),
    ("wrong-type", "line 2: USE_PROXY = 'yes' is invalid", b"APP_NAME = 'x'\nUSE_PROXY = 'yes'\n"),
    (
        "wrong-number",
        "line 1: CRAWLER_CONCURRENCY = '100' is invalid; accepted: an integer",
        b"CRAWLER_CONCURRENCY = '100'\n",
    ),
    (
        "endpoint-not-a-dict",
        "line 2: CRAWLING_ENDPOINTS[0] = '/system-info' is invalid",
        b"APP_NAME = 'x'\nCRAWLING_ENDPOINTS = [\n    '/system-info',\n]\n",
    ),
    (
        "endpoint-unknown-option",
        "line 1: CRAWLING_ENDPOINTS[0] = {'url': '/x', 'header': {}} is invalid",
        b"CRAWLING_ENDPOINTS = [{'url': '/x', 'header': {}}]\n",
    ),
    (
        "schedule-not-a-schedule",
        "line 2: CELERYBEAT_SCHEDULE['crawl']['schedule'] = 'daily' is invalid",
        b"from datetime import timedelta\n"
        b"CELERYBEAT_SCHEDULE = {'crawl': {'task': "
        + CRAWL.encode()
        + b", 'schedule': 'daily'}}\n",
    ),
    (
        "schedule-not-finite",
        "CELERYBEAT_SCHEDULE['crawl']['schedule'] = nan is invalid",
        b"CELERYBEAT_SCHEDULE = {'crawl': {'task': "
        + CRAWL.encode()
        + b", 'schedule': float('nan')}}\n",
    ),
    (
        "schedule-negative",
        "CELERYBEAT_SCHEDULE['crawl']['schedule'] = -5 is invalid",
        b"CELERYBEAT_SCHEDULE = {'crawl': {'task': " + CRAWL.encode() + b", 'schedule': -5}}\n",
    ),
    (
        "schedule-task-a-list",
        "CELERYBEAT_SCHEDULE['crawl']['task'] = ['x'] is invalid",
        b"CELERYBEAT_SCHEDULE = {'crawl': {'task': ['x'], 'schedule': 60}}\n",
    ),
    (
        "schedule-unknown-option",
        "CELERYBEAT_SCHEDULE['crawl'] = {",
        b"CELERYBEAT_SCHEDULE = {'crawl': {'task': "
        + CRAWL.encode()
        + b", 'schedule': 60, 'argz': []}}\n",
    ),
    (
        "schedule-not-a-dict",
        "line 1: CELERYBEAT_SCHEDULE = ['crawl'] is invalid",
        b"CELERYBEAT_SCHEDULE = ['crawl']\n",
    ),
    (
        "field-unknown-option",
        "line 1: CRAWLED_FIELDS_SETTINGS['v']['colour']",
        b"CRAWLED_FIELDS_SETTINGS = {'v': {'colour': 'red'}}\n",
    ),
    (
        "raises-at-exec",
        "line 3: KeyError: 'CEPHALOPOD_NO_SUCH_VARIABLE'",
        b"APP_NAME = 'x'\nimport os\nSECRET_KEY = os.environ['CEPHALOPOD_NO_SUCH_VARIABLE']\n",
    ),
    ("exits", "line 2: SystemExit: 3", b"import sys\nsys.exit(3)\n"),
    ("recursion", "RecursionError: maximum recursion depth", b"def f():\n    return f()\nf()\n"),
    (
        "database-url",
        "line 1: SQLALCHEMY_DATABASE_URI = 'nonsense' is invalid",
        b"SQLALCHEMY_DATABASE_URI = 'nonsense'\n",
    ),
    (
        "database-dialect",
        "line 1: SQLALCHEMY_DATABASE_URI = 'foo://x' is invalid",
        b"SQLALCHEMY_DATABASE_URI = 'foo://x'\n",
    ),
    (
        "rate-limit-storage",
        "line 1: RATELIMIT_STORAGE_URI = 'x://y' is invalid",
        b"RATELIMIT_STORAGE_URI = 'x://y'\n",
    ),
    (
        "engine-options",
        "line 1: SQLALCHEMY_ENGINE_OPTIONS = 5 is invalid",
        b"SQLALCHEMY_ENGINE_OPTIONS = 5\n",
    ),
    (
        "body-limit",
        "line 1: MAX_CONTENT_LENGTH = 'big' is invalid",
        b"MAX_CONTENT_LENGTH = 'big'\n",
    ),
    (
        "ssl-half",
        "line 1: SSL_CERT and SSL_KEY must be set together",
        b"SSL_CERT = __file__\n",
    ),
]


def cephalopod(settings_file: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real console script with this settings file (a command that loads the settings)."""
    env = {
        **os.environ,
        "CEPHALOPOD_SETTINGS": str(settings_file),
        "CEPHALOPOD_INSTANCE_PATH": str(tmp_path / "instance"),
    }
    return subprocess.run(
        [str(CEPHALOPOD), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [(text, expected) for _, expected, text in BROKEN_FILES],
    ids=[name for name, _, _ in BROKEN_FILES],
)
def test_a_broken_settings_file_is_one_line_naming_file_and_line_or_key(
    tmp_path: Path, text: bytes, expected: str
) -> None:
    path = tmp_path / "settings.cfg"
    path.write_bytes(text)
    result = cephalopod(path, tmp_path, "db", "upgrade")
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"Configuration error: {path}"), lines[0]
    assert expected in lines[0], lines[0]
    assert not (tmp_path / "instance").exists()  # nothing was created


def test_an_unknown_key_is_a_warning_with_its_line_and_the_likely_key(tmp_path: Path) -> None:
    path = tmp_path / "settings.cfg"
    path.write_text("APP_NAME = 'x'\nCRAWLING_ENDPIONTS = []\n")
    result = cephalopod(path, tmp_path, "db", "upgrade")
    assert result.returncode == 0, result.stderr
    assert (
        f"Unknown setting CRAWLING_ENDPIONTS in {path}, line 2 is ignored"
        " (did you mean CRAWLING_ENDPOINTS?)"
    ) in result.stderr
    assert "Traceback" not in result.stderr


# --- any value of any key: a SettingsError or a configuration, nothing else ------------------

ANY_VALUE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.binary(max_size=10)
    | st.timedeltas(),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=10) | st.integers(), inner, max_size=3)
    ),
    max_leaves=8,
)


def refusal(overrides: dict[str, Any]) -> str | None:
    """The SettingsError's message, or None when the settings load (any other error fails)."""
    try:
        load_settings(overrides=overrides)
    except SettingsError as exc:
        return str(exc)
    return None


FUZZED_KEYS = sorted({*DEFAULTS, *settings._FLASK_KEYS} - {"SSL_CERT", "SSL_KEY", "GEOIP_DATABASE"})


@settings_.settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(key=st.sampled_from(FUZZED_KEYS), value=ANY_VALUE)
def test_any_value_of_any_key_is_accepted_or_refused_clearly(key: str, value: Any) -> None:
    """Path-like keys are left out: a generated string could name a real file."""
    message = refusal({key: value})
    if message is not None:
        assert key in message, message
        assert "\n" not in message
        assert len(message) < 1000  # a line someone reads, not a dump of the value


@settings_.settings(max_examples=100, derandomize=True, database=None, deadline=None)
@given(
    name=st.sampled_from(["crawl", "x"]),
    entry=st.dictionaries(
        st.sampled_from(["task", "schedule", "args", "kwargs", "options", "relative", "x"]),
        ANY_VALUE | st.sampled_from(["cephalopod.crawler.crawl_all"]),
        max_size=5,
    ),
)
def test_any_schedule_entry_is_accepted_or_refused_clearly(name: str, entry: Any) -> None:
    message = refusal({"CELERYBEAT_SCHEDULE": {name: entry}})
    assert message is None or message.startswith("CELERYBEAT_SCHEDULE"), message
