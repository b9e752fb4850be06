"""The web app in a real browser (Debian's Chromium through Playwright), on both databases:
signing in, the day board, booking from it, and a visit at the chair, each screen checked
with axe-core; and two nurses seeing each other's booking. Screenshots of each screen go to
docs/screens/ when asked (the SQLite run's, at 1366x768)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.browser import (
    open_context,
    requires_chromium,
)
from tests.support.factories import book, make_center, make_chair, make_patient
from tests.support.servers import PASSWORD, Server, at
from tests.support.web import DASH, no_serious_violations, own_server, screenshot, sign_in

pytestmark = [pytest.mark.browser, requires_chromium]


server = own_server("web")


DAY = "2027-02-02"  # a Tuesday, EST


def local(hhmm: str) -> str:
    return f"{DAY}T{hhmm}:00-05:00"


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
    sign_in(page, "nurse@test.local")
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
    sign_in(page, "nurse@test.local")
    open_board(page, center)
    label = chairs[0]["label"]
    # 12:00 on the booked chair is inside its turnover: the check says so before saving.
    page.get_by_role("button", name=f"Book {label} at 12:00").click()
    dialog = page.get_by_role("dialog", name="Book a visit")
    dialog.get_by_label("Patient (name or MRN)").fill("Lindqvist")
    dialog.get_by_label(f"Lindqvist, Tomas — MRN {other['mrn']}", exact=False).check()
    # The chair time from the infusion-time calculator: what the API works out for the dose.
    dialog.get_by_text("Work out the chair time from the dose").click()
    dialog.get_by_label("Dose (g/kg)").fill("2")
    dialog.get_by_label("Weight (kg)").fill("70")
    dialog.get_by_role("button", name="Work it out").click()
    product = dialog.get_by_label("Product", exact=True).input_value()
    expected = nurse.post(
        "/api/v1/infusion-time", json={"product_id": product, "weight_kg": 70, "dose_g_per_kg": 2}
    ).json()
    expect(dialog.locator("#calc-answer")).to_contain_text(f"{expected['chair_minutes']} chair")
    expect(dialog.get_by_label("Chair time (minutes)")).to_have_value(
        str(expected["chair_minutes"])
    )
    answer = dialog.locator("#book-answer")
    dialog.get_by_label("Chair time (minutes)").fill("120")
    dialog.get_by_role("button", name="Check").click()
    expect(answer).to_contain_text("turnover")
    no_serious_violations(page)
    screenshot(page, server, "book")
    dialog.get_by_label("Start").fill("12:15")
    dialog.get_by_role("button", name="Check").click()
    expect(answer).to_contain_text("Free")
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
        sign_in(page, "nurse@test.local")
        open_board(page, center)
        card = page.locator(f"[data-visit='{visit['id']}']")
        card.click()
        dialog = page.get_by_role("dialog", name="Okafor, Imani")
        record_link = dialog.get_by_role("link", name="Okafor, Imani's record")
        expect(record_link).to_have_attribute("href", f"/patients/{visit['patient_id']}")
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
        # Cancel it, with the reason kept on its history.
        other.click()
        page.get_by_role("button", name="Cancel visit…").click()
        cancel = page.get_by_role("dialog", name="Cancel visit")
        cancel.get_by_label("Reason").select_option("Patient asked to change")
        cancel.get_by_label("Details").fill("prefers Friday")
        cancel.get_by_role("button", name="Cancel visit").click()
        expect(cancel).to_be_hidden()
        expect(page.locator(f"#board [data-visit='{spare['id']}']")).to_have_count(0)
        history = nurse.get(f"/api/v1/appointments/{spare['id']}/history").json()
        # (by action: the browser's changes all happen at the test clock's one instant)
        reasons = {h["action"]: h["reason"] for h in history}
        assert reasons["cancel"] == "Patient asked to change: prefers Friday", history
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
            sign_in(page, "nurse@test.local")
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


def focused(page: Page) -> str:
    """The name (aria-label, else its label's text, else its text) of what has the focus."""
    return str(
        page.evaluate(
            "() => { const e = document.activeElement;"
            " const label = e.labels && e.labels.length ? e.labels[0].textContent : null;"
            " return (e.getAttribute('aria-label') || label || e.textContent).trim(); }"
        )
    )


def test_booking_by_keyboard_alone_on_a_tablet(
    browser: Browser, server: Server, nurse: httpx.Client
) -> None:
    """1024x768, no mouse: into the board with Tab, to a chair and time with the arrows, the
    dialog by Enter, and booked without a click."""
    center = make_center(nurse)
    chairs = [
        nurse.post(f"/api/v1/centers/{center['id']}/chairs", json={"label": label}).json()
        for label in ("Bay 1", "Bay 2", "Bay 3")
    ]
    booked = make_patient(nurse, given_name="Imani", family_name="Okafor")
    assert book(nurse, booked["id"], chairs[0]["id"], local("09:00"), 180).is_success
    patient = make_patient(nurse, given_name="Aiko", family_name="Brandt")
    context, guard = open_context(browser, server.base_url)
    try:
        page = context.new_page()
        page.set_viewport_size({"width": 1024, "height": 768})
        page.goto("/")
        page.get_by_label("Email").focus()
        page.keyboard.type("nurse@test.local")
        page.keyboard.press("Tab")
        page.keyboard.type(PASSWORD)
        page.keyboard.press("Enter")
        page.wait_for_url("**/board**")
        open_board(page, center)
        expect(page.locator("#board [data-row]").first).to_be_visible()
        for _ in range(40):  # Tab until the focus is in the board: it is one stop
            page.keyboard.press("Tab")
            if page.evaluate("() => !!document.activeElement.closest('#board')"):
                break
        assert focused(page) == f"Book {chairs[0]['label']} at 07:00"
        page.keyboard.press("ArrowDown")
        page.keyboard.press("Home")
        second = chairs[1]["label"]
        assert focused(page) == f"Book {second} at 07:00"
        for _ in range(12):  # three hours of 15 minutes
            page.keyboard.press("ArrowRight")
        assert focused(page) == f"Book {second} at 10:00"
        page.keyboard.press("ArrowUp")  # the visit 09:00-12:00 covers 10:00 on the first chair
        assert focused(page).startswith("Okafor, Imani")
        page.keyboard.press("ArrowDown")
        assert focused(page) == f"Book {second} at 10:00"
        page.keyboard.press("Enter")
        dialog = page.get_by_role("dialog", name="Book a visit")
        expect(dialog).to_be_visible()
        expect(dialog.get_by_label("Patient (name or MRN)")).to_be_focused()
        page.keyboard.type("Brandt")
        choice = dialog.get_by_label(f"Brandt, Aiko — MRN {patient['mrn']}", exact=False)
        expect(choice).to_be_visible()
        for _ in range(10):
            page.keyboard.press("Tab")
            if focused(page).startswith("Brandt, Aiko"):
                break
        page.keyboard.press("Space")
        expect(choice).to_be_checked()
        screenshot(page, server, "book-tablet")
        for _ in range(20):
            page.keyboard.press("Tab")
            if focused(page) == "Book":
                break
        page.keyboard.press("Enter")
        expect(dialog).to_be_hidden()
        expect(page.locator(".visit", has_text="Brandt, Aiko")).to_contain_text(f"10:00{DASH}")
        # The focus came back to the board, where the booked time now is.
        assert page.evaluate("() => !!document.activeElement.closest('#board')")
        no_serious_violations(page)
        screenshot(page, server, "board-tablet")
    finally:
        context.close()
    guard.check()
