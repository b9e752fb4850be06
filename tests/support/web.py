"""What the web app's browser tests share: a server of each module's own, signing in through
the sign-in page, the axe-core check, and where the screenshots go."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

from tests.support.browser import axe_violations, describe_violations, save_screenshot
from tests.support.databases import backends
from tests.support.servers import PASSWORD, Server, start_server, stop_server

# Where the screens go: docs/screens when refreshing the README's (CHAIRSIDE_SCREENS=docs/screens),
# else a temporary folder, so a test run leaves the tree as it was.
SCREENS = Path(
    os.environ.get("CHAIRSIDE_SCREENS") or Path(tempfile.gettempdir()) / "chairside-screens"
)
DASH = "\u2013"  # the screens write times as 09:00\u201312:00


def own_server(name: str) -> Callable[..., Any]:
    """A module-scoped `server` fixture, one per database kind: `server = own_server("web-x")`.

    A browser signs in from 127.0.0.1, where the other tests' failed sign-ins (fuzzing,
    lockouts) may have filled the per-address throttle of the shared server; a browser cannot
    pick another source address, as httpx clients do."""

    @pytest.fixture(scope="module", params=backends())
    def server(
        request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
    ) -> Iterator[Server]:
        srv = start_server(request.param, tmp_path_factory.mktemp(f"{name}-{request.param}"))
        try:
            yield srv
        finally:
            stop_server(srv)

    return server


def screenshot(page: Page, server: Server, name: str) -> None:
    """The SQLite run's screens are the ones kept in the docs."""
    if server.kind == "sqlite":
        save_screenshot(page, SCREENS / f"{name}.png", full_page=False)


def no_serious_violations(page: Page) -> None:
    found = axe_violations(page)
    assert found == [], describe_violations(found)


def sign_in(page: Page, email: str, lands: str = "board") -> None:
    """Through the sign-in page, which goes on to the day board (the board sends the pharmacy
    on to its own screen: `lands="pharmacy"`)."""
    page.goto("/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**/{lands}**")
