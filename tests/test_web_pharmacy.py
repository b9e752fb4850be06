"""The pharmacy screen in a real browser (Debian's Chromium through Playwright), on both
databases: a pharmacy user (added from the admin screen) and a nurse take a dose from
clearance to the chair and on to administered, each step checked through the API, and a step
out of order shows the API's refusal; receiving a lot, moving one out of the fridge (its
expiry shortened), and a recall showing who received the lot; the next weeks' demand; stock
on order (placed for a short week, which it covers; received as a lot; cancelled; late); the
day board's drug-readiness marks. Every tab is checked with axe-core; screenshots (the SQLite
run's, at 1366x768) go to CHAIRSIDE_SCREENS when set."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.browser import open_context, requires_chromium
from tests.support.factories import (
    MONDAY,
    gamunex,
    make_patient,
    order,
    receive_lot,
    sessions_of,
    weekday_center,
)
from tests.support.servers import PASSWORD, Server, at
from tests.support.web import no_serious_violations, own_server, screenshot, sign_in

pytestmark = [pytest.mark.browser, requires_chromium]


server = own_server("web-pharmacy")

DAY = MONDAY.isoformat()  # 2027-01-11, EST: the courses' first sessions
BY = "\u00d7"  # the screen writes vials as 7 \u00d7 10 g


def local(hhmm: str) -> datetime:
    return datetime.fromisoformat(f"{DAY}T{hhmm}:00-05:00")


def day_text(iso: str) -> str:
    """A date as the screen writes it: 11 Jan 2027."""
    return f"{date.fromisoformat(iso):%-d %b %Y}"


def first_session(
    nurse: httpx.Client, center_id: str, given: str, family: str, start: str
) -> dict[str, Any]:
    """A one-session MMN maintenance course (1 g/kg, 70 kg: 70 g) for a new patient, booked
    on DAY at `start`; its visit."""
    patient = make_patient(
        nurse, given_name=given, family_name=family, weight_kg=70, height_cm=165, sex="female"
    )
    course = order(
        nurse,
        center_id,
        patient_id=patient["id"],
        diagnosis_code="G61.82",
        induction=None,
        maintenance={
            "dose_g_per_kg": 1,
            "interval_days": 28,
            "window_min_days": 21,
            "window_max_days": 42,
            "cycles": 1,
        },
        preferred_start_time=start,
    ).json()
    r = nurse.post(
        f"/api/v1/courses/{course['id']}/book",
        json={"through": (MONDAY + timedelta(weeks=4)).isoformat()},
    )
    assert r.status_code == 200, r.text
    (visit,) = sessions_of(nurse, patient["id"])
    assert visit["start"] == local(start).isoformat(), visit
    return visit


def a_pharmacy_day(
    nurse: httpx.Client, admin: httpx.Client
) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """A center with three doses of 70 g on DAY and 140 g of stock: the first covered by one
    lot, the second by two, the third short."""
    center, _ = weekday_center(nurse, chairs=3)
    product = gamunex(nurse)
    lots = [
        receive_lot(admin, center["id"], product, vials=10, location="Fridge 1"),
        receive_lot(admin, center["id"], product, vial_size_g=20, vials=2, expires_on="2027-09-30"),
    ]
    visits = [
        first_session(nurse, center["id"], "Imani", "Okafor", "08:30"),
        first_session(nurse, center["id"], "Jonas", "Weber", "09:00"),
        first_session(nurse, center["id"], "Grace", "Sato", "10:30"),
    ]
    return center, lots, visits


def dose_of(api: httpx.Client, center_id: str, visit_id: str) -> dict[str, Any]:
    r = api.get(f"/api/v1/centers/{center_id}/preparation", params={"date": DAY})
    assert r.status_code == 200, r.text
    dose: dict[str, Any] = next(d for d in r.json()["items"] if d["appointment_id"] == visit_id)
    return dose


def add_pharmacy_user(page: Page) -> str:
    """Through the admin screen's form (the page is signed in as an admin)."""
    email = f"rx.{uuid.uuid4().hex[:6]}@test.local"
    page.goto("/admin#users")
    form = page.get_by_role("form", name="Add a user")
    form.get_by_label("Email").fill(email)
    form.get_by_label("Role").select_option("pharmacy")
    form.get_by_label("Initial password").fill(PASSWORD)
    form.get_by_role("button", name="Add user").click()
    expect(form.get_by_role("status")).to_contain_text(f"Added {email} as pharmacy")
    row = page.locator("#users tr", has=page.get_by_role("rowheader", name=email, exact=False))
    expect(row.get_by_label(f"Role of {email}", exact=True)).to_have_value("pharmacy")
    return email


