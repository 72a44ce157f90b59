"""What every browser flow checks on every page: axe-core, a screenshot to look at."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator, Page

HERE = Path(__file__).parent
AXE_FILE = HERE / "vendor" / "axe-core-4.14.1.min.js"
#: Screenshots of every page the flows visit (git-ignored), to be looked at by a person.
ARTIFACTS = HERE / "artifacts"
BLOCKING = ("serious", "critical")


@functools.cache
def axe_source() -> str:
    return AXE_FILE.read_text()


def check_axe(page: Page) -> None:
    """Run axe-core on the page: no violation of impact serious or critical.

    axe is evaluated through the DevTools protocol (page.evaluate), not added as a <script>:
    the app's Content-Security-Policy rightly refuses inline scripts, and axe is never served.
    """
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(axe_source())
    result: dict[str, Any] = page.evaluate(
        """async () => await window.axe.run(document, {
            resultTypes: ['violations'],
            runOnly: {type: 'tag',
                      values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']},
        })"""
    )
    bad = [v for v in result["violations"] if v["impact"] in BLOCKING]
    assert not bad, f"axe on {page.url}:\n" + "\n".join(
        f"- [{v['impact']}] {v['id']}: {v['help']} — "
        + "; ".join(n["target"][0] if n["target"] else "?" for n in v["nodes"][:5])
        for v in bad
    )


def screenshot(page: Page, name: str, full_page: bool = True) -> Path:
    """Save a screenshot under artifacts/ (name plus the database in the file name).

    The whole page, or only the window (a modal dialog covers the window, not the page).
    """
    ARTIFACTS.mkdir(exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name)
    path = ARTIFACTS / f"{safe}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def check_page(page: Page, name: str) -> None:
    """Every page of a flow: a screenshot, then axe."""
    screenshot(page, name)
    check_axe(page)


#: What the focused element looks like: a focus indicator is an outline or a box shadow.
FOCUS_STYLE = """(target) => {
    const el = document.activeElement;
    if (!el || el === document.body) return null;
    const style = getComputedStyle(el);
    const box = el.getBoundingClientRect();
    const text = (el.textContent || el.value || "").trim().slice(0, 40);
    return {
        element: `${el.tagName.toLowerCase()} "${text}"`,
        outline: style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2,
        shadow: style.boxShadow !== "none",
        visible: el.checkVisibility() && box.width > 0 && box.height > 0,
        reached: el === target,
    };
}"""


def _check_focus(focus: dict[str, Any] | None) -> dict[str, Any]:
    assert focus is not None, "the keyboard focus fell back to the page"
    assert focus["visible"], f"{focus['element']} has the focus but is not visible"
    assert focus["outline"] or focus["shadow"], f"{focus['element']} shows no focus indicator"
    return focus


def assert_focus_visible(page: Page) -> str:
    """The focused element is visible and shows a focus indicator; return its description."""
    return _check_focus(page.evaluate(FOCUS_STYLE, None))["element"]


def tab_to(page: Page, target: Locator, *, backwards: bool = False, limit: int = 80) -> None:
    """Press Tab (or Shift+Tab) until ``target`` has the focus, as a keyboard user would.

    Every element the focus passes on its way must show where the focus is.
    """
    key = "Shift+Tab" if backwards else "Tab"
    handle = target.element_handle()
    passed: list[str] = []
    for _ in range(limit):
        page.keyboard.press(key)
        focus = _check_focus(page.evaluate(FOCUS_STYLE, handle))
        passed.append(focus["element"])
        if focus["reached"]:
            return
    pytest.fail(f"{key} never reached {target} in {limit} presses; passed: {passed[-10:]}")


def open_every_details(page: Page, open_: bool = True) -> None:
    """Expand (or fold again) every <details>: row expansions, raw values, data tables."""
    page.evaluate(
        "(open) => document.querySelectorAll('details').forEach((d) => { d.open = open; })", open_
    )


#: Every chart on the page, as a person with a screen reader (or a table) would meet it.
CHARTS = """() => [...document.querySelectorAll("main canvas")].map((canvas) => {
    const chart = window.Chart?.getChart(canvas);
    const figure = canvas.closest("figure");
    const summary = document.getElementById(canvas.getAttribute("aria-describedby") ?? "");
    const data = figure?.querySelector("details.chart-data");
    const spec = JSON.parse(canvas.dataset.chart ?? "null");
    return {
        id: canvas.id,
        role: canvas.getAttribute("role"),
        name: canvas.getAttribute("aria-label") ?? "",
        summary: summary?.textContent.trim() ?? "",
        toggle: data?.querySelector("summary")?.textContent.trim() ?? "",
        rows: data ? data.querySelectorAll("tbody tr").length : -1,
        points: spec ? spec.labels.length : -1,
        drawn: Boolean(chart),
        yTicks: chart?.scales?.y ? chart.scales.y.ticks.map((t) => t.value) : [],
    };
})"""


def check_charts(page: Page) -> list[dict[str, Any]]:
    """Every chart is drawn, named (role img, a label, a summary) and has its data as a table.

    The charts here count instances (or sum whole numbers): their value axis shows whole
    numbers only, never 0.5.
    """
    charts: list[dict[str, Any]] = page.evaluate(CHARTS)
    assert charts, f"no chart on {page.url}"
    for chart in charts:
        assert chart["drawn"], chart
        assert chart["role"] == "img", chart
        assert chart["name"], chart
        assert chart["summary"], chart
        assert chart["toggle"] == "Data as a table", chart
        assert chart["rows"] == chart["points"] > 0, chart
        assert all(float(v).is_integer() for v in chart["yTicks"]), chart
    return charts


#: Elements of <main> that stick out of it (outside any box of their own that scrolls or clips).
SPILLS = """() => {
    const main = document.querySelector("main");
    const padding = parseFloat(getComputedStyle(main).paddingRight);
    const edge = main.getBoundingClientRect().right - padding;
    const clipped = (el) => {
        for (let e = el.parentElement; e && e !== main; e = e.parentElement) {
            if (getComputedStyle(e).overflowX !== "visible") return true;
        }
        return false;
    };
    return [...main.querySelectorAll("*")]
        .filter((el) => el.checkVisibility() && el.getBoundingClientRect().right > edge + 1)
        .filter((el) => !clipped(el))
        .map((el) => `${el.tagName}.${el.className} "${el.textContent.trim().slice(0, 30)}"`)
        .slice(0, 5);
}"""


def check_layout(page: Page) -> None:
    """Nothing overflows the page sideways, nor sticks out of the content column."""
    width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"{page.url} scrolls sideways: {width}"
    spills = page.evaluate(SPILLS)
    assert not spills, f"{page.url}: these stick out of the content: {spills}"


def wait_drawn(page: Page) -> None:
    """Wait until every chart and map of the page has been drawn by its script."""
    page.wait_for_function(
        """() => [...document.querySelectorAll("canvas[data-chart]")]
                .every((c) => window.Chart?.getChart(c))
            && [...document.querySelectorAll("[data-map]")].every((m) => m.querySelector("svg"))"""
    )
