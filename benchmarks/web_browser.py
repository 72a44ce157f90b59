"""The browser half of ``python -m benchmarks web``: Chromium against a real ``cephalopod run``.

Playwright (the pinned 1.64.1) drives Debian's ``/usr/bin/chromium`` with the arguments the
browser tests use, against ``cephalopod run`` on a free loopback port, on the benchmark's
database and settings, logged in through the log-in form once. Each load is timed from the
navigation's start (``performance.timeOrigin``), in a fresh browser context (an empty cache:
the first visit) and then again in the same context (the visit after, from the cache):

- **list interactive**: the Servers page's ``DOMContentLoaded`` handlers have run. Module
  scripts (``servers.js``, ``crawl.js``) run before that event, so by then the column
  chooser, the crawl buttons and the delete dialog answer; the end of ``load`` is printed too.
- **statistics drawn**: every chart canvas has its Chart.js chart with a size (Chart.js
  draws synchronously: animation is off) or was hidden by the page (a trend it could not
  fetch), the asynchronously fetched trend of active instances included, and the world map
  has its country paths and one circle per marker of its data. The page is polled once per
  animation frame, so the figure is exact to a frame (about 17 ms).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, Playwright, sync_playwright

CHROMIUM = "/usr/bin/chromium"
#: As tests/browser/conftest.py launches it.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
START_TIMEOUT = 120.0
DRAW_TIMEOUT_MS = 60_000

#: Milliseconds from the navigation's start when every chart and the map are drawn, else false.
DRAWN = """() => {
  const canvases = [...document.querySelectorAll("canvas[data-chart], canvas[data-trend-field]")];
  const charted = canvases.every((canvas) => canvas.closest(".canvas-box")?.hidden
    || (window.Chart?.getChart(canvas)?.width ?? 0) > 0);
  const maps = [...document.querySelectorAll("[data-map]")];
  const mapped = maps.every((map) => {
    const markers = (JSON.parse(map.dataset.map).markers ?? []).length;
    return map.querySelectorAll("path.jvm-region").length > 100
      && map.querySelectorAll("circle.jvm-marker").length === markers;
  });
  return canvases.length > 0 && maps.length > 0 && charted && mapped && performance.now();
}"""
#: The navigation's own timings, in ms from its start.
NAVIGATION = """() => {
  const nav = performance.getEntriesByType("navigation")[0];
  return { ttfb: nav.responseStart, interactive: nav.domContentLoadedEventEnd,
           load: nav.loadEventEnd, size: nav.transferSize };
}"""


@dataclass
class Live:
    """A running ``cephalopod run``, Playwright, the browser and the logged-in cookies."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path
    playwright: Playwright
    browser: Browser
    cookies: list[Any]
    list_url: str
    list_rows: int
    trend_url: str


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_live(
    settings: Path,
    folder: Path,
    user: tuple[str, str],
    list_url: str,
    list_rows: int,
    trend_url: str,
) -> Live:
    """Start ``cephalopod run`` on the settings, wait for it, launch Chromium and log in.

    ``list_url`` is the Servers page to time (a path with its query), which shows
    ``list_rows`` rows; ``trend_url`` what the statistics page fetches (warmed too).
    """
    port = free_port()
    env = {
        **os.environ,
        "CEPHALOPOD_SETTINGS": str(settings),
        "CEPHALOPOD_INSTANCE_PATH": str(folder / "instance"),  # as web.py,
    }
    log = folder / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "cephalopod", "run", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(process, url, log)
        playwright = sync_playwright().start()
    except BaseException:
        _stop(process)
        raise
    try:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(base_url=url)
        page = context.new_page()
        page.goto("/login")
        page.get_by_label("User name").fill(user[0])
        page.get_by_label("Password").fill(user[1])
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(f"{url}/")
        cookies = context.cookies()
        context.close()
    except BaseException:
        playwright.stop()
        _stop(process)
        raise
    return Live(process, url, log, playwright, browser, cookies, list_url, list_rows, trend_url)


def _wait_for(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"cephalopod run exited:\n{log.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(f"{url}/login", timeout=2) as reply:  # noqa: S310 - loopback
                if reply.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"cephalopod run did not answer:\n{log.read_text(errors='replace')}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(15)


def stop_live(live: Live) -> None:
    """Close the browser and Playwright, stop the server."""
    try:
        live.browser.close()
        live.playwright.stop()
    finally:
        _stop(live.process)


def _list_load(page: Page, live: Live) -> dict[str, float]:
    page.goto(live.list_url, wait_until="load")
    timings = page.evaluate(NAVIGATION)
    if page.locator("tr[data-uuid]").count() != live.list_rows:
        raise RuntimeError(f"the list page did not show {live.list_rows} rows")
    return timings


def _statistics_load(page: Page, _live: Live) -> dict[str, float]:
    page.goto("/statistics", wait_until="commit")
    drawn = page.wait_for_function(DRAWN, polling="raf", timeout=DRAW_TIMEOUT_MS).json_value()
    return {**page.evaluate(NAVIGATION), "drawn": float(drawn)}


def _loads(live: Live, load: Any, repeat: int) -> tuple[list[dict[str, float]], ...]:
    """Time ``repeat`` loads, each a first visit and a visit after: (first, cached) timings."""
    first: list[dict[str, float]] = []
    again: list[dict[str, float]] = []
    for _ in range(repeat):
        context = live.browser.new_context(
            base_url=live.url, viewport={"width": 1280, "height": 900}
        )
        try:
            context.add_cookies(live.cookies)
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
            first.append(load(page, live))
            again.append(load(page, live))
            if errors:
                raise RuntimeError(f"the page raised: {errors}")
        finally:
            context.close()
    return first, again


def browser_round(live: Live, record: Callable[[str, list[float]], None], repeat: int) -> None:
    """One round of the Chromium measurements, each given to ``record`` (name, times in ms).

    The server's caches are warmed first (the pages and the trend the statistics page
    fetches): the figures are the browser's part plus pages served as usual, not the first
    computation after a change (the server-time figures give that). "first byte" is when the
    page's HTML began to arrive (the server's part, over loopback HTTP).
    """
    cookie = "; ".join(f"{c['name']}={c['value']}" for c in live.cookies)
    for page, load, key, warm in (
        ("list", _list_load, "interactive", (live.list_url,)),
        ("statistics", _statistics_load, "drawn", ("/statistics", live.trend_url)),
    ):
        for path in warm:  # right before: a cached entry lives a minute (stats.cache.MAX_AGE)
            request = urllib.request.Request(live.url + path, headers={"Cookie": cookie})  # noqa: S310
            with urllib.request.urlopen(request, timeout=60) as reply:  # noqa: S310 - loopback
                reply.read()
        first, again = _loads(live, load, repeat)
        record(f"chromium: {page} {key}", [t[key] for t in first])
        record(f"chromium: {page} {key}, from cache", [t[key] for t in again])
        record(f"chromium: {page} first byte", [t["ttfb"] for t in first])
