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


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot under artifacts/ (name plus the database in the file name)."""
    ARTIFACTS.mkdir(exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name)
    path = ARTIFACTS / f"{safe}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def check_page(page: Page, name: str) -> None:
    """Every page of a flow: a screenshot, then axe."""
    screenshot(page, name)
    check_axe(page)


#: What the focused element looks like: a focus indicator is an outline or a box shadow.
FOCUS_STYLE = """() => {
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
    };
}"""


def assert_focus_visible(page: Page) -> str:
    """The focused element is visible and shows a focus indicator; return its description."""
    focus = page.evaluate(FOCUS_STYLE)
    assert focus is not None, "the keyboard focus fell back to the page"
    assert focus["visible"], f"{focus['element']} has the focus but is not visible"
    assert focus["outline"] or focus["shadow"], f"{focus['element']} shows no focus indicator"
    return focus["element"]


def has_focus(target: Locator) -> bool:
    return target.evaluate("(el) => el === document.activeElement")


def tab_to(page: Page, target: Locator, *, backwards: bool = False, limit: int = 80) -> None:
    """Press Tab (or Shift+Tab) until ``target`` has the focus, as a keyboard user would.

    Every element the focus passes on its way must show where the focus is.
    """
    key = "Shift+Tab" if backwards else "Tab"
    passed: list[str] = []
    for _ in range(limit):
        page.keyboard.press(key)
        passed.append(assert_focus_visible(page))
        if has_focus(target):
            return
    pytest.fail(f"{key} never reached {target} in {limit} presses; passed: {passed[-10:]}")


def open_every_details(page: Page) -> None:
    """Expand every <details> (row expansions, raw values, data tables) so axe sees them."""
    page.evaluate("() => document.querySelectorAll('details').forEach((d) => { d.open = true; })")
