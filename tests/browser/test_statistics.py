"""User stories of the statistics page: the world map, every configured chart, the trend view."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.browser.helpers import check_charts, check_page, wait_drawn
from tests.browser.live import CHART_LABELS, SEED, UNREACHABLE, XSS_IMG, XSS_SCRIPT, LiveApp

#: True once a canvas has a painted (non-transparent) pixel: Chart.js has drawn the chart.
PAINTED = """(canvas) => {
    const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    for (let i = 3; i < data.length; i += 4) if (data[i]) return true;
    return false;
}"""


def open_statistics(page: Page) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Statistics").click()
    expect(page.get_by_role("heading", level=1, name="Statistics")).to_be_visible()


def test_statistics_show_the_map_and_every_configured_chart(admin: Page, live: LiveApp) -> None:
    open_statistics(admin)
    world = admin.get_by_test_id("world-map")
    expect(world).to_be_visible()
    expect(world.locator("svg")).to_be_visible()  # drawn by jsvectormap
    expect(admin.get_by_role("link", name="IP Geolocation by DB-IP").first).to_be_visible()
    for section in ("Map", "Countries", "Registrations", "Crawled instances", *CHART_LABELS):
        expect(admin.get_by_role("heading", level=2, name=section, exact=True)).to_be_visible()
    for label in CHART_LABELS:
        chart = admin.get_by_role("img", name=label, exact=True)
        expect(chart).to_be_visible()
        admin.wait_for_function(PAINTED, arg=chart.element_handle())
    # every chart: named, summarised, its data as a table; whole-number ticks on counts
    wait_drawn(admin)
    names = {chart["name"] for chart in check_charts(admin)}
    expected = {*CHART_LABELS, "Registered instances over time", "Crawled instances over time"}
    assert names == expected
    # the crawled-instances card: its sentence tells the chart's last point, nothing else
    spec = admin.locator("#chart-active").evaluate("(c) => JSON.parse(c.dataset.chart)")
    expect(admin.get_by_test_id("crawled-last")).to_have_text(
        f"{spec['values'][-1]} instances were crawled successfully on {spec['labels'][-1]}."
    )
    countries = admin.get_by_role("table").filter(
        has=admin.get_by_role("columnheader", name="Share")
    )
    for country in ("Germany", "France", "Japan"):
        expect(countries.get_by_role("cell", name=country)).to_be_visible()
    check_page(admin, f"{live.backend}-statistics")

    admin.get_by_role("link", name="All instances").click()
    expect(admin.get_by_role("link", name="All instances")).to_have_attribute(
        "aria-current", "true"
    )
    expect(world.locator("svg")).to_be_visible()
    check_page(admin, f"{live.backend}-statistics-all")


def test_trend_view_of_a_count_chart(admin: Page, live: LiveApp) -> None:
    open_statistics(admin)
    trend = admin.get_by_role("combobox", name="Trend").first
    expect(trend).to_be_visible()
    with admin.expect_response(re.compile(r"/api/admin/statistics/trend\?")) as answer:
        trend.select_option(label="Trend by day")
    assert answer.value.ok
    expect(trend).to_have_value("day")
    check_page(admin, f"{live.backend}-statistics-trend")


def test_public_statistics_without_login(page: Page, live: LiveApp) -> None:
    """PUBLIC_STATISTICS: the aggregates for anyone, strangers' strings as text, nothing personal.

    The watch of the conftest fails the test on a request to another origin, a console error
    (a CSP refusal of an injected script included) or a dialog (a payload that ran).
    """
    page.goto("/public/statistics")
    expect(page.get_by_role("heading", level=1, name="Statistics")).to_be_visible()
    expect(page.get_by_role("button", name="Log out")).to_have_count(0)
    expect(page.get_by_test_id("world-map").locator("svg")).to_be_visible()
    expect(page.get_by_role("link", name="IP Geolocation by DB-IP").first).to_be_visible()
    for label in CHART_LABELS:
        expect(page.get_by_role("img", name=label, exact=True)).to_be_visible()
    wait_drawn(page)
    check_charts(page)
    page.wait_for_load_state("networkidle")
    # the crawled payloads are chart labels: shown as text, never as elements
    main = page.locator("main")
    expect(main).to_contain_text(XSS_IMG)
    assert page.locator('img[src="x"]').count() == 0
    scripts = page.locator("script").evaluate_all("(s) => s.map((e) => e.src)")
    assert all(src.startswith(live.url + "/static/") for src in scripts), scripts
    # nothing personal: no organization, URL, contact or e-mail; no server link, no marker
    html = page.content()
    private = [org for org, *_ in SEED if org not in (XSS_IMG, XSS_SCRIPT)] + [UNREACHABLE]
    private += ["example.org", "Contact ", "/servers/", "/i/", *live.instance_hosts.values()]
    assert [word for word in private if word in html] == []
    assert page.locator(".jvm-marker").count() == 0
    check_page(page, f"{live.backend}-public-statistics")