def pharmacy_user(admin: httpx.Client) -> str:
    email = f"rx.{uuid.uuid4().hex[:6]}@test.local"
    r = admin.post("/api/v1/users", json={"email": email, "role": "pharmacy", "password": PASSWORD})
    assert r.status_code == 201, r.text
    return email


def open_queue(page: Page, center: dict[str, Any]) -> None:
    page.goto(f"/pharmacy?center={center['id']}&date={DAY}")
    expect(page.get_by_role("heading", name="Doses to prepare on Mon 11 Jan 2027")).to_be_visible()


def hhmm(instant: str) -> str:
    """The time of day of an instant the API gives in the center's offset."""
    return instant[11:16]


def no_page_overflow(page: Page) -> None:
    wide = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert wide <= 0, f"the page scrolls sideways by {wide} px"


# --- the queue ------------------------------------------------------------------------------


def test_a_dose_from_clearance_to_the_chair(
    browser: Browser, server: Server, nurse: httpx.Client, admin: httpx.Client
) -> None:
    center, lots, (first, second, third) = a_pharmacy_day(nurse, admin)
    rx_context, rx_guard = open_context(browser, server.base_url)
    rn_context, rn_guard = open_context(browser, server.base_url)
    try:
        # An admin adds the pharmacist from the admin screen; signed in, the pharmacist lands
        # on the pharmacy screen (the day board is the nurses').
        rx = rx_context.new_page()
        sign_in(rx, "admin@test.local")
        email = add_pharmacy_user(rx)
        rx.get_by_role("button", name="Sign out").click()
        rx.wait_for_url(server.base_url + "/")
        sign_in(rx, email, lands="pharmacy")
        nav = rx.get_by_role("navigation", name="Main")
        expect(nav.get_by_role("link", name="Pharmacy")).to_be_visible()
        expect(nav.get_by_role("link", name="Day board")).to_have_count(0)
        expect(nav.get_by_role("link", name="Patients")).to_have_count(0)
        open_queue(rx, center)

        rows = rx.locator("#queue tr")
        expect(rows).to_have_count(3)
        row = rx.locator(f"tr[data-dose='{first['id']}']")
        expect(rows.nth(0)).to_have_attribute("data-dose", first["id"])
        expect(row).to_contain_text("Okafor, Imani")
        expect(row).to_contain_text(f"MRN {dose_of(nurse, center['id'], first['id'])['mrn']}")
        expect(row).to_contain_text("08:30")
        expect(row).to_contain_text("70 g")
        # The fewest vials, first expiry first out: both 20 g vials, then three of 10 g.
        expect(row).to_contain_text(f"2 {BY} 20 g lot {lots[1]['lot_number']}")
        expect(row).to_contain_text(f"3 {BY} 10 g lot {lots[0]['lot_number']}")
        expect(row).to_contain_text("08:00")  # prepare by: 30 minutes before the start
        expect(row).to_contain_text("Planned")
        # The second dose takes the rest of the 10 g lot; the third is short, and flagged.
        expect(rx.locator(f"tr[data-dose='{second['id']}']")).to_contain_text(
            f"7 {BY} 10 g lot {lots[0]['lot_number']}"
        )
        short = rx.locator(f"tr[data-dose='{third['id']}']")
        expect(short).to_have_class("short")
        expect(short).to_contain_text("Short 70 g: the stock cannot cover this dose")
        expect(rx.locator("#queue-count")).to_contain_text(
            "3 doses, 0 at the chair or given, 1 short"
        )
        # The pharmacy has no nurse's steps.
        expect(row.get_by_role("button", name="Clear Okafor, Imani's dose")).to_have_count(0)
        no_serious_violations(rx)
        no_page_overflow(rx)
        screenshot(rx, server, "pharmacy")

        # Prepared ahead; dispensing before the nurse has cleared the patient is refused, and
        # the screen says why.
        row.get_by_role("button", name="Prepare Okafor, Imani's dose").click()
        expect(row).to_contain_text("Prepared")
        assert dose_of(nurse, center["id"], first["id"])["status"] == "prepared"
        dispense = row.get_by_role("button", name="Dispense Okafor, Imani's dose")
        expect(dispense).to_be_focused()
        dispense.click()
        expect(rx.get_by_role("alert")).to_contain_text(
            "Could not dispense Okafor, Imani's dose: "
            "The patient must be cleared before the drug goes to the chair"
        )
        assert dose_of(nurse, center["id"], first["id"])["dispensed_at"] is None
        no_serious_violations(rx)

        # The nurse clears the patient from the same screen (a nurse has no pharmacy steps).
        rn = rn_context.new_page()
        sign_in(rn, "nurse@test.local")
        open_queue(rn, center)
        nurse_row = rn.locator(f"tr[data-dose='{first['id']}']")
        expect(nurse_row.get_by_role("button", name="Dispense Okafor, Imani's dose")).to_have_count(
            0
        )
        nurse_row.get_by_role("button", name="Clear Okafor, Imani's dose").click()
        expect(nurse_row).to_contain_text("cleared ")
        cleared = dose_of(nurse, center["id"], first["id"])
        assert cleared["status"] == "prepared" and cleared["cleared_at"], cleared
        expect(nurse_row).to_contain_text(f"cleared {hhmm(cleared['cleared_at'])}")

        # The pharmacy sees it on refreshing, and dispenses; the drug wait is shown.
        rx.get_by_role("button", name="Refresh").click()
        expect(row).to_contain_text(f"cleared {hhmm(cleared['cleared_at'])}")
        expect(rx.get_by_role("alert")).to_be_hidden()
        row.get_by_role("button", name="Dispense Okafor, Imani's dose").click()
        expect(row).to_contain_text("At the chair")
        dispensed = dose_of(nurse, center["id"], first["id"])
        assert dispensed["status"] == "dispensed", dispensed
        expect(row).to_contain_text(f"{dispensed['drug_wait_minutes']} min")

        # The nurse records it administered.
        rn.get_by_role("button", name="Refresh").click()
        nurse_row.get_by_role("button", name="Administer Okafor, Imani's dose").click()
        expect(nurse_row).to_contain_text("Administered")
        expect(nurse_row).to_contain_text("Given")
        assert dose_of(nurse, center["id"], first["id"])["status"] == "administered"
        expect(rn.locator("#queue-count")).to_contain_text("1 at the chair or given")
        no_serious_violations(rn)
        # On a tablet (1024x768) the page itself does not scroll sideways.
        rn.set_viewport_size({"width": 1024, "height": 768})
        no_page_overflow(rn)
        screenshot(rn, server, "pharmacy-tablet")
        # Another day, and back.
        rn.get_by_role("button", name="Next day").click()
        expect(
            rn.get_by_text("No course sessions with a planned dose on this day.")
        ).to_be_visible()
        rn.get_by_role("button", name="Previous day").click()
        expect(nurse_row).to_contain_text("Administered")
    finally:
        for context, guard in ((rx_context, rx_guard), (rn_context, rn_guard)):
            context.close()
            guard.check()


