"""The waitlist screen in a real browser (Debian's Chromium through Playwright), on both
databases: a cancellation offered to the most urgent waiting patient, declined (the next
patient's offer shows) and accepted (booked), each checked through the API; an offer whose
hold has ended shows the API's refusal; adding a patient from the screen's form and taking one
off; the figures; a role the screen is not for. Checked with axe-core; screenshots (the
SQLite run's, at 1366x768) go to CHAIRSIDE_SCREENS when set."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import Page, Route, expect

from tests.support.browser import requires_chromium
from tests.support.factories import make_center, make_chair, make_patient
from tests.support.servers import Server, at
from tests.support.web import DASH, no_serious_violations, own_server, screenshot, sign_in
from tests.test_waitlist import add
from tests.test_waitlist_offers import booked, cancel, offers_at, open_offer, same, utc

pytestmark = [pytest.mark.browser, requires_chromium]


server = own_server("web-waitlist")

NEW_YORK = ZoneInfo("America/New_York")
WINDOW = {"earliest": "2027-02-01", "latest": "2027-02-28"}
OPENING = f"Wed 10 Feb 2027 09:00{DASH}12:00"  # DAY's 09:00 visit, freed


def hhmm(instant: str) -> str:
    return datetime.fromisoformat(instant).astimezone(NEW_YORK).strftime("%H:%M")


def patient(nurse: httpx.Client, given: str, family: str) -> dict[str, Any]:
    made: dict[str, Any] = make_patient(nurse, given_name=given, family_name=family)
    return made


def open_screen(page: Page, center: dict[str, Any]) -> None:
    page.goto(f"/waitlist?center={center['id']}")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Waitlist at {center['name']}")
    expect(page.locator("#updated")).to_contain_text("Offers updated at")


def offer_row(page: Page, offer: dict[str, Any]) -> Any:
    return page.locator(f"#offers tr[data-offer='{offer['id']}']")


def test_an_opening_declined_then_accepted(page: Page, server: Server, nurse: httpx.Client) -> None:
    # A 45-minute hold: the screen writes its end as a time and the minutes left.
    center = make_center(nurse, offer_hold_minutes=45)
    chairs = [make_chair(nurse, center["id"]) for _ in range(2)]
    imani = patient(nurse, "Imani", "Okafor")
    jonas = patient(nurse, "Jonas", "Weber")
    grace = patient(nurse, "Grace", "Sato")
    first = add(
        nurse, center["id"], patient_id=imani["id"], priority=1, note="Mornings only", **WINDOW
    )
    second = add(nurse, center["id"], patient_id=jonas["id"], priority=2, **WINDOW)
    # A bed's patient: the chair's opening does not fit them.
    add(nurse, center["id"], patient_id=grace["id"], priority=1, chair_kind="bed", **WINDOW)
    visit = booked(nurse, chairs[0]["id"], utc("09:00"))
    cancel(nurse, visit["id"])
    offer = open_offer(nurse, center["id"])
    assert offer is not None and offer["entry_id"] == first["id"]

    sign_in(page, "nurse@test.local")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Waitlist")).to_be_visible()
    open_screen(page, center)
    expect(nav.get_by_role("link", name="Waitlist")).to_have_attribute("aria-current", "page")
    row = offer_row(page, offer)
    expect(page.locator("#offers tr")).to_have_count(1)
    expect(row).to_contain_text("Okafor, Imani")
    expect(row).to_contain_text(f"MRN {imani['mrn']}")
    expect(row).to_contain_text(OPENING)
    expect(row).to_contain_text(f"{chairs[0]['label']} · 180 minutes · freed by a cancellation")
    expect(row).to_contain_text(f"1 Feb 2027 {DASH} 28 Feb 2027Priority 1 · Mornings only")
    expect(row).to_contain_text("Answer by")
    expect(row.locator("td.hold")).to_contain_text(hhmm(offer["hold_until"]))
    expect(row).to_contain_text("in 4")  # 45 minutes, or 44 by the time it is drawn
    # Waiting: the most urgent first, then the nearest deadline; who holds an offer is marked.
    entries = page.locator("#entries tr")
    expect(entries).to_have_count(3)
    expect(entries.nth(0)).to_contain_text("Okafor, Imani")
    expect(entries.nth(0)).to_contain_text("Offered Wed 10 Feb 2027 09:00")
    expect(entries.nth(1)).to_contain_text("Sato, Grace")
    expect(entries.nth(1)).to_contain_text("Bed")
    expect(entries.nth(2)).to_contain_text("Weber, Jonas")
    expect(entries.nth(2)).to_contain_text("Staff")
    expect(page.locator("#recent-empty")).to_be_visible()
    no_serious_violations(page)
    screenshot(page, server, "waitlist")

    # Declined: the opening goes to the next patient it fits, on the screen and in the API.
    row.get_by_role("button", name="Decline… for Okafor, Imani").click()
    dialog = page.get_by_role("dialog", name="Decline this offer?")
    expect(dialog).to_contain_text("Okafor, Imani does not take Wed 10 Feb 2027 09:00")
    no_serious_violations(page)
    dialog.get_by_role("button", name="Decline the offer").click()
    expect(page.locator("#offers-answer")).to_have_text(
        "Declined for Okafor, Imani: the opening goes to the next patient it fits."
    )
    nxt = open_offer(nurse, center["id"])
    assert nxt is not None and nxt["entry_id"] == second["id"]
    assert nurse.get(f"/api/v1/waitlist/offers/{offer['id']}").json()["status"] == "declined"
    row = offer_row(page, nxt)
    expect(page.locator("#offers tr")).to_have_count(1)
    expect(row).to_contain_text("Weber, Jonas")
    expect(row).to_contain_text(OPENING)
    expect(row).to_contain_text("Priority 2")
    recent = page.locator("#recent tr")
    expect(recent).to_have_count(1)
    expect(recent.nth(0)).to_contain_text("Okafor, Imani")
    expect(recent.nth(0)).to_contain_text("Declined")
    # Imani waits on: declining an offer keeps the patient on the list.
    expect(entries).to_have_count(3)

    # Accepted by keyboard: booked, said where, and the visit is in the API.
    row.get_by_role("button", name="Accept for Weber, Jonas").focus()
    page.keyboard.press("Enter")
    answer = page.locator("#offers-answer")
    expect(answer).to_contain_text(
        f"Booked: Wed 10 Feb 2027 09:00, chair {chairs[0]['label']}, for Weber, Jonas"
    )
    expect(answer).to_be_focused()
    accepted = nurse.get(f"/api/v1/waitlist/offers/{nxt['id']}").json()
    assert accepted["status"] == "accepted" and accepted["appointment_id"], accepted
    appt = nurse.get(f"/api/v1/appointments/{accepted['appointment_id']}").json()
    assert (appt["patient_id"], appt["chair_id"], appt["status"]) == (
        jonas["id"],
        chairs[0]["id"],
        "booked",
    )
    assert same(appt["start"], utc("09:00")) and appt["duration_minutes"] == 180
    assert nurse.get(f"/api/v1/waitlist/{second['id']}").json()["status"] == "booked"
    assert open_offer(nurse, center["id"]) is None
    expect(page.locator("#offers-empty")).to_be_visible()
    expect(entries).to_have_count(2)
    expect(page.locator("#entries")).not_to_contain_text("Weber, Jonas")
    expect(recent).to_have_count(2)
    expect(recent.nth(0)).to_contain_text("Weber, Jonas")
    expect(recent.nth(0)).to_contain_text("Accepted")
    expect(recent.nth(0)).to_contain_text(f"booked {chairs[0]['label']}")
    page.locator("#main").evaluate("main => main.scrollIntoView()")
    no_serious_violations(page)
    screenshot(page, server, "waitlist-booked")

    # The figures of that month: one opening, offered, filled; three chair hours.
    figures = page.locator("#figures")
    expect(figures).to_contain_text("Openings0")  # the last 30 days: nothing yet
    page.get_by_label("Openings from").fill("2027-02-01")
    page.get_by_label("to", exact=True).fill("2027-02-28")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#figures-range")).to_have_text(
        "Of the openings starting Mon 1 Feb 2027 to Sun 28 Feb 2027."
    )
    expect(figures).to_contain_text("Openings1")
    expect(figures).to_contain_text("Offered1to at least one patient; 2 offers in all")
    expect(figures).to_contain_text("Filled1")
    expect(figures).to_contain_text("Fill rate100 %")
    expect(figures).to_contain_text("Chair hours recovered3")
    figures.scroll_into_view_if_needed()
    no_serious_violations(page)
    screenshot(page, server, "waitlist-figures")


def test_an_ended_hold_adding_and_removing(
    page: Page, server: Server, nurse: httpx.Client, admin: httpx.Client
) -> None:
    center = make_center(nurse, offer_hold_minutes=60)
    chair = make_chair(nurse, center["id"])
    rosa = patient(nurse, "Rosa", "Tanaka")
    entry = add(nurse, center["id"], patient_id=rosa["id"], priority=2, **WINDOW)
    # Cancelled two hours ago (the API's test clock): the hour's hold has ended by now.
    visit = booked(nurse, chair["id"], utc("09:00"))
    cancel(nurse, visit["id"], headers=at(datetime.now(UTC) - timedelta(hours=2)))
    offer = open_offer(nurse, center["id"])
    assert offer is not None and offer["entry_id"] == entry["id"]
    tomas = patient(nurse, "Tomas", "Lindqvist")

    page.clock.install()  # the 30-second refresh, without the wait
    # The figures answer only after the first timed refresh: a slow figures read must not
    # hold back the refresh the "updated" line promises (it once did, on a slow machine).
    slow_figures: list[Route] = []
    figures_read = re.compile(r"/api/v1/waitlist/figures\?")
    page.route(figures_read, lambda route: slow_figures.append(route))
    sign_in(page, "nurse@test.local")
    open_screen(page, center)
    row = offer_row(page, offer)
    expect(row).to_contain_text("Tanaka, Rosa")
    # The refresh reads the offers again and says when; the focus stays where it was.
    row.get_by_role("button", name="Decline… for Tanaka, Rosa").focus()
    first_read = page.locator("#updated").inner_text()
    page.clock.fast_forward("00:31")
    expect(page.locator("#updated")).not_to_have_text(first_read)
    assert len(slow_figures) == 1  # still unanswered while the refresh ran
    slow_figures[0].continue_()
    page.unroute(figures_read)
    expect(page.locator("#figures")).to_contain_text("Openings")
    expect(row.get_by_role("button", name="Decline… for Tanaka, Rosa")).to_be_focused()
    expect(row).to_contain_text("Hold ended at")
    expect(row.locator("td.hold")).to_contain_text(hhmm(offer["hold_until"]))
    expect(row).to_have_class("ended")
    row.get_by_role("button", name="Accept for Tanaka, Rosa").click()
    problem = page.get_by_role("alert")
    expect(problem).to_have_text(
        "Could not accept the offer for Tanaka, Rosa: The offer's hold has passed"
    )
    expect(problem).to_be_focused()
    no_serious_violations(page)
    screenshot(page, server, "waitlist-hold-ended")
    assert nurse.get(f"/api/v1/waitlist/offers/{offer['id']}").json()["status"] == "open"
    assert nurse.get(f"/api/v1/waitlist/{entry['id']}").json()["status"] == "waiting"
    # The job expires it; nobody else fits, so a refresh shows no offer and the expired one.
    r = admin.post("/api/v1/jobs/waitlist_offers/run")
    assert r.status_code == 200 and r.json()["outcome"] == "succeeded", r.text
    page.get_by_role("button", name="Refresh").click()
    expect(page.locator("#offers-empty")).to_be_visible()
    expect(page.locator("#recent tr").nth(0)).to_contain_text("Hold ended unanswered")

    # Adding a patient from the form: found by MRN, chosen, the window and the rest given.
    page.get_by_role("button", name="Add a patient…").click()
    dialog = page.get_by_role("dialog", name="Add a patient to the waitlist")
    dialog.get_by_label("Patient (name or MRN)").fill(tomas["mrn"])
    dialog.get_by_label(f"Lindqvist, Tomas — MRN {tomas['mrn']}", exact=False).check()
    dialog.get_by_label("Earliest day").fill("2027-03-01")
    dialog.get_by_label("Latest day").fill("2027-03-19")
    dialog.get_by_label("Chair time (minutes)").fill("240")
    dialog.get_by_label("Chair kind").select_option("isolation")
    dialog.get_by_label("Priority").select_option("1")
    dialog.get_by_label("Note (optional)").fill("Call after 4 pm")
    no_serious_violations(page)
    screenshot(page, server, "waitlist-add")
    dialog.get_by_role("button", name="Add to the waitlist").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#entries-answer")).to_have_text(
        "Lindqvist, Tomas is on the waitlist, priority 1, any day from "
        f"1 Mar 2027 {DASH} 19 Mar 2027."
    )
    r = nurse.get("/api/v1/waitlist", params={"patient_id": tomas["id"]})
    (made,) = r.json()["items"]
    wanted = {
        "center_id": center["id"],
        "earliest": "2027-03-01",
        "latest": "2027-03-19",
        "duration_minutes": 240,
        "chair_kind": "isolation",
        "priority": 1,
        "note": "Call after 4 pm",
        "status": "waiting",
    }
    assert {k: made[k] for k in wanted} == wanted
    assert made["created_by"] is not None
    entries = page.locator("#entries tr")
    expect(entries).to_have_count(2)
    expect(entries.nth(0)).to_contain_text("Lindqvist, Tomas")
    expect(entries.nth(0)).to_contain_text("Isolation room")
    expect(entries.nth(0)).to_contain_text("240 minutes")
    expect(page.locator(f"#entries tr[data-entry='{made['id']}'] th")).to_be_focused()

    # Taking Rosa off: confirmed, gone from the screen, removed in the API.
    page.get_by_role("button", name="Remove… Tanaka, Rosa").click()
    confirm = page.get_by_role("dialog", name="Take Tanaka, Rosa off the waitlist?")
    confirm.get_by_role("button", name="Remove from the waitlist").click()
    expect(page.locator("#entries-answer")).to_have_text("Tanaka, Rosa is off the waitlist.")
    expect(entries).to_have_count(1)
    expect(page.locator("#entries")).not_to_contain_text("Tanaka, Rosa")
    assert nurse.get(f"/api/v1/waitlist/{entry['id']}").json()["status"] == "removed"
    assert [o["status"] for o in offers_at(nurse, center["id"])] == ["expired"]

    # Billing does not use the waitlist: no link, and the screen says whose it is.
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(server.base_url + "/")
    sign_in(page, "billing@test.local")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Day board")).to_be_visible()
    expect(nav.get_by_role("link", name="Waitlist")).to_have_count(0)
    page.goto("/waitlist")
    expect(page.locator("#refused")).to_be_visible()
    expect(page.locator("#waitlist")).to_be_hidden()
