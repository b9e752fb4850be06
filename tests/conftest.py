from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page

from tests.support.browser import CHROMIUM, SKIP_REASON, BrowserSession, OffHostGuard, open_context
from tests.support.databases import backends
from tests.support.servers import PASSWORD, Server, start_server, stop_server
from tests.support.transactions import migrated_database


@pytest.fixture(scope="session", params=backends())
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One real server per database kind for the whole run; tests make their own centers."""
    srv = start_server(request.param, tmp_path_factory.mktemp(request.param))
    try:
        yield srv
    finally:
        stop_server(srv)


@pytest.fixture(scope="module", params=backends())
def migrated_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The in-process tier's database: one per kind and test module, at the latest revision."""
    yield from migrated_database(request.param, tmp_path_factory.mktemp(request.param))


@pytest.fixture
def admin(server: Server) -> Iterator[httpx.Client]:
    with server.client("admin") as c:
        yield c


@pytest.fixture
def nurse(server: Server) -> Iterator[httpx.Client]:
    with server.client("nurse") as c:
        yield c


@pytest.fixture
def billing(server: Server) -> Iterator[httpx.Client]:
    with server.client("billing") as c:
        yield c


@pytest.fixture
def pharmacy(server: Server, admin: httpx.Client) -> Iterator[httpx.Client]:
    """A new pharmacy user, signed in (the test server makes the other staff roles)."""
    email = f"rx-{uuid.uuid4().hex[:8]}@test.local"
    r = admin.post("/api/v1/users", json={"email": email, "role": "pharmacy", "password": PASSWORD})
    assert r.status_code == 201, r.text
    token = server.login(email)
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as client:
        yield client


@pytest.fixture
def anonymous(server: Server) -> Iterator[httpx.Client]:
    with server.client(None) as c:
        yield c


def pytest_configure(config: Any) -> None:
    config.addinivalue_line("markers", "concurrency: real concurrent requests against a server")
    config.addinivalue_line("markers", "browser: drives Chromium (skipped when there is none)")


# Browser tests (tests/support/browser.py): Debian's Chromium through Playwright, on the
# `server` of each database kind.


@pytest.fixture(scope="session")
def browser_session() -> Iterator[BrowserSession]:
    """Playwright and one headless Chromium for the whole run (skips without a Chromium)."""
    if SKIP_REASON is not None:
        pytest.skip(SKIP_REASON)
    session = BrowserSession()
    try:
        yield session
    finally:
        session.close()


@pytest.fixture(scope="session")
def browser(browser_session: BrowserSession) -> Browser:
    return browser_session.browser


@pytest.fixture
def off_host_guard(server: Server) -> OffHostGuard:
    """What the `page` fixture's context blocked; the test fails if any is left at its end."""
    return OffHostGuard(server.base_url)


@pytest.fixture
def page(
    browser_session: BrowserSession, server: Server, off_host_guard: OffHostGuard
) -> Iterator[Page]:
    """A fresh context and page at 1366x768 on the test server: `page.goto("/healthz")`.
    Playwright's loop is marked running until teardown, so asyncio.run() is unavailable."""
    browser_session.resume()
    try:
        context, _ = open_context(browser_session.browser, server.base_url, off_host_guard)
        try:
            yield context.new_page()
        finally:
            context.close()
    finally:
        browser_session.park()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Every test that uses the browser is marked `browser` (so `-m "not browser"` leaves them
    # out), and is skipped, with the reason, when there is no Chromium.
    for item in items:
        if "browser_session" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)
            if SKIP_REASON is not None:
                item.add_marker(pytest.mark.skip(reason=SKIP_REASON))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    funcargs: dict[str, Any] = getattr(item, "funcargs", {})
    session = funcargs.get("browser_session")
    if not isinstance(session, BrowserSession):
        return (yield)
    with session.active():
        result = yield
    guard = funcargs.get("off_host_guard")
    if isinstance(guard, OffHostGuard):
        # A request to another host fails the test that made it, not its teardown.
        guard.check()
    return result


def pytest_report_header() -> str:
    if SKIP_REASON is not None:
        return f"chromium: {SKIP_REASON}"
    return f"chromium: {CHROMIUM} (browser tests run)"