# --- the stock ------------------------------------------------------------------------------


def test_receive_a_lot_move_one_out_of_the_fridge_and_recall_one(
    browser: Browser, server: Server, nurse: httpx.Client, admin: httpx.Client
) -> None:
    center, lots, (first, *_) = a_pharmacy_day(nurse, admin)
    # The first visit drew 7 vials of the first lot.
    for action, time in (("check-in", "08:20"), ("start", "08:35")):
        r = nurse.post(f"/api/v1/appointments/{first['id']}/{action}", headers=at(local(time)))
        assert r.status_code == 200, r.text
    r = nurse.post(
        f"/api/v1/appointments/{first['id']}/complete",
        json={"vials_used": [{"lot_id": lots[0]["id"], "vials": 7}]},
        headers=at(local("11:45")),
    )
    assert r.status_code == 200, r.text
    email = pharmacy_user(admin)
    context, guard = open_context(browser, server.base_url)
    try:
        page = context.new_page()
        sign_in(page, email, lands="pharmacy")
        page.goto(f"/pharmacy?center={center['id']}#stock")
        panel = page.get_by_role("tabpanel", name="Stock")
        expect(panel).to_be_visible()
        rows = page.locator("#lots tr")
        expect(rows).to_have_count(2)
        # First expiry first out: the 20 g lot (September 2027) before the 10 g one (2028).
        expect(rows.nth(0)).to_contain_text(lots[1]["lot_number"])
        used = page.locator(f"tr[data-lot='{lots[0]['id']}']")
        expect(used).to_contain_text("3 of 10")
        expect(used).to_contain_text("Fridge 1")

        # Receive a lot: the vial sizes are the product's.
        page.get_by_role("button", name="Receive a lot…").click()
        dialog = page.get_by_role("dialog", name="Receive a lot")
        dialog.get_by_label("Drug").select_option(label="Gamunex-C 10%")
        sizes = dialog.get_by_label("Vial size").locator("option").all_inner_texts()
        label = nurse.get(f"/api/v1/products/{gamunex(nurse)}").json()["vial_sizes_g"]
        assert sizes == [f"{size:g} g" for size in label]  # 1, 2.5, 5, 10, 20, 40 g
        dialog.get_by_label("Lot number").fill("GX-4471")
        dialog.get_by_label("Vial size").select_option(label="40 g")
        dialog.get_by_label("Vials").fill("12")
        dialog.get_by_label("Expires (last day of use)").fill("2028-11-30")
        dialog.get_by_label("Location (optional)").fill("Fridge 2, shelf B")
        no_serious_violations(page)
        dialog.get_by_role("button", name="Receive").click()
        expect(dialog).to_be_hidden()
        expect(panel.locator("#stock-answer")).to_contain_text(
            f"Received lot GX-4471: 12 {BY} 40 g Gamunex-C 10%, expiring 30 Nov 2028"
        )
        received = next(
            lot
            for lot in nurse.get(
                "/api/v1/inventory/lots", params={"center_id": center["id"]}
            ).json()["items"]
            if lot["lot_number"] == "GX-4471"
        )
        assert (received["vials_on_hand"], received["vial_size_g"], received["location"]) == (
            12,
            40,
            "Fridge 2, shelf B",
        )
        fresh = page.locator(f"tr[data-lot='{received['id']}']")
        expect(fresh.get_by_role("rowheader")).to_be_focused()
        # The same lot again is refused, in the dialog.
        page.get_by_role("button", name="Receive a lot…").click()
        dialog.get_by_label("Drug").select_option(label="Gamunex-C 10%")
        dialog.get_by_label("Lot number").fill("GX-4471")
        dialog.get_by_label("Vial size").select_option(label="40 g")
        dialog.get_by_label("Vials").fill("1")
        dialog.get_by_label("Expires (last day of use)").fill("2028-11-30")
        dialog.get_by_role("button", name="Receive").click()
        expect(dialog.get_by_role("status")).to_contain_text("Not received")
        dialog.get_by_role("button", name="Cancel").click()

        # Out of the fridge: the confirmation says the expiry shortens, for good.
        fresh.get_by_role("button", name="To room temperature… lot GX-4471").click()
        confirm = page.get_by_role("dialog", name="Move to room temperature?")
        expect(confirm).to_contain_text("Its expiry shortens from 30 Nov 2028 to")
        expect(confirm).to_contain_text("there is no way back")
        no_serious_violations(page)
        screenshot(page, server, "pharmacy-room-temperature")
        confirm.get_by_role("button", name="Move to room temperature").click()
        expect(confirm).to_be_hidden()
        moved = nurse.get(f"/api/v1/inventory/lots/{received['id']}").json()
        assert moved["storage"] == "room_temperature"
        assert moved["expires_on"] < "2028-11-30"
        expect(fresh).to_contain_text("Room temperature")
        expect(fresh).to_contain_text(day_text(moved["expires_on"]))
        expect(fresh.get_by_role("button", name="To room temperature… lot GX-4471")).to_have_count(
            0
        )
        expect(panel.locator("#stock-answer")).to_contain_text(
            f"it now expires {day_text(moved['expires_on'])}"
        )

        # Quarantine and release.
        fresh.get_by_role("button", name="Quarantine… lot GX-4471").click()
        page.get_by_role("dialog", name="Quarantine this lot?").get_by_role(
            "button", name="Quarantine"
        ).click()
        expect(fresh).to_contain_text("Quarantined")
        assert nurse.get(f"/api/v1/inventory/lots/{received['id']}").json()["status"] == (
            "quarantined"
        )
        fresh.get_by_role("button", name="Release… lot GX-4471").click()
        page.get_by_role("dialog", name="Release this lot?").get_by_role(
            "button", name="Release"
        ).click()
        expect(fresh).to_contain_text("Available")
        no_serious_violations(page)
        no_page_overflow(page)
        screenshot(page, server, "pharmacy-stock")

        # A recall, and who received the lot.
        number = lots[0]["lot_number"]
        used.get_by_role("button", name=f"Recall… lot {number}").click()
        sure = page.get_by_role("dialog", name="Recall this lot?")
        expect(sure).to_contain_text("a recall is final")
        sure.get_by_role("button", name="Recall").click()
        given = page.get_by_role("dialog", name=f"Lot {number} recalled: who received it")
        expect(given).to_be_visible()
        expect(given).to_contain_text("1 patient received this lot")
        expect(given.locator("#given tr")).to_have_count(1)
        # The pharmacy, which may not search patients, sees whom the recall must reach.
        patient = nurse.get(f"/api/v1/patients/{first['patient_id']}").json()
        expect(given.locator("#given tr")).to_contain_text(
            f"{patient['family_name']}, {patient['given_name']}"
        )
        expect(given.locator("#given tr")).to_contain_text(f"MRN {patient['mrn']}")
        expect(given.locator("#given tr")).to_contain_text("Mon 11 Jan 2027 08:30")
        screenshot(page, server, "pharmacy-recall")
        assert nurse.get(f"/api/v1/inventory/lots/{lots[0]['id']}").json()["status"] == "recalled"
        no_serious_violations(page)
        given.get_by_role("button", name="Close").click()
        expect(used).to_contain_text("Recalled")
        expect(used.get_by_role("button", name=f"Release… lot {number}")).to_have_count(0)

    finally:
        context.close()
    guard.check()


