"""The admin screen in a real browser (Debian's Chromium through Playwright), on both
databases: adding users, changing a role, deactivating, lifting a lockout; running a job and
seeing its run; finding audit events, with filters and "Show more"; one flow by keyboard only,
at 1024x768; and a nurse told the screen is for administrators. Every section is checked with
axe-core; screenshots (the SQLite run's, at 1366x768) go to CHAIRSIDE_SCREENS when set.

The browser works in New York time (the test server's clock is UTC), so the screen's times are
seen to be converted to the browser's zone and named."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect

from app.jobs.registry import JOBS
from tests.support.browser import (
    VIEWPORT,
    BrowserSession,
    OffHostGuard,
    axe_violations,
    describe_violations,
    requires_chromium,
)
from tests.support.factories import make_patient
from tests.support.servers import PASSWORD, Server
from tests.support.web import own_server, screenshot, sign_in

pytestmark = [pytest.mark.browser, requires_chromium]

ZONE = "America/New_York"
# Failed sign-ins (a lockout) come from an address of this module's own: the browser signs in
# from 127.0.0.1, whose per-address throttle they would otherwise fill.
GUESSER = "127.0.0.9"


server = own_server("web-admin")


@pytest.fixture
def page(
    browser_session: BrowserSession, server: Server, off_host_guard: OffHostGuard
) -> Iterator[Page]:
    """As the shared `page` fixture (1366x768, off-host guard), in New York time."""
    browser_session.resume()
    try:
        context = browser_session.browser.new_context(
            base_url=server.base_url,
            viewport=VIEWPORT,
            locale="en-US",
            reduced_motion="reduce",
            timezone_id=ZONE,
        )
        try:
            off_host_guard.install(context)
            yield context.new_page()
        finally:
            context.close()
    finally:
        browser_session.park()


# --- helpers --------------------------------------------------------------------------------


def checked(page: Page) -> None:
    """No serious or critical axe violations, and every control at least 24x24 px."""
    found = axe_violations(page)
    assert found == [], describe_violations(found)
    small = page.evaluate(
        """() => [...document.querySelectorAll('main button, main select, main input, main a')]
            .filter((n) => n.offsetParent !== null)
            .map((n) => [n.id || n.getAttribute('aria-label') || n.textContent.trim(),
                         n.getBoundingClientRect()])
            .filter(([, r]) => r.width < 24 || r.height < 24)
            .map(([name, r]) => `${name}: ${Math.round(r.width)}x${Math.round(r.height)}`)"""
    )
    assert small == [], f"targets under 24x24 px: {small}"


def open_admin(page: Page, section: str = "users") -> Locator:
    """The admin screen on one of its tabs; that tab's panel."""
    page.goto(f"/admin#{section}")
    names = {"users": "Users", "jobs": "Job runs", "audit": "Audit trail"}
    tab = page.get_by_role("tab", name=names[section])
    expect(tab).to_have_attribute("aria-selected", "true")
    panel = page.get_by_role("tabpanel", name=names[section])
    expect(panel).to_be_visible()
    return panel


def new_email(stem: str) -> str:
    return f"{stem}.{uuid.uuid4().hex[:6]}@test.local"


def add_user(admin: httpx.Client, email: str, role: str = "nurse") -> dict[str, Any]:
    r = admin.post("/api/v1/users", json={"email": email, "role": role, "password": PASSWORD})
    assert r.status_code == 201, r.text
    user: dict[str, Any] = r.json()
    return user


def user_row(page: Page, email: str) -> Locator:
    return page.locator("#users tr", has=page.get_by_role("rowheader", name=email, exact=False))


def user_of(admin: httpx.Client, user_id: str) -> dict[str, Any]:
    r = admin.get(f"/api/v1/users/{user_id}")
    assert r.status_code == 200, r.text
    user: dict[str, Any] = r.json()
    return user


def token_sign_in(server: Server, email: str, password: str) -> int:
    with httpx.Client(
        base_url=server.base_url, transport=httpx.HTTPTransport(local_address=GUESSER)
    ) as c:
        r = c.post("/api/v1/auth/token", data={"username": email, "password": password})
        return r.status_code


