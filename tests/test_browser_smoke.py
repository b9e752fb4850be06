"""The browser-test plumbing works: Chromium reaches the test server, axe-core runs (under a
Content-Security-Policy without inline scripts, as the web app's will be), and the off-host
guard blocks and reports a request to another host."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.support.browser import (
    OffHostGuard,
    axe_violations,
    describe_violations,
    requires_chromium,
    save_screenshot,
)
from tests.support.servers import Server

pytestmark = [pytest.mark.browser, requires_chromium]

TRIVIAL = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta http-equiv="Content-Security-Policy" content="default-src 'self'; script-src 'self'">
  <title>Chairside smoke test</title>
</head>
<body>
  <header><h1>Chairside</h1></header>
  <main>
    <form>
      <label for="chair">Chair</label>
      <input id="chair" name="chair" type="text">
      <button type="submit">Book</button>
    </form>
  </main>
</body>
</html>"""


def test_chromium_opens_the_test_servers_healthz(
    page: Page, server: Server, tmp_path: Path
) -> None:
    response = page.goto("/healthz")
    assert response is not None
    assert response.status == 200
    assert response.url == server.base_url + "/healthz"
    assert json.loads(page.locator("body").inner_text()) == {"status": "ok"}
    shot = save_screenshot(page, tmp_path / "shots" / "healthz.png")
    assert shot.read_bytes().startswith(b"\x89PNG")


def test_axe_finds_nothing_serious_on_a_trivial_page(page: Page) -> None:
    page.set_content(TRIVIAL)
    assert axe_violations(page) == []
    # Every impact, not only serious and critical ones: the page is clean.
    violations = axe_violations(page, impact=None)
    assert violations == [], describe_violations(violations)
    # And axe does see a broken page (so the empty lists above mean something).
    page.set_content(TRIVIAL.replace('<label for="chair">Chair</label>', ""))
    assert [v["id"] for v in axe_violations(page)] == ["label"]


def test_the_off_host_guard_blocks_and_reports_another_host(
    page: Page, off_host_guard: OffHostGuard
) -> None:
    page.goto("/healthz")
    failed: list[str] = []
    page.on("requestfailed", lambda request: failed.append(request.url))
    page.evaluate(
        """() => new Promise(done => {
            const script = document.createElement("script");
            script.src = "http://example.invalid/x.js";
            script.onerror = done;
            document.head.append(script);
        })"""
    )
    assert failed == ["http://example.invalid/x.js"]
    assert off_host_guard.blocked == ["http://example.invalid/x.js"]
    with pytest.raises(AssertionError, match="No asset loads from another host"):
        off_host_guard.check()
    # A WebSocket to another host is refused as well; the server's own assets are not.
    page.evaluate(
        """() => new Promise(done => {
            const socket = new WebSocket("ws://example.invalid/socket");
            socket.onclose = done;
        })"""
    )
    page.evaluate("() => fetch('/healthz')")
    assert off_host_guard.take() == [
        "http://example.invalid/x.js",
        "ws://example.invalid/socket",
    ]
    off_host_guard.check()  # nothing left blocked: the test passes