# --- the demand and the day board -----------------------------------------------------------


def next_monday(timezone: str = "America/New_York") -> date:
    today = datetime.now(ZoneInfo(timezone)).date()
    return today + timedelta(days=7 - today.weekday())


def first_booked(
    nurse: httpx.Client, center_id: str, given: str, family: str, monday: date, cycles: int = 1
) -> None:
    """An MMN maintenance course (70 g every 28 days, `cycles` of them) for a new patient,
    booked from `monday`."""
    patient = make_patient(
        nurse, given_name=given, family_name=family, weight_kg=70, height_cm=165, sex="female"
    )
    course = order(
        nurse,
        center_id,
        patient_id=patient["id"],
        diagnosis_code="G61.82",
        start_date=monday.isoformat(),
        induction=None,
        maintenance={
            "dose_g_per_kg": 1,
            "interval_days": 28,
            "window_min_days": 21,
            "window_max_days": 42,
            "cycles": cycles,
        },
    ).json()
    r = nurse.post(
        f"/api/v1/courses/{course['id']}/book",
        json={"through": (monday + timedelta(weeks=4 * cycles)).isoformat()},
    )
    assert r.status_code == 200, r.text


def test_the_next_weeks_demand_with_its_shortfall_and_the_reorder_list(
    browser: Browser, server: Server, nurse: httpx.Client, admin: httpx.Client
) -> None:
    center, _ = weekday_center(nurse, chairs=2)
    product = gamunex(nurse)
    receive_lot(admin, center["id"], product, vials=10)  # 100 g, for 140 g booked
    monday = next_monday()
    for given, family in (("Kofi", "Mensah"), ("Rosa", "Tanaka")):
        first_booked(nurse, center["id"], given, family, monday, cycles=2)
    context, guard = open_context(browser, server.base_url)
    try:
        page = context.new_page()
        sign_in(page, pharmacy_user(admin), lands="pharmacy")
        page.goto(f"/pharmacy?center={center['id']}#demand")
        demand = page.get_by_role("tabpanel", name="Demand")
        rows = demand.locator("#demand tr")
        expect(rows).to_have_count(1)  # both first sessions, in next Monday's week
        expect(rows.nth(0)).to_contain_text(f"{monday:%a %-d %b %Y}")
        expect(rows.nth(0)).to_contain_text("140 g")
        expect(rows.nth(0)).to_have_class("short")
        expect(demand.locator("#shortfalls")).to_contain_text(
            f"Gamunex-C 10% runs short from {monday:%a %-d %b %Y}"
        )
        link = demand.get_by_role("link", name="Download the reorder list (CSV)")
        href = link.get_attribute("href")
        assert href and href.startswith(f"/api/v1/centers/{center['id']}/reorder.csv?from=")
        csv = page.request.get(href)
        assert csv.ok and "Gamunex-C 10%" in csv.text(), csv.text()
        no_serious_violations(page)
        screenshot(page, server, "pharmacy-demand")
        # The tabs by keyboard: the arrow keys move between them.
        page.get_by_role("tab", name="Demand").focus()
        page.keyboard.press("Home")
        expect(page.get_by_role("tab", name="Preparation queue")).to_be_focused()
        expect(page.get_by_role("tabpanel", name="Preparation queue")).to_be_visible()
        page.keyboard.press("ArrowRight")
        expect(page.get_by_role("tabpanel", name="Stock")).to_be_visible()
        no_serious_violations(page)
    finally:
        context.close()
    guard.check()