def wall(instant: str) -> str:
    """An instant as the screen shows its time of day: HH:MM:SS and the zone, in New York."""
    local = datetime.fromisoformat(instant).astimezone(ZoneInfo(ZONE))
    return f"{local:%H:%M:%S} {local.tzname()}"


def tab_to(page: Page, test: str, presses: int = 60) -> None:
    """Press Tab until `test` (a JS expression over `el`, the focused element) holds."""
    for _ in range(presses):
        page.keyboard.press("Tab")
        if page.evaluate(f"() => {{ const el = document.activeElement; return !!({test}); }}"):
            return
    raise AssertionError(f"Tab never reached {test}")


def focused(page: Page, attribute: str) -> str | None:
    value: str | None = page.evaluate(
        f"() => document.activeElement && document.activeElement.getAttribute('{attribute}')"
    )
    return value


# --- users ----------------------------------------------------------------------------------


def test_add_a_user_change_their_role_and_deactivate_them(
    page: Page, server: Server, admin: httpx.Client
) -> None:
    for stem, role in (("r.okafor", "nurse"), ("j.weber", "billing")):
        add_user(admin, new_email(stem), role)
    sign_in(page, "admin@test.local")
    expect(
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Admin")
    ).to_be_visible()
    panel = open_admin(page)
    expect(user_row(page, "admin@test.local")).to_contain_text("(you)")
    expect(user_row(page, "nurse@test.local")).to_contain_text("Active")
    checked(page)

    form = panel.get_by_role("form", name="Add a user")
    email = new_email("m.sato")
    # A weak password: the problem is shown at the field, and nothing is added.
    form.get_by_label("Email").fill(email)
    form.get_by_label("Role").select_option("nurse")
    form.get_by_label("Initial password").fill("short")
    form.get_by_role("button", name="Add user").click()
    password = form.get_by_label("Initial password")
    expect(password).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#new-password-error")).to_contain_text("at least 8 characters")
    expect(form.get_by_role("status")).to_contain_text("Not added")
    expect(password).to_be_focused()
    # A taken email: the API's conflict, at the email field.
    form.get_by_label("Email").fill("nurse@test.local")
    password.fill(PASSWORD)
    form.get_by_role("button", name="Add user").click()
    expect(page.locator("#new-email-error")).to_contain_text("already exists")
    expect(password).not_to_have_attribute("aria-invalid", "true")
    checked(page)
    # Right this time.
    form.get_by_label("Email").fill(email)
    password.fill(PASSWORD)
    form.get_by_role("button", name="Add user").click()
    expect(form.get_by_role("status")).to_contain_text(f"Added {email} as nurse")
    row = user_row(page, email)
    expect(row).to_contain_text("Active")
    expect(page.locator("#new-email-error")).to_be_empty()
    listed = admin.get("/api/v1/users", params={"limit": 500}).json()["items"]
    made = next(u for u in listed if u["email"] == email)
    assert (made["role"], made["active"]) == ("nurse", True)
    assert token_sign_in(server, email, PASSWORD) == 200

    # Their role: nurse to billing.
    row.get_by_label(f"Role of {email}", exact=True).select_option("billing")
    row.get_by_role("button", name=f"Save role of {email}").click()
    answer = panel.locator("#users-answer")
    expect(answer).to_contain_text(f"{email} is now billing")
    assert user_of(admin, made["id"])["role"] == "billing"

    # Deactivated: no more sign-ins.
    row.get_by_role("button", name=f"Deactivate {email}").click()
    expect(answer).to_contain_text(f"{email} is deactivated")
    expect(row).to_contain_text("Inactive")
    expect(row.get_by_role("button", name=f"Reactivate {email}")).to_be_visible()
    assert user_of(admin, made["id"])["active"] is False
    assert token_sign_in(server, email, PASSWORD) == 401

    # The only admin cannot shut themself out: the API refuses and the screen says why.
    page.once("dialog", lambda dialog: dialog.accept())
    user_row(page, "admin@test.local").get_by_role(
        "button", name="Deactivate admin@test.local"
    ).click()
    expect(answer).to_contain_text("admin@test.local: this is the last active admin")
    expect(answer).to_have_class("answer bad")
    me = admin.get("/api/v1/auth/me").json()
    assert user_of(admin, me["id"])["active"] is True
    checked(page)
    screenshot(page, server, "admin-users")


