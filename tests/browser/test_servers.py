"""User stories of the server list and the server detail page."""

from __future__ import annotations

import re

from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import Watch
from tests.browser.helpers import check_axe, check_charts, check_page, screenshot, wait_drawn
from tests.browser.live import SEED, SLOW_FROM, SLOW_SECONDS, UNREACHABLE, LiveApp


def row_of(page: Page, live: LiveApp, organization: str) -> Locator:
    return page.get_by_test_id(f"row-{live.seeded[organization]}")


def open_servers(page: Page) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Servers").click()
    expect(page.get_by_role("heading", level=1, name="Servers")).to_be_visible()


def search(page: Page, text: str) -> None:
    page.get_by_role("searchbox", name="Search").fill(text)
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"[?&]q="))


def column_texts(page: Page, index: int) -> list[str]:
    """The visible text of one column (0-based, among all cells) of every row."""
    return page.locator("table.servers tbody tr").evaluate_all(
        "(rows, i) => rows.map((r) => r.cells[i].textContent.trim())", index
    )


def test_see_the_servers(admin: Page, live: LiveApp) -> None:
    open_servers(admin)
    for organization, *_ in SEED:
        expect(row_of(admin, live, organization)).to_be_visible()
    failing = row_of(admin, live, UNREACHABLE)
    expect(failing.get_by_text("Failing", exact=True)).to_be_visible()
    link = row_of(admin, live, "Alpha University").get_by_role("link", name=re.compile("^http"))
    expect(link).to_have_attribute("rel", "noopener noreferrer")
    expect(link).to_have_attribute("target", "_blank")
    check_page(admin, f"{live.backend}-servers")


def test_sort_servers_by_crawled_field(admin: Page, live: LiveApp) -> None:
    open_servers(admin)
    header = admin.get_by_role("columnheader", name=re.compile("^Indico version"))
    header.get_by_role("link", name="Indico version").click()
    expect(header).to_have_attribute("aria-sort", re.compile("ascending|descending"))
    first = header.get_attribute("aria-sort")
    index = header.evaluate("(th) => th.cellIndex")
    versions = [v for v in column_texts(admin, index) if re.match(r"^\d", v)]
    assert len(versions) >= 5
    assert versions == sorted(versions, reverse=first == "descending")
    expect(admin).to_have_url(re.compile(r"sort=field(%3A|:)indico_version"))

    header.get_by_role("link", name="Indico version").click()  # again: the other way round
    second = "ascending" if first == "descending" else "descending"
    expect(header).to_have_attribute("aria-sort", second)
    again = [v for v in column_texts(admin, index) if re.match(r"^\d", v)]
    assert again == sorted(versions, reverse=second == "descending")
    admin.go_back()  # the sort lives in the URL: back restores it
    expect(header).to_have_attribute("aria-sort", first)
    check_page(admin, f"{live.backend}-servers-sorted")


def test_filter_servers_by_country_and_health(admin: Page, live: LiveApp) -> None:
    open_servers(admin)
    admin.get_by_label("Country").select_option("FR")
    admin.get_by_role("button", name="Filter").click()
    expect(admin).to_have_url(re.compile(r"country=FR"))
    expect(row_of(admin, live, "Delta Observatory")).to_be_visible()
    expect(row_of(admin, live, "Alpha University")).to_have_count(0)
    countries = column_texts(admin, 2)
    assert countries
    assert set(countries) == {"France"}

    admin.get_by_role("link", name="Reset").click()
    admin.get_by_label("Health").select_option(label="Failing")
    admin.get_by_role("button", name="Filter").click()
    expect(row_of(admin, live, UNREACHABLE)).to_be_visible()
    expect(admin.locator("table.servers tbody tr")).to_have_count(1)

    search(admin, "no such server anywhere")
    expect(admin.get_by_text("No server matches")).to_be_visible()
    check_page(admin, f"{live.backend}-servers-empty")


def test_open_a_server_and_edit_it(admin: Page, live: LiveApp, watch: Watch) -> None:
    uuid = live.register("Editable Organization")
    open_servers(admin)
    search(admin, "Editable Organization")
    admin.get_by_role("link", name="Editable Organization").click()
    expect(admin.get_by_role("heading", level=1, name="Editable Organization")).to_be_visible()
    expect(admin).to_have_url(re.compile(uuid))
    for section in ("Main information", "Edit", "Crawled information", "Health", "Location"):
        expect(admin.get_by_role("heading", level=2, name=section)).to_be_visible()
    check_page(admin, f"{live.backend}-server")

    admin.get_by_label("Organization").fill("Renamed Organization")
    admin.get_by_role("button", name="Save").click()
    expect(admin.get_by_role("status").filter(has_text="Saved.")).to_be_visible()
    expect(admin.get_by_role("heading", level=1, name="Renamed Organization")).to_be_visible()

    watch.allow_status(400)  # the refused edit answers 400 with the form and its message
    email = admin.get_by_label("E-mail")
    email.fill("not an e-mail address")
    admin.get_by_role("button", name="Save").click()
    expect(email).to_have_attribute("aria-invalid", "true")
    error = admin.locator("#email-error")
    expect(error).to_be_visible()
    expect(error).not_to_be_empty()
    # the message is next to its field: right after the input, and the input points at it
    assert email.evaluate("(el) => el.nextElementSibling?.id") == "email-error"
    expect(email).to_have_attribute("aria-describedby", re.compile("email-error"))
    check_page(admin, f"{live.backend}-server-refused-edit")


