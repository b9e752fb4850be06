"""The web app in a real browser (Debian's Chromium through Playwright), on both databases:
signing in, the day board, booking from it, and a visit at the chair, each screen checked
with axe-core; and two nurses seeing each other's booking. Screenshots of each screen go to
docs/screens/ when asked (the SQLite run's, at 1366x768)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.browser import (
    axe_violations,
    describe_violations,
    open_context,
    requires_chromium,
    save_screenshot,
)
from tests.support.databases import backends
from tests.support.factories import book, make_center, make_chair, make_patient
from tests.support.servers import PASSWORD, Server, at, start_server, stop_server

pytestmark = [pytest.mark.browser, requires_chromium]


@pytest.fixture(scope="module", params=backends())
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A server of this module's own: a browser signs in from 127.0.0.1, where the other
    tests' failed sign-ins (fuzzing, lockouts) may have filled the per-address throttle of the
    shared one; a browser cannot pick another source address, as httpx clients do."""
    srv = start_server(request.param, tmp_path_factory.mktemp(f"web-{request.param}"))
    try:
        yield srv
    finally:
        stop_server(srv)


# Where the screens go: docs/screens when refreshing the README's (CHAIRSIDE_SCREENS=docs/screens),
# else a temporary folder, so a test run leaves the tree as it was.
SCREENS = Path(
    os.environ.get("CHAIRSIDE_SCREENS") or Path(tempfile.gettempdir()) / "chairside-screens"
)
DAY = "2027-02-02"  # a Tuesday, EST
DASH = "\u2013"  # the board writes times as 09:00\u201312:00


def local(hhmm: str) -> str:
    return f"{DAY}T{hhmm}:00-05:00"


def screenshot(page: Page, server: Server, name: str) -> None:
    """The SQLite run's screens are the ones kept in the docs."""
    if server.kind == "sqlite":
        save_screenshot(page, SCREENS / f"{name}.png", full_page=False)


def no_serious_violations(page: Page) -> None:
    found = axe_violations(page)
    assert found == [], describe_violations(found)


def sign_in(page: Page, email: str = "nurse@test.local") -> None:
    page.goto("/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/board**")


def a_day(nurse: httpx.Client) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """A center with three chairs, one booked visit at 09:00, and the patient booked."""
    center = make_center(nurse)
    chairs = [make_chair(nurse, center["id"]) for _ in range(3)]
    patient = make_patient(nurse, given_name="Imani", family_name="Okafor")
    visit = book(nurse, patient["id"], chairs[0]["id"], local("09:00"), 180).json()
    return center, chairs, visit


def open_board(page: Page, center: dict[str, Any]) -> None:
    page.goto(f"/board?center={center['id']}&date={DAY}")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Tuesday, 2 February 2027")


BUSY_MORNING = [  # (chair, start, minutes, given name, family name) for a fuller board
    (1, "08:00", 210, "Priya", "Raman"),
    (2, "08:15", 180, "Jonas", "Weber"),
    (3, "09:30", 240, "Grace", "Sato"),
    (4, "08:30", 150, "Ines", "Alvarez"),
    (5, "10:00", 300, "Kofi", "Mensah"),
    (1, "12:00", 180, "Elena", "Eriksen"),
    (2, "12:30", 240, "Samir", "Gupta"),
    (4, "13:00", 195, "Rosa", "Tanaka"),
]