def test_unlock_an_account_locked_by_failed_sign_ins(
    page: Page, server: Server, admin: httpx.Client
) -> None:
    email = new_email("locked.out")
    add_user(admin, email)
    assert [token_sign_in(server, email, "wrong-guess") for _ in range(5)] == [401] * 5
    assert token_sign_in(server, email, PASSWORD) == 429  # locked, right password or not
    sign_in(page, "admin@test.local")
    open_admin(page)
    row = user_row(page, email)
    expect(row).to_contain_text("Locked out until")
    # Only a locked account offers the unlock.
    expect(user_row(page, "admin@test.local").get_by_role("button", name="Unlock")).to_have_count(0)
    row.get_by_role("button", name=f"Unlock sign-in for {email}").click()
    expect(page.locator("#users-answer")).to_contain_text(f"{email} may sign in again now")
    expect(row).to_contain_text("Active")
    expect(row.get_by_role("button", name=f"Unlock sign-in for {email}")).to_have_count(0)
    assert token_sign_in(server, email, PASSWORD) == 200


# --- jobs -----------------------------------------------------------------------------------


def test_run_a_job_now_and_see_its_run(page: Page, server: Server, admin: httpx.Client) -> None:
    for job in ("lapse_sweep", "reminders"):
        assert admin.post(f"/api/v1/jobs/{job}/run").status_code == 200
    sign_in(page, "admin@test.local")
    panel = open_admin(page, "jobs")
    jobs = panel.get_by_role("table", name="Background jobs")
    housekeeping = jobs.locator("tr[data-job='housekeeping']")
    expect(housekeeping).to_contain_text("Never run")
    expect(jobs.locator("tr[data-job='lapse_sweep']")).to_contain_text("Succeeded")
    expect(jobs.locator("tbody tr")).to_have_count(len(JOBS))
    checked(page)

    housekeeping.get_by_role("button", name="Run now: Housekeeping").click()
    answer = panel.locator("#jobs-answer")
    expect(answer).to_contain_text("Housekeeping succeeded in")
    expect(answer).to_contain_text("sign in failures deleted:")
    run = admin.get("/api/v1/jobs/runs", params={"limit": 1}).json()["items"][0]
    assert (run["job"], run["trigger"], run["outcome"]) == ("housekeeping", "manual", "succeeded")
    row = panel.locator(f"#runs tr[data-run='{run['id']}']")
    expect(row).to_have_class("fresh")
    expect(row).to_contain_text("An admin")
    expect(row).to_contain_text("Succeeded")
    # Started and finished in the browser's time, with its zone.
    expect(row.locator("td").nth(1)).to_contain_text(wall(run["started_at"]))
    expect(row.locator("td").nth(2)).to_contain_text(wall(run["finished_at"]))
    expect(panel.locator("#runs tr").first).to_have_attribute("data-run", run["id"])
    expect(housekeeping).to_contain_text("Succeeded")
    expect(housekeeping.get_by_role("button", name="Run now: Housekeeping")).to_be_focused()
    expect(panel.locator("#runs-count")).to_contain_text("Showing 3 runs")
    checked(page)
    # The runs under the jobs in view, the tabs at the top.
    page.get_by_role("tablist").evaluate("(n) => n.scrollIntoView({block: 'start'})")
    screenshot(page, server, "admin-jobs")

    # Only one job's runs.
    panel.get_by_label("Show runs of").select_option(label="Reminders")
    expect(panel.locator("#runs tr")).to_have_count(1)
    expect(panel.locator("#runs tr")).to_contain_text("Reminders")


# --- the audit trail ------------------------------------------------------------------------


