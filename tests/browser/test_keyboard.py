"""Every action by keyboard alone: Tab, Shift+Tab, Enter, Space, Escape (a select: its arrows).

No click in this file: each control is reached with Tab from the top of the page, and each
element the focus passes on its way must show a focus indicator (an outline or a shadow).
The pages are the same HTML on both databases, so these run on SQLite only.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.helpers import assert_focus_visible, tab_to
from tests.browser.live import LiveApp

pytestmark = pytest.mark.parametrize("live", ["sqlite"], indirect=True)


def search_by_keyboard(page: Page, text: str) -> None:
    """Type into the list's search box and submit with Enter."""
    tab_to(page, page.get_by_role("searchbox", name="Search"))
    page.keyboard.type(text)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"[?&]q="))


#: A user of its own: a log-out ends every session of its user, and the other tests share
#: one session of the maintainer.
KEYBOARD_LEAVER = ("keyboard-leaver", "a-third-long-browser-test-password")


def test_log_in_navigate_and_log_out_by_keyboard(page: Page, live: LiveApp) -> None:
    live.cli("create_usr", *KEYBOARD_LEAVER)
    page.goto("/login")
    expect(page.get_by_label("User name")).to_be_focused()  # autofocus: type at once
    page.keyboard.type(KEYBOARD_LEAVER[0])
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type(KEYBOARD_LEAVER[1])
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1, name="Home")).to_be_visible()

    # the first stop is the skip link: it appears, and Enter skips the header's links
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    assert_focus_visible(page)
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name=re.compile(r"^\d+ Registered$"))).to_be_focused()
    assert_focus_visible(page)

    nav = page.get_by_role("navigation", name="Main")
    tab_to(page, nav.get_by_role("link", name="Statistics"), backwards=True)
    page.keyboard.press("Shift+Tab")
    expect(nav.get_by_role("link", name="Servers")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1, name="Servers")).to_be_visible()
    tab_to(page, nav.get_by_role("link", name="Statistics"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1, name="Statistics")).to_be_visible()

    tab_to(page, page.get_by_role("button", name="Log out"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1, name="Log in")).to_be_visible()


def test_column_chooser_by_keyboard_remembered_and_in_the_url(admin: Page) -> None:
    admin.goto("/servers")
    chooser = admin.locator("details[data-columns]")
    summary = chooser.locator("summary")
    python = admin.get_by_role("columnheader", name=re.compile("^Python version"))
    expect(python).to_be_visible()  # a charted field: shown by default

    tab_to(admin, summary)
    admin.keyboard.press("Enter")
    expect(chooser).to_have_attribute("open", "")
    box = chooser.get_by_label("Python version")
    tab_to(admin, box)
    expect(box).to_be_checked()
    admin.keyboard.press("Space")
    expect(box).not_to_be_checked()
    expect(python).to_be_hidden()
    admin.keyboard.press("Escape")  # closes the chooser, the focus back on its summary
    expect(chooser).not_to_have_attribute("open", "")
    expect(summary).to_be_focused()

    admin.reload()  # remembered in this browser
    expect(python).to_be_hidden()
    expect(chooser.get_by_label("Python version")).not_to_be_checked()
    assert "python_version" not in admin.evaluate("localStorage.getItem('cephalopod.columns')")

    # a shared view: the URL's columns win over the remembered choice, and stay in its links
    admin.goto("/servers?columns=python_version,language")
    language = admin.get_by_role("columnheader", name=re.compile("^Language"))
    indico = admin.get_by_role("columnheader", name=re.compile("^Indico version"))
    expect(python).to_be_visible()
    expect(language).to_be_visible()
    expect(indico).to_be_hidden()
    tab_to(admin, summary)
    admin.keyboard.press("Enter")
    tab_to(admin, chooser.get_by_label("Language"))
    admin.keyboard.press("Space")
    expect(language).to_be_hidden()
    expect(admin).to_have_url(re.compile(r"columns=python_version$"))
    sort_link = admin.get_by_role("columnheader", name=re.compile("^Country")).get_by_role("link")
    expect(sort_link).to_have_attribute("href", re.compile(r"columns=python_version(&|$)"))
    admin.reload()
    expect(python).to_be_visible()
    expect(language).to_be_hidden()
    expect(indico).to_be_hidden()


def test_row_expansion_by_keyboard(admin: Page, live: LiveApp) -> None:
    admin.goto("/servers")
    row = admin.get_by_test_id(f"row-{live.seeded['Alpha University']}")
    more = row.locator("details.more")
    tab_to(admin, more.locator("summary"))
    expect(row.get_by_text("Contact", exact=True)).to_be_hidden()
    admin.keyboard.press("Enter")
    expect(more).to_have_attribute("open", "")
    expect(row.get_by_text("Contact", exact=True)).to_be_visible()
    expect(row.get_by_text(live.seeded["Alpha University"])).to_be_visible()  # the UUID
    admin.keyboard.press("Space")  # Space toggles it too
    expect(more).not_to_have_attribute("open", "")