def test_stock_on_order_covers_a_short_week_and_is_received_as_a_lot(
    browser: Browser, server: Server, nurse: httpx.Client, admin: httpx.Client
) -> None:
    center, _ = weekday_center(nurse, chairs=2)
    product = gamunex(nurse)
    # Two 70 g doses next Monday, each planned as 40 + 20 + 10 g: the 20 g and 10 g vials are
    # on hand, the four 40 g ones are not.
    receive_lot(admin, center["id"], product, vials=10)
    receive_lot(admin, center["id"], product, vial_size_g=20, vials=2)
    monday = next_monday()
    for given, family in (("Ama", "Boateng"), ("Lena", "Fischer")):
        first_booked(nurse, center["id"], given, family, monday)
    week = {"from": monday.isoformat(), "to": (monday + timedelta(days=6)).isoformat()}
    demand_url = f"/api/v1/centers/{center['id']}/drug-demand"
    (short,) = nurse.get(demand_url, params={**week, "group": "week"}).json()["short"]
    assert short["shortfall_vials"] == [{"vial_size_g": 40, "count": 2}], short
    # An order placed three days ago for yesterday, not yet received: late.
    today = datetime.now(ZoneInfo(center["timezone"])).date()
    late = admin.post(
        "/api/v1/inventory/orders",
        json={
            "center_id": center["id"],
            "product_id": product,
            "vial_size_g": 10,
            "vials": 5,
            "expected_on": (today - timedelta(days=1)).isoformat(),
            "note": "PO-0950",
        },
        headers=at(datetime.now(ZoneInfo(center["timezone"])) - timedelta(days=3)),
    )
    assert late.status_code == 201, late.text
    orders_url = "/api/v1/inventory/orders"
    context, guard = open_context(browser, server.base_url)
    rn_context, rn_guard = open_context(browser, server.base_url)
    try:
        page = context.new_page()
        sign_in(page, pharmacy_user(admin), lands="pharmacy")
        page.goto(f"/pharmacy?center={center['id']}#demand")
        demand = page.get_by_role("tabpanel", name="Demand")
        expect(demand.locator("#demand tr")).to_have_class("short")
        expect(demand.locator("#demand tr td").nth(5)).to_have_text("—")  # nothing on order

        # The stock tab: the late order is flagged.
        page.get_by_role("tab", name="Stock").click()
        panel = page.get_by_role("tabpanel", name="Stock")
        row = page.locator(f"tr[data-order='{late.json()['id']}']")
        expect(row).to_have_class("late")
        expect(row).to_contain_text("Late, not counted in the forecast")
        expect(row).to_contain_text("PO-0950")

        # Place an order for the short week: the vial sizes are the product's.
        page.get_by_role("button", name="Place an order…").click()
        dialog = page.get_by_role("dialog", name="Place an order")
        dialog.get_by_label("Drug").select_option(label="Gamunex-C 10%")
        sizes = dialog.get_by_label("Vial size").locator("option").all_inner_texts()
        label = nurse.get(f"/api/v1/products/{product}").json()["vial_sizes_g"]
        assert sizes == [f"{size:g} g" for size in label]
        dialog.get_by_label("Vial size").select_option(label="40 g")
        dialog.get_by_label("Vials").fill("2")
        dialog.get_by_label("Expected on").fill(monday.isoformat())
        dialog.get_by_label("Note (optional)").fill("PO-1187")
        no_serious_violations(page)
        dialog.get_by_role("button", name="Place the order").click()
        expect(dialog).to_be_hidden()
        expect(panel.locator("#orders-answer")).to_contain_text(
            f"Ordered 2 {BY} 40 g Gamunex-C 10%, expected {monday:%a %-d %b %Y}"
        )
        placed = [
            o
            for o in nurse.get(orders_url, params={"center_id": center["id"]}).json()["items"]
            if o["note"] == "PO-1187"
        ]
        assert [(o["vial_size_g"], o["vials"], o["expected_on"], o["status"]) for o in placed] == [
            (40, 2, monday.isoformat(), "ordered")
        ]
        ordered = page.locator(f"tr[data-order='{placed[0]['id']}']")
        expect(ordered.get_by_role("rowheader")).to_be_focused()
        expect(ordered).not_to_have_class("late")

        # A second order, cancelled.
        page.get_by_role("button", name="Place an order…").click()
        dialog.get_by_label("Drug").select_option(label="Gamunex-C 10%")
        dialog.get_by_label("Vial size").select_option(label="10 g")
        dialog.get_by_label("Vials").fill("6")
        dialog.get_by_label("Expected on").fill((monday + timedelta(days=14)).isoformat())
        dialog.get_by_role("button", name="Place the order").click()
        expect(dialog).to_be_hidden()
        expect(page.locator("#orders tr")).to_have_count(3)  # late, Monday's, the second
        page.evaluate("() => window.scrollTo(0, document.body.scrollHeight)")  # the orders
        no_serious_violations(page)
        screenshot(page, server, "pharmacy-orders")
        second = page.locator("#orders tr").nth(2)
        second_id = second.get_attribute("data-order")
        second.get_by_role("button", name=f"Cancel… the order of 6 {BY} 10 g").click()
        sure = page.get_by_role("dialog", name="Cancel this order?")
        expect(sure).to_contain_text("no longer counts in the demand")
        sure.get_by_role("button", name="Cancel the order").click()
        expect(sure).to_be_hidden()
        expect(page.locator("#orders tr")).to_have_count(2)
        expect(panel.locator("#orders-answer")).to_contain_text(
            f"Cancelled the order of 6 {BY} 10 g Gamunex-C 10%"
        )
        assert nurse.get(f"{orders_url}/{second_id}").json()["status"] == "cancelled"

        # The demand: what is on order arrives in Monday's week, and the shortfall is gone.
        page.get_by_role("tab", name="Demand").click()
        line = demand.locator("#demand tr")
        expect(line).to_have_count(1)
        expect(line.locator("td").nth(5)).to_have_text(f"2 {BY} 40 g")
        expect(line).not_to_have_class("short")
        expect(line.locator("td").nth(6)).to_have_text("None")
        expect(demand.locator("#shortfalls")).to_contain_text(
            "The stock and what is on order cover every booked dose"
        )
        (api_line,) = nurse.get(demand_url, params={**week, "group": "week"}).json()["items"]
        assert api_line["on_order_vials"] == [{"vial_size_g": 40, "count": 2}], api_line
        assert api_line["shortfall_vials"] == []
        no_serious_violations(page)

        # Received as a lot: an expiry already past is refused, and the dialog says why.
        page.get_by_role("tab", name="Stock").click()
        ordered.get_by_role("button", name="Receive…").click()
        arrived = page.get_by_role("dialog", name=f"Receive 2 {BY} 40 g Gamunex-C 10%")
        expect(arrived.get_by_label("Vials received")).to_have_value("2")  # as ordered
        arrived.get_by_label("Lot number").fill("GX-9001")
        arrived.get_by_label("Expires (last day of use)").fill(
            (today - timedelta(days=1)).isoformat()
        )
        arrived.get_by_role("button", name="Receive into stock").click()
        expect(arrived.get_by_role("status")).to_have_text(
            "Not received: Expiry: the lot has already expired"
        )
        no_serious_violations(page)
        assert nurse.get(f"{orders_url}/{placed[0]['id']}").json()["status"] == "ordered"
        arrived.get_by_label("Expires (last day of use)").fill("2029-03-31")
        arrived.get_by_label("Location (optional)").fill("Fridge 3")
        arrived.get_by_role("button", name="Receive into stock").click()
        expect(arrived).to_be_hidden()
        expect(panel.locator("#stock-answer")).to_contain_text(
            f"Received the order as lot GX-9001: 2 {BY} 40 g Gamunex-C 10%, expiring 31 Mar 2029"
        )
        done = nurse.get(f"{orders_url}/{placed[0]['id']}").json()
        assert done["status"] == "received" and done["received_lot_id"], done
        lot = nurse.get(f"/api/v1/inventory/lots/{done['received_lot_id']}").json()
        assert (lot["lot_number"], lot["vial_size_g"], lot["vials_on_hand"], lot["location"]) == (
            "GX-9001",
            40,
            2,
            "Fridge 3",
        )
        fresh = page.locator(f"tr[data-lot='{lot['id']}']")
        expect(fresh).to_contain_text("2 of 2")
        expect(fresh.get_by_role("rowheader")).to_be_focused()
        expect(page.locator("#orders tr")).to_have_count(1)  # the late one is still open
        page.set_viewport_size({"width": 1024, "height": 768})
        no_page_overflow(page)

        # A nurse sees what is on order, without the pharmacy's buttons.
        rn = rn_context.new_page()
        sign_in(rn, "nurse@test.local")
        rn.goto(f"/pharmacy?center={center['id']}#stock")
        nurse_row = rn.locator(f"tr[data-order='{late.json()['id']}']")
        expect(nurse_row).to_contain_text("Late, not counted in the forecast")
        expect(rn.get_by_role("button", name="Place an order…")).to_have_count(0)
        expect(nurse_row.get_by_role("button")).to_have_count(0)
        expect(rn.locator("#orders-table thead th[data-pharmacy]")).to_be_hidden()
        no_serious_violations(rn)
    finally:
        for each, each_guard in ((context, guard), (rn_context, rn_guard)):
            each.close()
            each_guard.check()