def test_find_the_audit_events_of_what_was_just_done(
    page: Page, server: Server, admin: httpx.Client
) -> None:
    email = new_email("audited")
    someone = add_user(admin, email)
    them = httpx.Client(
        base_url=server.base_url,
        headers={"Authorization": f"Bearer {server.login(email)}"},
        timeout=60,
    )
    with them:
        patient = make_patient(them)
        searches = [them.get("/api/v1/patients") for _ in range(25)]
        assert all(r.status_code == 200 for r in searches)
        read = them.get(f"/api/v1/patients/{patient['id']}")
        assert read.status_code == 200
        refused = them.get("/api/v1/audit-events")
        assert refused.status_code == 403
    trail = admin.get("/api/v1/audit-events", params={"actor_id": someone["id"], "limit": 500})
    theirs = trail.json()["items"]
    assert len(theirs) == 28  # the create, 25 searches, the read, the refusal

    sign_in(page, "admin@test.local")
    panel = open_admin(page, "audit")
    expect(panel.locator("#audit tr").first).to_be_visible()
    checked(page)
    # Their events only: newest first, named by email, with the request id of each reply.
    panel.get_by_label("User", exact=True).select_option(label=f"{email} (nurse)")
    panel.get_by_role("button", name="Show events").click()
    rows = panel.locator("#audit tr")
    expect(rows).to_have_count(25)
    first = rows.first
    expect(first).to_have_attribute("data-request", refused.headers["X-Request-ID"])
    expect(first).to_contain_text(email)
    expect(first).to_contain_text("Search")
    expect(first).to_contain_text("audit event")
    expect(first).to_contain_text("Denied")
    expect(first).to_contain_text(refused.headers["X-Request-ID"])
    expect(first.locator("td").first).to_contain_text(wall(theirs[0]["at"]))
    second = rows.nth(1)
    expect(second).to_have_attribute("data-request", read.headers["X-Request-ID"])
    expect(second).to_contain_text("Read")
    expect(second).to_contain_text(patient["id"])
    expect(panel.locator("#audit-count")).to_contain_text("Showing 25 events")
    checked(page)
    screenshot(page, server, "admin-audit")
    panel.get_by_role("button", name="Show more events").click()
    expect(rows).to_have_count(28)
    expect(panel.get_by_role("button", name="Show more events")).to_be_hidden()
    made = rows.last
    expect(made).to_contain_text("Create")
    expect(made).to_contain_text(patient["id"])
    expect(made).to_contain_text("Success")
    expect(rows.nth(2)).to_have_attribute("data-request", searches[-1].headers["X-Request-ID"])

    # From tomorrow (New York): nothing yet; from today: the events again.
    today = datetime.now(ZoneInfo(ZONE)).date()
    panel.get_by_label("From (your time)").fill((today + timedelta(days=1)).isoformat())
    panel.get_by_role("button", name="Show events").click()
    expect(panel.locator("#audit-count")).to_contain_text("No events match")
    expect(rows).to_have_count(0)
    panel.get_by_label("From (your time)").fill(today.isoformat())
    panel.get_by_role("button", name="Show events").click()
    expect(rows).to_have_count(25)

    # By patient: the one they made, and read.
    panel.get_by_label("Patient ID").fill(patient["id"])
    panel.get_by_role("button", name="Show events").click()
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("Read")
    expect(rows.last).to_contain_text("Create")
    panel.get_by_label("Patient ID").fill("not-an-id")
    panel.get_by_role("button", name="Show events").click()
    expect(panel.locator("#audit-answer")).to_contain_text("patient id")

    panel.get_by_label("Patient ID").fill("")
    # What admins change is on the trail too: the user made for this test, by the admin.
    panel.get_by_label("Action").select_option("create")
    panel.get_by_label("Of", exact=True).select_option("user")
    panel.get_by_label("User", exact=True).select_option("")
    panel.get_by_role("button", name="Show events").click()
    made_user = rows.filter(has_text=someone["id"])
    expect(made_user).to_have_count(1)
    expect(made_user).to_contain_text("admin@test.local")
    # Up to yesterday: nothing of today's.
    panel.get_by_label("From (your time)").fill("")
    panel.get_by_label("To, including (your time)").fill((today - timedelta(days=1)).isoformat())
    panel.get_by_role("button", name="Show events").click()
    expect(rows).to_have_count(0)

    panel.get_by_role("button", name="Clear filters").click()
    expect(panel.get_by_label("User", exact=True)).to_have_value("")
    # Everyone's: the admin's own looks at the trail are on it too, the failed one included.
    mine = rows.filter(has_text="admin@test.local").filter(has_text="audit event")
    expect(mine.filter(has_text="Error").first).to_be_visible()  # the query with "not-an-id"
    expect(mine.filter(has_text="Success").first).to_be_visible()
    checked(page)


