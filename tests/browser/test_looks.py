"""Every page at a desk's width, at a phone's and in dark mode: saved to be looked at, and checked.

Each page is saved as artifacts/looks-<mode>-<page>.png (a person looks at them: see the
README's browser tier). Checked on each: nothing overflows the page sideways or sticks out of
the content column (strangers' long strings included), the server list fits 1280 px, and axe
finds no serious or critical violation in light and in dark mode with every <details> open
(row expansions, raw values, the charts' data tables). The pages are the same HTML on both
databases, so these run on SQLite only.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser.conftest import Watch, new_context
from tests.browser.helpers import (
    check_axe,
    check_layout,
    open_every_details,
    screenshot,
    wait_drawn,
)
from tests.browser.live import UNREACHABLE, XSS_IMG, LiveApp

pytestmark = pytest.mark.parametrize("live", ["sqlite"], indirect=True)

#: name -> (viewport width, height, colour scheme, run axe)
MODES: dict[str, tuple[int, int, str, bool]] = {
    "desk": (1280, 900, "light", True),
    "phone": (390, 844, "light", False),  # the same colours as at the desk: axe once is enough
    "dark": (1280, 900, "dark", True),
}


#: Pages whose light 1280 px look the other flows already give to axe (little hides in details).
LIGHT_AXE_ELSEWHERE = {"home", "servers-empty", "login"}


def pages(live: LiveApp) -> list[tuple[str, str]]:
    return [
        ("home", "/"),
        ("servers", "/servers"),
        ("servers-all-columns", "/servers?columns=" + ",".join(ALL_COLUMNS)),
        ("servers-empty", "/servers?q=nothing+matches+this"),
        ("server", f"/servers/{live.seeded['Alpha University']}"),
        ("server-strangers", f"/servers/{live.seeded[XSS_IMG]}"),
        ("server-long-name", f"/servers/{live.seeded[LONG_NAME]}"),
        ("server-unreachable", f"/servers/{live.seeded[UNREACHABLE]}"),
        ("statistics", "/statistics"),
        ("not-found", "/servers/00000000-0000-4000-8000-000000000000"),
    ]


#: More crawled columns than fit: the list scrolls sideways inside its own box.
ALL_COLUMNS = ("indico_version", "python_version", "postgres_version", "language", "events")
#: A stranger's organization with a long word in it: the layout must break it, not overflow.
LONG_NAME = "Universitätsklinikum " + "Donaudampfschifffahrtsgesellschaftskapitän" * 2


@pytest.fixture(params=list(MODES))
def mode(
    request: pytest.FixtureRequest,
    browser: Browser,
    live: LiveApp,
    watch: Watch,
    admin_cookies: list[Any],
) -> Iterator[tuple[str, BrowserContext]]:
    width, height, scheme, _axe = MODES[request.param]
    context = new_context(
        browser, live, watch, viewport={"width": width, "height": height}, color_scheme=scheme
    )
    context.add_cookies(admin_cookies)
    yield request.param, context
    context.close()
    problems = watch.problems()
    assert not problems, "\n".join(problems)


def test_every_page_at_a_desk_on_a_phone_and_in_the_dark(
    mode: tuple[str, BrowserContext], live: LiveApp, watch: Watch
) -> None:
    name, context = mode
    axe = MODES[name][3]
    skip_axe = LIGHT_AXE_ELSEWHERE if MODES[name][2] == "light" else set()
    if LONG_NAME not in live.seeded:
        live.seeded[LONG_NAME] = live.register(LONG_NAME, "127.0.0.3")
    watch.allow_status(404)  # the not-found page, on purpose
    page: Page = context.new_page()
    for page_name, path in pages(live):
        page.goto(path)
        wait_drawn(page)
        screenshot(page, f"looks-{name}-{page_name}")
        check_layout(page)
        if page_name == "servers" and name != "phone":
            # the list fits 1280 px with its default columns; more scroll inside its own box
            fits = page.locator(".table-wrap").evaluate("(w) => w.scrollWidth <= w.clientWidth")
            assert fits, "the server list does not fit 1280 px"
        if axe and page_name not in skip_axe:
            open_every_details(page)
            check_axe(page)
            open_every_details(page, False)
        if page_name == "servers" and name != "phone":
            page.get_by_role("button", name="Delete").first.click()
            expect(page.get_by_role("dialog")).to_be_visible()
            screenshot(page, f"looks-{name}-servers-delete-dialog", full_page=False)
            check_axe(page)
            page.keyboard.press("Escape")
    context.clear_cookies()  # logged out: the log-in page
    page.goto("/servers")
    expect(page.get_by_role("heading", level=1, name="Log in")).to_be_visible()
    screenshot(page, f"looks-{name}-login")
    check_layout(page)
    if axe and "login" not in skip_axe:
        check_axe(page)
