"""Strangers' strings render as text everywhere: as an organization and as crawled values.

Two sweeps of every page. One under the app's own Content-Security-Policy, as users see it: a
payload that reached the HTML would be refused by the CSP, which Chromium reports as a console
error, and `<img src=x>` would request /x — both fail the watch. One with the CSP bypassed, so
that the escaping alone is tested: a payload that ran would open an alert() dialog.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser.conftest import TIMEOUT_MS, Watch, new_context
from tests.browser.helpers import check_page
from tests.browser.live import XSS_IMG, XSS_SCRIPT, LiveApp

PAYLOADS = (XSS_IMG, XSS_SCRIPT)


def pages(live: LiveApp) -> list[tuple[str, str]]:
    return [
        ("home", "/"),
        ("servers", "/servers"),
        (
            "servers-all-columns",
            "/servers?columns=indico_version,python_version,postgres_version,language",
        ),
        ("servers-search", "/servers?q=%3Cimg"),
        ("server-img", f"/servers/{live.seeded[XSS_IMG]}"),
        ("server-script", f"/servers/{live.seeded[XSS_SCRIPT]}"),
        ("statistics", "/statistics"),
        ("statistics-all", "/statistics?status=all"),
    ]


@pytest.fixture(params=["csp", "no-csp"])
def xss_context(
    request: pytest.FixtureRequest,
    browser: Browser,
    live: LiveApp,
    watch: Watch,
    admin_cookies: list,
) -> Iterator[BrowserContext]:
    ctx = new_context(browser, live, watch, bypass_csp=request.param == "no-csp")
    ctx.add_cookies(admin_cookies)
    yield ctx
    ctx.close()
    problems = watch.problems()
    assert not problems, "\n".join(problems)


def test_xss_payloads_render_as_text_on_every_page(
    xss_context: BrowserContext, live: LiveApp, watch: Watch
) -> None:
    page: Page = xss_context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.add_init_script("window.__xss = 0;")
    for name, path in pages(live):
        page.goto(path)
        expect(page.get_by_role("button", name="Log out")).to_be_visible()
        page.wait_for_load_state("networkidle")  # the charts and maps have fetched their data
        if name in ("servers", "server-img"):
            for payload in PAYLOADS:  # shown, as text, where the page shows it
                expect(page.locator("main"), f"{payload} on {name}").to_contain_text(payload)
        # no element of theirs: no <img src=x>, no script beyond our own files
        assert page.locator('img[src="x"]').count() == 0, name
        scripts = page.locator("script").evaluate_all("(s) => s.map((e) => e.src)")
        assert all(src.startswith(live.url + "/static/") for src in scripts), (name, scripts)
        if name == "server-img":  # the map's marker tooltip names the server: as text
            page.get_by_test_id("server-map").locator(".jvm-marker").first.hover()
            tooltip = page.locator(".jvm-tooltip")
            expect(tooltip).to_contain_text(XSS_IMG)
            assert tooltip.locator("img").count() == 0
        if name in ("server-img", "statistics"):
            check_page(page, f"{live.backend}-xss-{name}")
    assert not [u for u in watch.requests if u.rstrip("/").endswith("/x")]
    assert not watch.dialogs
