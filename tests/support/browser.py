"""Browser tests: Debian's Chromium driven by Playwright's sync API (never Playwright's own
browser download), a page on a test server, a guard that no asset loads from another host,
axe-core for accessibility and screenshots.

Chromium is /usr/bin/chromium (`apt-get install chromium`; `.ci/run` installs it), or the
executable named by CHAIRSIDE_CHROMIUM. When there is none the browser tests are skipped,
with the reason in pytest's summary (`-ra`, on by default) and in its header.

Playwright's sync API keeps its event loop marked as running in this thread between calls,
and `asyncio.run()` refuses to start while it is, which the rest of the suite (the server and
database fixtures, the in-process tier) does all the time. So `BrowserSession` marks that loop
only while browser code runs: from a `page` fixture's setup to its teardown, and while a test
that uses the browser runs. Inside a browser test, seed data over HTTP (the `admin`, `nurse`,
... clients), or wrap the asyncio code in `browser_session.parked()` (and call no Playwright
in it).
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Route,
    ViewportSize,
    WebSocketRoute,
    sync_playwright,
)

CHROMIUM = os.environ.get("CHAIRSIDE_CHROMIUM") or "/usr/bin/chromium"
# The machine's closed network refuses Chromium's own background connections: keep it from
# making any (updates, sync, field trials, QUIC), so nothing but the page touches the network.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
VIEWPORT: ViewportSize = {"width": 1366, "height": 768}
AXE = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
SERIOUS: tuple[str, ...] = ("serious", "critical")


def chromium_missing() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK):
        return None
    return (
        f"browser tests skipped: no Chromium at {CHROMIUM} "
        "(apt-get install chromium, or set CHAIRSIDE_CHROMIUM to one)"
    )


SKIP_REASON = chromium_missing()
requires_chromium = pytest.mark.skipif(SKIP_REASON is not None, reason=SKIP_REASON or "")


class BrowserSession:
    """Playwright and one headless Chromium, for the whole run.

    Playwright's loop is marked running only between `resume()` and `park()`, or inside
    `active()`; the fixtures do this, see the module's docstring."""

    def __init__(self, executable: str = CHROMIUM) -> None:
        self._playwright = sync_playwright().start()
        self._loop = asyncio.events._get_running_loop()
        try:
            self.browser: Browser = self._playwright.chromium.launch(
                executable_path=executable, headless=True, args=list(CHROMIUM_ARGS)
            )
        except BaseException:
            self._playwright.stop()
            raise
        finally:
            self.park()

    def resume(self) -> None:
        """Mark Playwright's loop running: from here on Playwright works, asyncio.run doesn't."""
        current = asyncio.events._get_running_loop()
        if current is not None and current is not self._loop:
            raise RuntimeError("browser tests are synchronous: another event loop is running")
        asyncio.events._set_running_loop(self._loop)

    def park(self) -> None:
        """Unmark it: asyncio.run works again, Playwright calls must wait for `resume()`."""
        if asyncio.events._get_running_loop() is self._loop:
            asyncio.events._set_running_loop(None)

    @contextmanager
    def active(self) -> Iterator[None]:
        """Playwright works inside; the loop is left as it was found on the way out."""
        before = asyncio.events._get_running_loop()
        self.resume()
        try:
            yield
        finally:
            asyncio.events._set_running_loop(before)

    @contextmanager
    def parked(self) -> Iterator[None]:
        """asyncio.run works inside (and Playwright doesn't), e.g. to seed data in a test."""
        before = asyncio.events._get_running_loop()
        self.park()
        try:
            yield
        finally:
            asyncio.events._set_running_loop(before)

    def close(self) -> None:
        with self.active():
            try:
                self.browser.close()
            finally:
                self._playwright.stop()


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = {"ws": "http", "wss": "https"}.get(parts.scheme, parts.scheme)
    port = parts.port or {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or ""), port


class OffHostGuard:
    """No asset loads from another host: aborts, and records, every request a browser context
    makes anywhere but the test server (scheme, host and port), WebSockets included.

    The `page` fixture installs one, and a test that leaves a blocked request on it fails;
    `take()` returns (and forgets) the requests blocked so far, for a test that expects them."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.blocked: list[str] = []
        self._origin = _origin(base_url)

    def allows(self, url: str) -> bool:
        return _origin(url) == self._origin

    def install(self, context: BrowserContext) -> None:
        context.route(re.compile(r".*"), self._request)
        context.route_web_socket(re.compile(r".*"), self._web_socket)

    def _request(self, route: Route) -> None:
        url = route.request.url
        if self.allows(url):
            route.fallback()
        else:
            self.blocked.append(url)
            route.abort("blockedbyclient")

    def _web_socket(self, ws: WebSocketRoute) -> None:
        if self.allows(ws.url):
            ws.connect_to_server()
        else:
            self.blocked.append(ws.url)
            ws.close()

    def take(self) -> list[str]:
        blocked, self.blocked = self.blocked, []
        return blocked

    def check(self) -> None:
        __tracebackhide__ = True
        if self.blocked:
            raise AssertionError(
                f"No asset loads from another host: the page requested {', '.join(self.blocked)}"
                f" (only {self.base_url} is allowed)"
            )


def open_context(
    browser: Browser, base_url: str, guard: OffHostGuard | None = None
) -> tuple[BrowserContext, OffHostGuard]:
    """A fresh context as the `page` fixture makes them (1366x768, relative URLs resolved
    against `base_url`, an off-host guard installed), e.g. for a second user in a test;
    close it, and call the guard's `check()`, yourself."""
    guard = guard or OffHostGuard(base_url)
    context = browser.new_context(
        base_url=base_url, viewport=VIEWPORT, locale="en-US", reduced_motion="reduce"
    )
    try:
        guard.install(context)
    except BaseException:
        context.close()
        raise
    return context, guard


@cache
def _axe_source() -> str:
    return AXE.read_text(encoding="utf-8")


def axe_violations(
    page: Page,
    impact: Sequence[str] | None = SERIOUS,
    *,
    include: str | None = None,
    options: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """axe-core's violations on the page as it is now, those of the given impacts (all of them
    with impact=None), optionally within the CSS selector `include`.

    axe is evaluated through the DevTools protocol, not added as a <script>, so it runs under
    the app's Content-Security-Policy too."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(_axe_source())
        if not page.evaluate("() => typeof window.axe === 'object'"):
            raise RuntimeError("axe-core did not load into the page")
    found: list[dict[str, Any]] = page.evaluate(
        """async ([include, options]) =>
            (await window.axe.run(include ?? document, options)).violations""",
        [include, {"resultTypes": ["violations"], **(options or {})}],
    )
    return [v for v in found if impact is None or v.get("impact") in impact]


def describe_violations(violations: Sequence[dict[str, Any]]) -> str:
    """One line per violation and element, for an assertion's message."""
    lines = []
    for v in violations:
        targets = ", ".join(str(node.get("target")) for node in v.get("nodes", []))
        lines.append(f"{v.get('id')} ({v.get('impact')}): {v.get('help')} at {targets}")
    return "\n".join(lines)


def save_screenshot(page: Page, path: str | os.PathLike[str], *, full_page: bool = True) -> Path:
    """A PNG of the page at `path` (folders made as needed), animations stopped, no caret."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=out, full_page=full_page, animations="disabled", caret="hide")
    return out