# --- keyboard only, at 1024x768 -------------------------------------------------------------


def test_keyboard_only_at_1024(page: Page, server: Server, admin: httpx.Client) -> None:
    page.set_viewport_size({"width": 1024, "height": 768})
    sign_in(page, "admin@test.local")
    page.goto("/admin")
    expect(page.get_by_role("tab", name="Users")).to_have_attribute("aria-selected", "true")
    keys = page.keyboard
    tab_to(page, "el.getAttribute('role') === 'tab'")
    assert focused(page, "id") == "tab-users"  # the chosen tab is the one tab stop
    outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none", "focus is visible"
    for key, section in (
        ("ArrowRight", "jobs"),
        ("ArrowRight", "audit"),
        ("ArrowRight", "users"),
        ("ArrowLeft", "audit"),
        ("Home", "users"),
        ("End", "audit"),
    ):
        keys.press(key)
        assert focused(page, "id") == f"tab-{section}", key
        assert focused(page, "aria-selected") == "true"
        expect(page.locator(f"#panel-{section}")).to_be_visible()
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 1024, f"{section} scrolls sideways at 1024 px ({width} px)"
    keys.press("Home")
    # Add a user: from the tab into the form, by keys alone.
    keys.press("Tab")
    assert focused(page, "id") == "new-email"
    email = new_email("keys")
    keys.type(email)
    keys.press("Tab")
    assert focused(page, "id") == "new-role"
    keys.press("ArrowDown")  # Nurse to Billing
    expect(page.locator("#new-role")).to_have_value("billing")
    keys.press("Tab")
    assert focused(page, "id") == "new-password"
    keys.type(PASSWORD)
    keys.press("Enter")
    expect(page.locator("#create-answer")).to_contain_text(f"Added {email} as billing")
    row = user_row(page, email)
    # Deactivate them and let them back in, focus staying on the button.
    tab_to(page, f"el.getAttribute('aria-label') === 'Deactivate {email}'")
    keys.press("Space")
    expect(row).to_contain_text("Inactive")
    assert focused(page, "aria-label") == f"Reactivate {email}"
    keys.press("Enter")
    expect(row).to_contain_text("Active")
    assert focused(page, "aria-label") == f"Deactivate {email}"
    made = next(u for u in admin.get("/api/v1/users").json()["items"] if u["email"] == email)
    assert (made["role"], made["active"], made["version"]) == ("billing", True, 3)
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 1024, f"the users scroll sideways at 1024 px ({width} px)"


# --- not an admin ---------------------------------------------------------------------------


def test_a_nurse_or_biller_is_told_the_screen_is_for_administrators(
    page: Page, server: Server
) -> None:
    for role in ("nurse", "billing"):
        sign_in(page, f"{role}@test.local")
        nav = page.get_by_role("navigation", name="Main")
        expect(nav.get_by_role("link", name="Day board")).to_be_visible()
        expect(nav.get_by_role("link", name="Admin")).to_have_count(0)
        page.goto("/admin")
        expect(page.get_by_text("Only administrators can use this screen")).to_be_visible()
        expect(page.locator("#who")).to_contain_text(f"({role})")
        expect(page.get_by_role("tab")).to_have_count(0)
        expect(page.get_by_role("table")).to_have_count(0)
        expect(nav.get_by_role("link", name="Admin")).to_have_count(0)
        checked(page)