def test_crawl_a_server_now(admin: Page, live: LiveApp) -> None:
    uuid = live.register("Crawl Me Now", "127.0.0.4")
    open_servers(admin)
    search(admin, "Crawl Me Now")
    row = admin.get_by_test_id(f"row-{uuid}")
    expect(row.get_by_text("Never crawled", exact=True)).to_be_visible()
    row.get_by_role("button", name="Crawl now").click()
    expect(row.get_by_text("OK", exact=True)).to_be_visible()  # the row updates in place
    row.get_by_role("link", name="Crawl Me Now").click()
    expect(admin.get_by_text("Japan").first).to_be_visible()
    expect(admin.get_by_test_id("server-map")).to_be_visible()
    expect(admin.get_by_test_id("server-map").locator("svg")).to_be_visible()
    expect(admin.get_by_role("link", name="IP Geolocation by DB-IP")).to_be_visible()
    wait_drawn(admin)  # the history: one chart per numeric field, each with its table
    assert {c["name"] for c in check_charts(admin)} >= {"Events over time"}
    check_page(admin, f"{live.backend}-server-crawled")


def test_delete_a_server_with_its_confirmation(admin: Page, live: LiveApp) -> None:
    uuid = live.register("Delete Me Please")
    open_servers(admin)
    search(admin, "Delete Me Please")
    row = admin.get_by_test_id(f"row-{uuid}")
    # the dialog is the page script's: clicked before it ran, the server asks on a page
    expect(row.locator("form[data-delete][data-enhanced]")).to_have_count(1)
    row.get_by_role("button", name="Delete").click()
    dialog = admin.get_by_role("dialog", name="Delete this server?")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Delete Me Please")
    screenshot(admin, f"{live.backend}-servers-delete-dialog", full_page=False)
    check_axe(admin)
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    expect(row).to_be_visible()  # cancelled: nothing deleted

    row.get_by_role("button", name="Delete").click()
    dialog.get_by_role("button", name="Delete").click()
    expect(admin.get_by_role("status").filter(has_text="deleted")).to_be_visible()
    search(admin, "Delete Me Please")
    expect(admin.get_by_text("No server matches")).to_be_visible()


def test_crawl_all_with_its_progress(admin: Page, live: LiveApp) -> None:
    open_servers(admin)
    admin.get_by_role("button", name="Crawl all").first.click()
    progress = admin.get_by_test_id("crawl-progress")
    expect(progress).to_be_visible()
    expect(admin.get_by_label("Crawl progress")).to_be_visible()
    text = admin.get_by_test_id("crawl-progress-text")
    expect(text).to_have_text(re.compile(r"^(\d+) / \1 · \d+ ok · [1-9]\d* failed · done$"))
    check_page(admin, f"{live.backend}-servers-crawl-all")


def delete_by_api(page: Page, uuid: str) -> None:
    """Delete a server as the page's scripts would (the session cookie and its CSRF header)."""
    status = page.evaluate(
        """async (uuid) => (await fetch(`/api/admin/instances/${uuid}`, {
            method: "DELETE", credentials: "same-origin",
            headers: {"X-CSRFToken": document.querySelector('meta[name="csrf-token"]').content},
        })).status""",
        uuid,
    )
    assert status == 204, status


def test_crawl_all_progress_survives_a_reload(admin: Page, live: LiveApp) -> None:
    """A reload in the middle of "Crawl all" shows the same job's progress again, to its end."""
    slow = [live.register(f"Slow Server {i}", n=SLOW_FROM + live.counter + 1) for i in range(2)]
    try:
        open_servers(admin)
        admin.get_by_role("button", name="Crawl all").first.click()
        progress = admin.get_by_test_id("crawl-progress")
        text = admin.get_by_test_id("crawl-progress-text")
        expect(text).to_have_text(re.compile(r"^\d+ / \d+ · .* · (queued|running)$"))
        job = progress.get_attribute("data-job")
        assert job
        admin.reload()
        # The server put the running job in the page: the box is shown before any script runs.
        expect(progress).to_be_visible()
        assert progress.get_attribute("data-job") == job
        expect(text).to_have_text(
            re.compile(r"^\d+ / \d+ · \d+ ok · \d+ failed · (queued|running)$")
        )
        expect(admin.get_by_label("Crawl progress")).to_be_visible()
        expect(text).to_have_text(
            re.compile(r"^(\d+) / \1 · \d+ ok · [1-9]\d* failed · done$"),
            timeout=SLOW_SECONDS * 1000 * 4 + 15_000,
        )
        done, total = admin.get_by_label("Crawl progress").evaluate("(p) => [p.value, p.max]")
        assert done == total >= len(SEED) + 1 + len(slow)
        check_page(admin, f"{live.backend}-servers-crawl-all-reloaded")
    finally:
        for uuid in slow:
            delete_by_api(admin, uuid)
