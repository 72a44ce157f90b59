"""User stories of logging in and out."""

from __future__ import annotations

import re

from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.conftest import Watch, log_in
from tests.browser.helpers import check_page
from tests.browser.live import ADMIN, LiveApp


def test_log_in_page_is_accessible(page: Page, live: LiveApp) -> None:
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login"))
    expect(page.get_by_role("heading", level=1, name="Log in")).to_be_visible()
    check_page(page, f"{live.backend}-login")


def test_wrong_password_is_refused(page: Page, live: LiveApp, watch: Watch) -> None:
    watch.allow_status(401)
    log_in(page, ADMIN[0], "not-the-password")
    expect(page.get_by_role("heading", level=1, name="Log in")).to_be_visible()
    expect(page.get_by_label("Password")).to_have_value("")
    check_page(page, f"{live.backend}-login-refused")


def test_log_in_and_see_home(page: Page, live: LiveApp) -> None:
    log_in(page)
    admin = page
    expect(admin.get_by_role("heading", level=1, name="Home")).to_be_visible()
    nav = admin.get_by_role("navigation", name="Main")
    for name in ("Home", "Servers", "Statistics"):
        expect(nav.get_by_role("link", name=name, exact=True)).to_be_visible()
    expect(admin.get_by_text(ADMIN[0], exact=True)).to_be_visible()
    expect(admin).to_have_title(re.compile(r"Home · Cephalopod"))
    check_page(admin, f"{live.backend}-home")


#: A user of its own for logging out: a log-out ends every session of its user, and the
#: other tests share one session of the maintainer.
LEAVER = ("leaver", "another-long-browser-test-password")


def test_log_out_for_good(page: Page, context: BrowserContext, live: LiveApp) -> None:
    live.cli("create_usr", *LEAVER)
    log_in(page, *LEAVER)
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    stolen = context.cookies()
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", level=1, name="Log in")).to_be_visible()
    page.goto("/servers")
    expect(page).to_have_url(re.compile(r"/login"))
    context.add_cookies(stolen)  # the session cookie copied before the log-out, replayed
    page.goto("/servers")
    expect(page).to_have_url(re.compile(r"/login"))
