"""Fixtures of the browser tier: the real app per database, Debian's Chromium, watched pages.

Every page a test opens is watched: each request it makes (none may leave the app's origin),
each console error and uncaught exception, each JavaScript dialog (an ``alert`` of an XSS
payload would be one). The test fails at teardown when any of them happened.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright

from tests.browser.live import ADMIN, LiveApp, start_live_app, stop_live_app
from tests.crawler.servers import ServerLoop
from tests.databases import empty_database

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
#: Playwright's default timeout for actions and expect(): generous for a loaded 2-core machine.
TIMEOUT_MS = 15_000
expect.set_options(timeout=TIMEOUT_MS)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test of this folder is a browser test (`-m "not browser"` skips the tier)."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.path).parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Debian's Chromium (`make install-test` installs it); Playwright downloads no browser."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make install-test` (apt-get install chromium)")
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture(scope="session")
def instance_servers() -> Iterator[ServerLoop]:
    loop = ServerLoop()
    loop.start()
    yield loop
    loop.stop()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def live(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    instance_servers: ServerLoop,
) -> Iterator[LiveApp]:
    """`cephalopod run` on a database of its own (SQLite file, or a new PostgreSQL database)."""
    backend = request.param
    if backend == "postgresql":
        request.applymarker(pytest.mark.postgres)
    folder = tmp_path_factory.mktemp(f"live-{backend}")
    with empty_database(backend, folder) as db_url:
        app = start_live_app(backend, db_url, folder, instance_servers)
        try:
            yield app
        finally:
            stop_live_app(app)


class Watch:
    """What a page did that a test must not allow: foreign requests, errors, dialogs."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.requests: list[str] = []
        self.foreign: list[str] = []
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.allowed_statuses: set[int] = set()

    def allow_status(self, status: int) -> None:
        """A page answered with this error status on purpose (a refused log-in, a refused edit).

        Chromium logs such a page load as a console error; only this status is let through.
        """
        self.allowed_statuses.add(status)

    def console_error(self, text: str, url: str | None) -> None:
        prefix = "Failed to load resource: the server responded with a status of"
        if any(text.startswith(f"{prefix} {status} ") for status in self.allowed_statuses):
            return
        self.errors.append(f"{text} ({url})")

    def request(self, url: str) -> None:
        self.requests.append(url)
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob", "about"):
            return  # inline data never leaves the page
        if f"{parts.scheme}://{parts.netloc}" != self.origin:
            self.foreign.append(url)

    def problems(self) -> list[str]:
        return (
            [f"request to another origin: {u}" for u in self.foreign]
            + [f"console error: {e}" for e in self.errors]
            + [f"dialog opened (a script ran): {d}" for d in self.dialogs]
        )


@pytest.fixture
def watch(live: LiveApp) -> Watch:
    return Watch(live.url)


def new_context(browser: Browser, live: LiveApp, watch: Watch, **options: object) -> BrowserContext:
    """A fresh browser profile on the app whose every page is watched."""
    context = browser.new_context(base_url=live.url, **options)  # type: ignore[arg-type]
    context.set_default_timeout(TIMEOUT_MS)
    context.on("request", lambda req: watch.request(req.url))

    def on_page(page: Page) -> None:
        page.on(
            "console",
            lambda msg: (
                watch.console_error(msg.text, msg.location.get("url"))
                if msg.type == "error"
                else None
            ),
        )
        page.on("pageerror", lambda exc: watch.errors.append(f"uncaught: {exc}"))

        def on_dialog(dialog: object) -> None:
            watch.dialogs.append(f"{dialog.type}: {dialog.message}")  # type: ignore[attr-defined]
            dialog.dismiss()  # type: ignore[attr-defined]

        page.on("dialog", on_dialog)

    context.on("page", on_page)
    return context


@pytest.fixture
def context(browser: Browser, live: LiveApp, watch: Watch) -> Iterator[BrowserContext]:
    ctx = new_context(browser, live, watch, viewport={"width": 1280, "height": 900})
    yield ctx
    ctx.close()
    problems = watch.problems()
    assert not problems, "\n".join(problems)


@pytest.fixture
def page(context: BrowserContext) -> Page:
    """A page of a logged-out visitor."""
    return context.new_page()


def log_in(page: Page, username: str = ADMIN[0], password: str = ADMIN[1]) -> None:
    page.goto("/login")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


@pytest.fixture(scope="session")
def admin_cookies(browser: Browser, live: LiveApp) -> list[Any]:
    """Log in once per app (argon2 makes a log-in cost a second); tests reuse the session."""
    context = browser.new_context(base_url=live.url)
    page = context.new_page()
    log_in(page)
    page.wait_for_url("/")
    cookies = context.cookies()
    context.close()
    return cookies


@pytest.fixture
def admin(page: Page, context: BrowserContext, admin_cookies: list[Any]) -> Page:
    """A page logged in as the maintainer, on the home page."""
    context.add_cookies(admin_cookies)
    page.goto("/")
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    return page