def test_the_day_board_shows_each_doses_readiness(
    browser: Browser, server: Server, nurse: httpx.Client, admin: httpx.Client
) -> None:
    center, _, (ready, prepared, short) = a_pharmacy_day(nurse, admin)
    for visit, steps in ((ready, ("clear", "prepare", "dispense")), (prepared, ("prepare",))):
        for step in steps:
            r = admin.post(f"/api/v1/appointments/{visit['id']}/preparation/{step}")
            assert r.status_code == 200, r.text
    board = f"/board?center={center['id']}&date={DAY}"
    context, guard = open_context(browser, server.base_url)
    try:
        page = context.new_page()
        sign_in(page, "nurse@test.local")
        page.goto(board)
        card = page.locator(f"[data-visit='{ready['id']}']")
        expect(card.locator(".drug")).to_have_text("✓ Drug ready")
        expect(page.locator(f"[data-visit='{prepared['id']}'] .drug")).to_have_text(
            "◑ Drug prepared"
        )
        expect(page.locator(f"[data-visit='{short['id']}'] .drug")).to_have_text("▲ Drug short")
        # The words are in the card's name, for a screen reader; the icon is not.
        name = page.get_by_role("button", name="Okafor, Imani Drug ready", exact=False)
        expect(name).to_have_count(1)
        no_serious_violations(page)
        screenshot(page, server, "board-drug-ready")
        card.click()
        dialog = page.get_by_role("dialog", name="Okafor, Imani")
        expect(dialog).to_contain_text("At the chair")
        dialog.get_by_role("button", name="Close").click()
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url(server.base_url + "/")
        # Billing may not read the queue: the same board, without marks and without a fuss.
        sign_in(page, "billing@test.local")
        page.goto(board)
        expect(card).to_contain_text("Okafor, Imani")
        expect(page.locator("#board .drug")).to_have_count(0)
        expect(page.locator("#toast")).not_to_have_class("toast shown")
        page.goto("/pharmacy")
        expect(page.get_by_text("The pharmacy screen is for the pharmacy")).to_be_visible()
        expect(
            page.get_by_role("navigation", name="Main").get_by_role("link", name="Pharmacy")
        ).to_have_count(0)
    finally:
        context.close()
    guard.check()
