"""The patient and course screens in a real browser (Debian's Chromium through Playwright), on
both databases: finding a patient, their screen, ordering a course with a regimen's preset
(and a refused order's problem shown by the form), its plan, booking it, and what the last
re-plan changed once a session is cancelled. Each screen checked with axe-core, usable at
1024x768; screenshots of each go to CHAIRSIDE_SCREENS (the SQLite run's, at 1366x768)."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, Request, expect

from tests.support.browser import (
    requires_chromium,
)
from tests.support.factories import MONDAY, book, make_center, make_chair, make_patient
from tests.support.servers import Server, at
from tests.support.web import DASH, no_serious_violations, own_server, screenshot, sign_in

pytestmark = [pytest.mark.browser, requires_chromium]


server = own_server("web-pc")


THROUGH = MONDAY + timedelta(weeks=12)


def usable_at_1024(page: Page) -> None:
    """At 1024x768 the screen needs no sideways scrolling (WCAG reflow, at a small laptop)."""
    page.set_viewport_size({"width": 1024, "height": 768})
    try:
        wide = page.evaluate("() => document.documentElement.scrollWidth")
        assert wide <= 1024, f"the page is {wide} px wide at 1024 px"
    finally:
        page.set_viewport_size({"width": 1366, "height": 768})


def insure(billing: httpx.Client, patient_id: str) -> dict[str, Any]:
    """An approved authorization of 12 visits for Gamunex-C (J1561) over the course's months."""
    payer = billing.post(
        "/api/v1/payers",
        json={
            "name": f"Blue Valley Health {patient_id[:6]}",
            "turnaround_days": 14,
            "expedited_turnaround_days": 3,
            "renewal_margin_days": 7,
        },
    )
    assert payer.status_code == 201, payer.text
    cover = billing.post(
        f"/api/v1/patients/{patient_id}/coverages",
        json={
            "payer_id": payer.json()["id"],
            "member_id": "BVH-220941",
            "effective_from": (MONDAY - timedelta(days=60)).isoformat(),
        },
    )
    assert cover.status_code == 201, cover.text
    auth = billing.post(
        "/api/v1/authorizations",
        json={
            "patient_id": patient_id,
            "coverage_id": cover.json()["id"],
            "service_code": "J1561",
            "auth_number": "PA-77120",
            "status": "approved",
            "valid_from": (MONDAY - timedelta(days=7)).isoformat(),
            "valid_to": (MONDAY + timedelta(days=150)).isoformat(),
            "units_type": "visits",
            "units_approved": 12,
        },
    )
    assert auth.status_code == 201, auth.text
    result: dict[str, Any] = auth.json()
    return result