def test_delete_dialog_by_keyboard(admin: Page, live: LiveApp) -> None:
    uuid = live.register("Keyboard Delete Me")
    admin.goto("/servers")
    search_by_keyboard(admin, "Keyboard Delete Me")
    row = admin.get_by_test_id(f"row-{uuid}")
    delete = row.get_by_role("button", name="Delete")
    tab_to(admin, delete)
    admin.keyboard.press("Enter")
    dialog = admin.get_by_role("dialog", name="Delete this server?")
    expect(dialog).to_be_visible()
    cancel = dialog.get_by_role("button", name="Cancel")
    expect(cancel).to_be_focused()  # the focus moved into it, on the safe choice
    assert_focus_visible(admin)
    admin.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(delete).to_be_focused()  # and came back to the button that opened it
    expect(row).to_be_visible()

    admin.keyboard.press("Space")  # open it again, with Space this time
    expect(dialog).to_be_visible()
    confirm = dialog.get_by_role("button", name="Delete")
    admin.keyboard.press("Tab")
    expect(confirm).to_be_focused()
    assert_focus_visible(admin)
    admin.keyboard.press("Shift+Tab")
    expect(cancel).to_be_focused()
    admin.keyboard.press("Enter")  # Cancel by Enter: closed, focus back, nothing deleted
    expect(dialog).to_be_hidden()
    expect(delete).to_be_focused()

    admin.keyboard.press("Enter")
    admin.keyboard.press("Tab")
    expect(confirm).to_be_focused()
    admin.keyboard.press("Enter")
    expect(admin.get_by_role("status").filter(has_text="deleted")).to_be_visible()
    search_by_keyboard(admin, "Keyboard Delete Me")
    expect(admin.get_by_text("No server matches")).to_be_visible()


def test_crawl_now_and_crawl_all_by_keyboard(admin: Page, live: LiveApp) -> None:
    uuid = live.register("Keyboard Crawl Me", "127.0.0.3")
    admin.goto("/servers")
    search_by_keyboard(admin, "Keyboard Crawl Me")
    row = admin.get_by_test_id(f"row-{uuid}")
    expect(row.get_by_text("Never crawled", exact=True)).to_be_visible()
    crawl = row.get_by_role("button", name="Crawl now")
    tab_to(admin, crawl)
    admin.keyboard.press("Enter")
    expect(row.get_by_text("OK", exact=True)).to_be_visible()
    expect(crawl).to_be_focused()  # the focus stayed on the button while it was busy
    assert_focus_visible(admin)

    admin.goto("/")
    crawl_all = admin.get_by_role("button", name="Crawl all")
    tab_to(admin, crawl_all)
    admin.keyboard.press("Enter")
    text = admin.get_by_test_id("crawl-progress-text")
    expect(text).to_have_text(re.compile(r"^(\d+) / \1 · \d+ ok · \d+ failed · done$"))
    expect(crawl_all).to_be_focused()


def test_trend_picker_and_chart_data_by_keyboard(admin: Page) -> None:
    admin.goto("/statistics")
    trend = admin.get_by_role("combobox", name="Trend").first
    canvas_id = trend.get_attribute("data-canvas")
    canvas = admin.locator(f"#{canvas_id}")
    figure = admin.locator("figure").filter(has=canvas)
    name = canvas.get_attribute("aria-label")
    tab_to(admin, trend)
    with admin.expect_response(re.compile(r"/api/admin/statistics/trend\?")) as answer:
        admin.keyboard.press("ArrowDown")  # a closed select changes with the arrows
    assert answer.value.ok
    expect(trend).to_have_value("day")
    expect(canvas).to_have_attribute("aria-label", f"{name}: trend by day")
    expect(figure.locator(".chart-summary")).to_contain_text("share of instances")

    data = figure.locator("details.chart-data")
    tab_to(admin, data.locator("summary"))
    admin.keyboard.press("Enter")
    table = data.get_by_role("table")
    expect(table).to_be_visible()
    expect(table.locator("caption")).to_contain_text("share of instances (%) by day")
    expect(table.get_by_role("columnheader", name="Day")).to_be_visible()
    expect(table.locator("tbody tr").first).to_contain_text("%")

    tab_to(admin, trend, backwards=True)
    admin.keyboard.press("ArrowUp")  # back to the current values, and their table
    expect(trend).to_have_value("")
    expect(canvas).to_have_attribute("aria-label", name or "")
    expect(table.locator("caption")).to_have_text(name or "")  # the current values' table


def test_edit_form_by_keyboard(admin: Page, live: LiveApp) -> None:
    uuid = live.register("Keyboard Edit Me")
    admin.goto(f"/servers/{uuid}")
    organization = admin.get_by_label("Organization")
    tab_to(admin, organization)
    admin.keyboard.press("ControlOrMeta+a")
    admin.keyboard.type("Keyboard Edited")
    enabled = admin.get_by_role("switch", name="Enabled")
    tab_to(admin, enabled)
    expect(enabled).to_be_checked()
    admin.keyboard.press("Space")
    expect(enabled).not_to_be_checked()
    tab_to(admin, admin.get_by_role("button", name="Save"))
    admin.keyboard.press("Enter")
    expect(admin.get_by_role("status").filter(has_text="Saved.")).to_be_visible()
    expect(admin.get_by_role("heading", level=1, name="Keyboard Edited")).to_be_visible()
    expect(admin.get_by_role("switch", name="Enabled")).not_to_be_checked()

    # Enter in a text field submits the form too
    tab_to(admin, admin.get_by_label("Contact"))
    admin.keyboard.press("ControlOrMeta+a")
    admin.keyboard.type("Contact by keyboard")
    admin.keyboard.press("Enter")
    expect(admin.get_by_role("status").filter(has_text="Saved.")).to_be_visible()
    expect(admin.get_by_label("Contact")).to_have_value("Contact by keyboard")