def test_sign_in_then_the_day_board(page: Page, server: Server, nurse: httpx.Client) -> None:
    center, chairs, visit = a_day(nurse)
    chairs += [make_chair(nurse, center["id"]) for _ in range(3)]
    for chair, start, minutes, given, family in BUSY_MORNING:
        patient = make_patient(nurse, given_name=given, family_name=family)
        assert book(nurse, patient["id"], chairs[chair]["id"], local(start), minutes).is_success
    page.goto("/")
    no_serious_violations(page)
    screenshot(page, server, "sign-in")
    page.get_by_label("Email").fill("nurse@test.local")
    page.get_by_label("Password").fill("wrong-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("wrong email or password")
    sign_in(page)
    open_board(page, center)
    card = page.locator(f"[data-visit='{visit['id']}']")
    expect(card).to_contain_text("Okafor, Imani")
    expect(card).to_contain_text("Booked")
    expect(card).to_contain_text(f"09:00{DASH}12:00")
    # The nurse load under the board: the visit counts from 09:00.
    expect(page.locator("#load")).to_contain_text("Patients in chairs")
    no_serious_violations(page)
    screenshot(page, server, "day-board")
    # Next day and back, and the week.
    page.get_by_role("button", name="Next day").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("3 February 2027")
    page.get_by_role("button", name="Previous day").click()
    expect(card).to_be_visible()
    page.get_by_role("link", name="Week view").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("week of Monday, 1 February")
    expect(page.locator("#week")).to_contain_text("09:00 Okafor, Imani")
    no_serious_violations(page)
    screenshot(page, server, "week")
    # Signing out ends the session: the board sends the browser back to sign in.
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(server.base_url + "/")
    page.goto("/board")
    page.wait_for_url(server.base_url + "/")


def test_book_from_an_open_slot_with_the_rules_answer_first(
    page: Page, server: Server, nurse: httpx.Client
) -> None:
    center, chairs, _ = a_day(nurse)
    other = make_patient(nurse, given_name="Tomas", family_name="Lindqvist")
    sign_in(page)
    open_board(page, center)
    label = chairs[0]["label"]
    # 12:00 on the booked chair is inside its turnover: the check says so before saving.
    page.get_by_role("button", name=f"Book {label} at 12:00").click()
    dialog = page.get_by_role("dialog", name="Book a visit")
    dialog.get_by_label("Patient (name or MRN)").fill("Lindqvist")
    dialog.get_by_label(f"Lindqvist, Tomas — MRN {other['mrn']}", exact=False).check()
    dialog.get_by_label("Chair time (minutes)").fill("120")
    dialog.get_by_role("button", name="Check").click()
    expect(dialog.get_by_role("status")).to_contain_text("turnover")
    no_serious_violations(page)
    screenshot(page, server, "book")
    dialog.get_by_label("Start").fill("12:15")
    dialog.get_by_role("button", name="Check").click()
    expect(dialog.get_by_role("status")).to_contain_text("Free")
    dialog.get_by_role("button", name="Book").click()
    expect(dialog).to_be_hidden()
    expect(page.locator(".visit", has_text="Lindqvist, Tomas")).to_contain_text(f"12:15{DASH}14:15")
    listed = nurse.get("/api/v1/appointments", params={"patient_id": other["id"]}).json()
    assert [a["start"] for a in listed["items"]] == [local("12:15")]


def test_at_the_chair_check_in_start_complete_and_move(
    browser: Browser, server: Server, nurse: httpx.Client
) -> None:
    center, chairs, visit = a_day(nurse)
    spare = book(nurse, make_patient(nurse)["id"], chairs[1]["id"], local("13:00"), 60).json()
    start = datetime.fromisoformat(visit["start"])
    context, guard = open_context(browser, server.base_url)
    # The browser works at 09:05 that morning (the test server's clock for these requests).
    context.set_extra_http_headers(at(start + timedelta(minutes=5)))
    try:
        page = context.new_page()
        sign_in(page)
        open_board(page, center)
        card = page.locator(f"[data-visit='{visit['id']}']")
        card.click()
        dialog = page.get_by_role("dialog", name="Okafor, Imani")
        no_serious_violations(page)
        screenshot(page, server, "visit")
        dialog.get_by_role("button", name="Check in").click()
        expect(card).to_contain_text("Checked in")
        card.click()
        dialog.get_by_role("button", name="Start infusion").click()
        expect(card).to_contain_text("Infusing")
        card.click()
        dialog.get_by_role("button", name="Complete…").click()
        record = page.get_by_role("dialog", name="Complete infusion")
        record.get_by_label("Weight (kg)").fill("71.5")
        record.get_by_label("Kind").select_option("headache")
        record.get_by_label("Grade (CTCAE)").select_option("2")
        record.get_by_label("What was done").select_option("slowed")
        record.get_by_label("Tolerated rate").fill("150")
        record.get_by_label("Unit").select_option("mgkg")
        record.get_by_label("Tolerated rate").fill("3")
        record.get_by_label("Notes").fill("Headache at 60 min; slowed, settled.")
        no_serious_violations(page)
        screenshot(page, server, "complete")
        record.get_by_role("button", name="Complete").click()
        expect(record).to_be_hidden()
        expect(card).to_contain_text("Completed")
        kept = nurse.get(f"/api/v1/appointments/{visit['id']}/record").json()
        assert kept["weight_kg"] == 71.5
        assert kept["reactions"] == [{"kind": "headache", "grade": 2, "action": "slowed"}]
        assert kept["notes"] == "Headache at 60 min; slowed, settled."
        # Move the other visit by the dialog (the single-pointer alternative to dragging).
        other = page.locator(f"[data-visit='{spare['id']}']")
        other.click()
        page.get_by_role("button", name="Move to…").click()
        move = page.get_by_role("dialog", name="Move visit")
        move.get_by_label("Start").fill("15:30")
        move.get_by_label("Chair").select_option(label=f"{chairs[2]['label']} (chair)")
        move.get_by_role("button", name="Move").click()
        expect(move).to_be_hidden()
        expect(other).to_contain_text(f"15:30{DASH}16:30")
        moved = nurse.get(f"/api/v1/appointments/{spare['id']}").json()
        assert (moved["start"], moved["chair_id"]) == (local("15:30"), chairs[2]["id"])
        screenshot(page, server, "after-the-chair")
    finally:
        context.close()
    guard.check()


def test_two_nurses_see_each_others_booking(
    browser: Browser, server: Server, nurse: httpx.Client
) -> None:
    center, chairs, _ = a_day(nurse)
    mine = make_patient(nurse, given_name="Rafael", family_name="Duarte")
    contexts = [open_context(browser, server.base_url) for _ in range(2)]
    try:
        first, second = (context.new_page() for context, _ in contexts)
        for page in (first, second):
            sign_in(page)
            open_board(page, center)
        slot = f"Book {chairs[1]['label']} at 14:00"
        expect(second.get_by_role("button", name=slot)).to_be_visible()
        first.get_by_role("button", name=slot).click()
        dialog = first.get_by_role("dialog", name="Book a visit")
        dialog.get_by_label("Patient (name or MRN)").fill("Duarte")
        dialog.get_by_label(f"Duarte, Rafael — MRN {mine['mrn']}", exact=False).check()
        dialog.get_by_label("Chair time (minutes)").fill("90")
        dialog.get_by_role("button", name="Book").click()
        expect(dialog).to_be_hidden()
        # The other board polls: within seconds the slot is taken there too.
        expect(second.locator(".visit", has_text="Duarte, Rafael")).to_be_visible(timeout=15_000)
        expect(second.get_by_role("button", name=slot)).to_have_count(0)
    finally:
        for context, guard in contexts:
            context.close()
            guard.check()