def test_find_a_patient_order_a_course_book_it_and_see_the_last_re_plan(
    page: Page, server: Server, nurse: httpx.Client, billing: httpx.Client
) -> None:
    center = make_center(nurse, days=range(5))  # Monday to Friday, EST
    chairs = [make_chair(nurse, center["id"]) for _ in range(3)]
    patient = make_patient(
        nurse, given_name="Imani", family_name="Okafor", weight_kg=70, height_cm=165
    )
    make_patient(nurse, given_name="Chidi", family_name="Okafor-Bell")
    make_patient(nurse, given_name="Tomas", family_name="Lindqvist")
    # A single visit the week before the course, outside any course.
    visit = book(nurse, patient["id"], chairs[2]["id"], "2027-01-05T13:00:00-05:00", 60)
    assert visit.status_code == 201, visit.text
    auth = insure(billing, patient["id"])
    urls: list[str] = []

    def remember(request: Request) -> None:
        urls.append(request.url)

    page.on("request", remember)
    sign_in(page, "nurse@test.local")

    # Patients: search by name; the text goes in a POST body, never in a URL.
    page.goto("/patients")
    page.get_by_label("Name or MRN").fill("okafor")
    results = page.get_by_role("table", name="Matching patients")
    expect(results.get_by_role("link", name="Okafor, Imani")).to_be_visible()
    expect(results.get_by_role("link", name="Okafor-Bell, Chidi")).to_be_visible()
    expect(results).not_to_contain_text("Lindqvist")
    expect(page.get_by_role("status").first).to_contain_text("2 matching patients")
    no_serious_violations(page)
    usable_at_1024(page)
    screenshot(page, server, "patients")
    # By MRN too.
    page.get_by_label("Name or MRN").fill(patient["mrn"])
    page.get_by_role("button", name="Find").click()
    expect(results.locator("tbody tr")).to_have_count(1)
    results.get_by_role("link", name="Okafor, Imani").click()
    page.wait_for_url(f"**/patients/{patient['id']}")

    # The patient: who, no course yet, the single visit, the authorization and its units.
    expect(page.get_by_role("heading", level=1)).to_have_text("Okafor, Imani")
    expect(page.locator("#facts")).to_contain_text(patient["mrn"])
    expect(page.locator("#facts")).to_contain_text("70 kg")
    expect(page.locator("#courses")).to_contain_text("No course yet.")
    visits = page.get_by_role("table", name="Upcoming visits")
    expect(visits).to_contain_text("Tue 5 Jan 2027")
    expect(visits).to_contain_text(f"13:00{DASH}14:00")
    expect(visits).to_contain_text(chairs[2]["label"])
    expect(visits).to_contain_text("Single visit")
    expect(visits).to_contain_text("Booked")
    auths = page.get_by_role("table", name="Insurance authorizations")
    expect(auths).to_contain_text("PA-77120")
    expect(auths).to_contain_text("0 used · 0 booked · 12 left")
    expect(auths).to_contain_text("Approved")
    no_serious_violations(page)
    usable_at_1024(page)

    # A new course, from the CIDP preset.
    page.get_by_role("link", name="New course").click()
    page.wait_for_url(f"**/courses/new?patient={patient['id']}")
    expect(page.get_by_role("heading", level=1)).to_have_text("New course for Okafor, Imani")
    page.get_by_label(re.compile(r"^\s*CIDP.*\(G61\.81\)")).check()
    expect(page.get_by_label("Diagnosis (ICD-10)")).to_have_value("G61.81")
    expect(page.get_by_label("Total dose (g/kg)")).to_have_value("2")
    expect(page.get_by_label("Over (consecutive days)")).to_have_value("5")
    expect(page.get_by_label("Every (days)")).to_have_value("21")
    expect(page.get_by_label("Number of doses")).to_have_value("12")
    expect(page.locator("#ind-figures")).to_contain_text("140 g in all, 28 g a day")
    page.get_by_label("Center", exact=True).select_option(label=center["name"])
    page.get_by_label("Product", exact=True).select_option(label="Gamunex-C 10% (J1561)")
    page.get_by_label("Start date").fill(MONDAY.isoformat())
    page.get_by_label("Mon", exact=True).check()
    no_serious_violations(page)
    usable_at_1024(page)
    page.evaluate("() => window.scrollTo(0, 0)")
    screenshot(page, server, "course-new")
    # The nurse can still change the preset; a window that does not hold is refused, and the
    # problem shows by the form.
    page.get_by_label("Earliest (days after the last)").fill("30")
    page.get_by_role("button", name="Order course").click()
    problem = page.get_by_role("alert")
    expect(problem).to_contain_text("window_min_days <= interval_days <= window_max_days")
    expect(page.get_by_label("Earliest (days after the last)")).to_have_value("30")
    no_serious_violations(page)
    page.get_by_label("Earliest (days after the last)").fill("21")
    page.get_by_role("button", name="Order course").click()
    page.wait_for_url(re.compile(r".*/courses/[0-9a-f-]{36}$"))
    course_id = page.url.rsplit("/", 1)[1]
    course = nurse.get(f"/api/v1/courses/{course_id}").json()
    assert course["preferred_weekdays"] == [0]
    assert course["maintenance"]["window_min_days"] == 21
    assert course["induction"] == {"total_dose_g_per_kg": 2.0, "days": 5, "skip_closures": False}

    # The course: its plan before booking, then booked.
    expect(page.get_by_role("heading", level=1)).to_have_text("CIDP course — Okafor, Imani")
    plan = page.get_by_role("table", name="The course's sessions in order")
    first = plan.locator("[data-session='induction-1-1']")
    expect(first).to_contain_text("Not booked")
    expect(first).to_contain_text("Due, not booked")
    expect(first).to_contain_text("28 g")
    expect(page.locator("#replan")).to_be_hidden()
    page.get_by_label("Book sessions due up to").fill(THROUGH.isoformat())
    page.get_by_role("button", name="Book next sessions").click()
    expect(page.locator("#book-answer")).to_contain_text("Booked 8 sessions.")
    expect(first).to_contain_text("Mon 11 Jan 2027")
    expect(first).to_contain_text(f"09:00{DASH}")
    expect(first).to_contain_text("Booked")
    expect(first).to_contain_text("Covered")
    labels = {c["label"] for c in chairs}
    assert any(label in first.inner_text() for label in labels)
    expect(plan.locator("[data-session='maintenance-3-1']")).to_contain_text("Booked")

    # The first loading day is given, with its record.
    sessions = nurse.get(f"/api/v1/courses/{course_id}/plan").json()["sessions"]
    day1 = sessions[0]["appointment"]
    chairside = at(datetime.fromisoformat(day1["start"]) + timedelta(minutes=5))
    for step in ("check-in", "start"):
        r = nurse.post(f"/api/v1/appointments/{day1['id']}/{step}", headers=chairside)
        assert r.status_code == 200, r.text
    r = nurse.post(
        f"/api/v1/appointments/{day1['id']}/complete",
        headers=chairside,
        json={
            "dose_given_g": 28,
            "reactions": [{"kind": "headache", "grade": 1, "action": "none"}],
        },
    )
    assert r.status_code == 200, r.text
    # A change through the API: the first maintenance session is cancelled. The later ones
    # follow, and the screen says what moved, from where to where.
    m1 = next(s for s in sessions if (s["phase"], s["sequence"]) == ("maintenance", 1))
    m2 = next(s for s in sessions if (s["phase"], s["sequence"]) == ("maintenance", 2))
    cancelled = nurse.post(f"/api/v1/appointments/{m1['appointment']['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["course_changes"]["moved"]
    page.reload()
    replan = page.get_by_role("region", name="What the last re-plan changed")
    expect(replan).to_contain_text("after maintenance session 1 was cancelled")
    changes = replan.get_by_role("table", name="Sessions the last re-plan changed")
    moved = changes.locator("tr", has_text="Maintenance 2")
    expect(moved).to_contain_text("Moved")
    was = m2["appointment"]["start"][:10]
    now = nurse.get(f"/api/v1/appointments/{m2['appointment']['id']}").json()["start"][:10]
    assert was != now
    expect(moved.locator("td").nth(1)).to_contain_text(_day(was))
    expect(moved.locator("td").nth(2)).to_contain_text(_day(now))
    expect(plan.locator("[data-session='maintenance-1-1']")).to_contain_text("Cancelled")
    expect(first).to_contain_text("Given")
    expect(first).to_contain_text("28 g given, mild reaction")
    no_serious_violations(page)
    usable_at_1024(page)
    screenshot(page, server, "course")

    # Back on the patient: the course, its visits with drug and dose, the units now booked.
    page.get_by_role("link", name="Okafor, Imani").click()
    page.wait_for_url(f"**/patients/{patient['id']}")
    courses = page.locator("#courses")
    expect(courses.get_by_role("link", name=re.compile(r"CIDP \(G61\.81\)"))).to_be_visible()
    expect(courses).to_contain_text("Gamunex-C")
    expect(courses).to_contain_text("Active")
    expect(courses).to_contain_text("next: Loading day 2, Tue 12 Jan 2027 · 1 given")
    # What was given, cancelled or missed is past, whatever its date.
    upcoming = page.get_by_role("table", name="Upcoming visits")
    expect(upcoming.locator("tr", has_text="Loading day 2")).to_contain_text("Booked")
    expect(upcoming.locator("tr", has_text="Loading day 1")).to_have_count(0)
    past = page.get_by_role("table", name="Past visits, latest first")
    loading = past.locator("tr", has_text="Loading day 1")
    expect(loading).to_contain_text("Mon 11 Jan 2027")
    expect(loading).to_contain_text("Gamunex-C 10%, 28 g")
    expect(loading).to_contain_text("Covered")
    expect(loading).to_contain_text("Completed")
    expect(past.locator("tr", has_text="Maintenance 1")).to_contain_text("Cancelled")
    usage = billing.get(f"/api/v1/authorizations/{auth['id']}/usage").json()
    assert usage["units_used"] == 1  # the loading day given
    units = f"1 used · {usage['units_scheduled']} booked · {usage['units_remaining']} left"
    expect(page.get_by_role("table", name="Insurance authorizations")).to_contain_text(units)
    no_serious_violations(page)
    screenshot(page, server, "patient")

    # No patient data in any URL the browser asked for.
    for url in urls:
        for private in ("okafor", "imani", patient["mrn"].lower()):
            assert private not in url.lower(), url


def _day(iso_date: str) -> str:
    """How the screens write a date: "Fri 5 Feb 2027"."""
    d = date.fromisoformat(iso_date)
    return f"{d:%a} {d.day} {d:%b %Y}"


def test_the_course_form_needs_a_patient_and_a_missing_course_says_so(
    page: Page, server: Server
) -> None:
    sign_in(page, "nurse@test.local")
    page.goto("/courses/new")
    expect(page.get_by_text("Open the patient first")).to_be_visible()
    no_serious_violations(page)
    page.goto("/courses/00000000-0000-4000-8000-000000000000")
    expect(page.get_by_role("heading", level=1)).to_have_text("No such course")
    page.goto("/patients/00000000-0000-4000-8000-000000000000")
    expect(page.get_by_role("heading", level=1)).to_have_text("No such patient")
