"""Evening out the week from the board's week view in a real browser (Debian's Chromium
through Playwright), on both databases: a nurse asks for a proposal for the week shown, sees
it on the week (its figures before and after, a census strip per day before and after, the
visits that move marked with where they go), applies it by keyboard and sees the new times,
each step checked through the API; a proposal gone stale (a visit booked meanwhile) shows the
API's refusal and moves nothing; a week with nothing to gain says so. Each screen is checked
with axe-core; screenshots (the SQLite run's, at 1366x768) go to CHAIRSIDE_SCREENS when set."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import Locator, Page, Route, expect

from tests.support.browser import requires_chromium
from tests.support.factories import MONDAY, order
from tests.support.servers import Server
from tests.support.web import DASH, no_serious_violations, own_server, screenshot, sign_in
from tests.test_optimisations import center_with_crowded_monday, visits

pytestmark = [pytest.mark.browser, requires_chromium]


server = own_server("web-optimiser")

NY = ZoneInfo("America/New_York")
SUNDAY = MONDAY + timedelta(days=6)
NAMES = [  # (given, family) for the crowded Monday's patients, so the screens read as a week
    ("Imani", "Okafor"),
    ("Jonas", "Weber"),
    ("Grace", "Sato"),
    ("Kofi", "Mensah"),
    ("Elena", "Eriksen"),
    ("Samir", "Gupta"),
]


def named(nurse: httpx.Client, courses: list[dict[str, Any]]) -> None:
    """Give each course's patient a name of its own (they are all 'Patient, Test')."""
    for course, (given, family) in zip(courses, NAMES, strict=False):
        patient = nurse.get(f"/api/v1/patients/{course['patient_id']}").json()
        r = nurse.patch(
            f"/api/v1/patients/{patient['id']}",
            json={"given_name": given, "family_name": family},
            headers={"If-Match": f'"{patient["version"]}"'},
        )
        assert r.status_code == 200, r.text


def open_week(page: Page, center: dict[str, Any]) -> None:
    page.goto(f"/board?center={center['id']}&date={MONDAY.isoformat()}&view=week")
    expect(page.get_by_role("heading", level=1)).to_contain_text("week of Monday, 11 January 2027")


def hhmm(instant: str) -> str:
    """The wall clock of an instant the API gives in the center's offset."""
    return instant[11:16]


def short(day: date) -> str:
    """A date as the week's marks write it: Wed 13 Jan."""
    return f"{day:%a} {day.day} {day:%b}"


def day_card(page: Page, day: date) -> Locator:
    return page.locator("#week .day").nth((day - MONDAY).days)


def ask(page: Page) -> dict[str, Any]:
    """Press "Even out this week" and return the proposal the page was given. The solver's
    reply is held back until the page has shown it is working, so the busy state is seen."""
    held: list[Route] = []

    def hold(route: Route) -> None:
        held.append(route)

    page.route("**/optimise", hold)
    button = page.get_by_role("button", name="Even out this week")
    button.click()
    expect(button).to_be_disabled()
    expect(page.locator("#even-out-status")).to_contain_text("Working out an even week")
    expect(page.locator("#week")).to_have_attribute("aria-busy", "true")
    with page.expect_response(lambda r: r.url.endswith("/optimise")) as answer:
        while not held:
            page.wait_for_timeout(50)
        held[0].continue_()
    page.unroute("**/optimise")
    assert answer.value.status == 201, answer.value.text()
    proposal: dict[str, Any] = answer.value.json()
    expect(button).to_be_enabled()
    return proposal


def in_words(day: dict[str, Any], which: str) -> str:
    """A day's census as a strip's text alternative gives it, worked out here from the
    proposal's numbers: each stretch of one count, its times joined by an en dash, then the
    count (empty stretches left out)."""
    opens = datetime.strptime(day["opens"], "%H:%M")
    step = timedelta(minutes=day["slot_minutes"])

    def at(i: int) -> str:
        return f"{opens + i * step:%H:%M}"

    counts, capacity = day[which], day["capacity"]
    stretches: list[str] = []
    i = 0
    while i < len(counts):
        j = i
        while j < len(counts) and counts[j] == counts[i] and capacity[j] == capacity[i]:
            j += 1
        if counts[i]:
            over = f" (over {capacity[i]})" if counts[i] > capacity[i] else ""
            stretches.append(f"{at(i)}{DASH}{at(j)} {counts[i]}{over}")
        i = j
    return ", ".join(stretches)


def places(nurse: httpx.Client, center_id: str) -> dict[str, tuple[datetime, str]]:
    return {
        v["id"]: (datetime.fromisoformat(v["start"]), v["chair_id"])
        for v in visits(nurse, center_id, MONDAY, SUNDAY)
    }


def test_even_out_the_week_then_apply_by_keyboard(
    page: Page, server: Server, nurse: httpx.Client
) -> None:
    center, chairs, courses = center_with_crowded_monday(nurse)
    named(nurse, courses)
    # Since the booking the center has cut its patients per nurse to 2 (capacity 4): Monday's
    # busiest stretch, 6 patients, is over what the nurses can look after.
    r = nurse.patch(
        f"/api/v1/centers/{center['id']}",
        json={"patients_per_nurse": 2},
        headers={"If-Match": f'"{center["version"]}"'},
    )
    assert r.status_code == 200, r.text
    week = nurse.get(
        f"/api/v1/centers/{center['id']}/week", params={"start": MONDAY.isoformat()}
    ).json()
    labels = {c["id"]: c["label"] for d in week["days"] for c in d["chairs"]}
    names = {
        a["id"]: a["patient_name"]
        for d in week["days"]
        for c in d["chairs"]
        for a in c["appointments"]
    }
    before = places(nurse, center["id"])
    assert len(before) == 6 and len(chairs) == 6

    sign_in(page, "nurse@test.local")
    open_week(page, center)
    expect(day_card(page, MONDAY)).to_contain_text("09:00 Okafor, Imani")
    no_serious_violations(page)

    proposal = ask(page)
    assert proposal["status"] == "proposed" and proposal["moves"], proposal
    assert (proposal["from"], proposal["to"]) == (MONDAY.isoformat(), SUNDAY.isoformat())
    b, a = proposal["before"], proposal["after"]
    assert a["peak_census"] < b["peak_census"]

    # The figures before and after.
    box = page.get_by_role("region", name="Proposal: the week of Monday, 11 January 2027")
    expect(box).to_be_visible()
    expect(box.get_by_role("heading", level=2)).to_be_focused()
    figures = box.locator("#proposal-figures")
    expect(figures).to_contain_text(f"Busiest moment{b['peak_census']} → {a['peak_census']}")
    expect(figures).to_contain_text(
        f"Most starts in 30 minutes{b['max_starts_per_30_min']} → {a['max_starts_per_30_min']}"
    )
    expect(figures).to_contain_text(f"no plan can do better than {proposal['lower_bound_peak']}")
    expect(figures).to_contain_text(f"Visits that move{len(proposal['moves'])}")
    expect(page.locator("#even-out-status")).to_contain_text(
        f"Proposal ready: {len(proposal['moves'])} visits move"
    )

    # A census strip per open day, before and after, its numbers in words.
    open_days = [d for d in proposal["days"] if d["opens"]]
    assert len(open_days) == 5
    strips = page.locator("#week .strip[role='img']")
    expect(strips).to_have_count(2 * len(open_days))
    monday = proposal["days"][0]
    now_strip = day_card(page, MONDAY).get_by_role("img", name="now", exact=False)
    label = now_strip.get_attribute("aria-label") or ""
    assert label.startswith(
        f"Monday, 11 January 2027, now: busiest {max(monday['before'])} patients in chairs"
    ), label
    assert f"Patients in chairs: {in_words(monday, 'before')}." in label, label
    for levels in open_days:
        card = day_card(page, date.fromisoformat(levels["date"]))
        for name, which in (("now", "before"), ("after", "after")):
            text = card.get_by_role("img", name=f", {name}:", exact=False).get_attribute(
                "aria-label"
            )
            assert f"busiest {max(levels[which])} patients in chairs" in (text or ""), text
            assert f"Patients in chairs: {in_words(levels, which) or 'nobody'}." in (text or ""), (
                text
            )
    assert day_card(page, MONDAY).locator(".strip .bar").count() == 2 * len(monday["before"])
    # Over capacity: the bars marked, and the times in words under the strip.
    over = [
        i
        for i, (n, cap) in enumerate(zip(monday["before"], monday["capacity"], strict=True))
        if n > cap
    ]
    assert over, monday
    now_row = day_card(page, MONDAY).locator(".strip-row").first
    expect(now_row.locator(".bar.over")).to_have_count(len(over))
    expect(now_row.locator(".over-note")).to_contain_text("▲ over: ")
    expect(day_card(page, MONDAY).locator(".strip-row").nth(1).locator(".bar.over")).to_have_count(
        sum(1 for n, cap in zip(monday["after"], monday["capacity"], strict=True) if n > cap)
    )

    # Each visit that moves is marked with where it goes; one going to another day is also
    # listed on that day.
    for move in proposal["moves"]:
        moved_from = datetime.fromisoformat(move["from_start"]).date()
        moved_to = datetime.fromisoformat(move["to_start"]).date()
        where = f"chair {labels[move['to_chair_id']]}"
        when = (
            hhmm(move["to_start"])
            if moved_to == moved_from
            else f"{short(moved_to)} {hhmm(move['to_start'])}"
        )
        item = day_card(page, moved_from).locator(
            f"li.moving[data-appointment='{move['appointment_id']}']"
        )
        expect(item).to_contain_text(f"{hhmm(move['from_start'])} {names[move['appointment_id']]}")
        expect(item).to_contain_text(f"Moves {hhmm(move['from_start'])} → {when}, {where}")
        if moved_to != moved_from:
            arriving = day_card(page, moved_to).locator(
                f"li.arriving[data-appointment='{move['appointment_id']}']"
            )
            expect(arriving).to_contain_text(
                f"{hhmm(move['to_start'])} {names[move['appointment_id']]}"
            )
            expect(arriving).to_contain_text(
                f"Arrives from {short(moved_from)} {hhmm(move['from_start'])}"
            )
    staying = set(before) - {m["appointment_id"] for m in proposal["moves"]}
    for visit_id in staying:
        expect(page.locator(f"#week li[data-appointment='{visit_id}']")).not_to_have_class("moving")
    no_serious_violations(page)
    screenshot(page, server, "board-even-out")
    page.locator("#week").scroll_into_view_if_needed()
    screenshot(page, server, "board-even-out-moves")

    # Nothing has moved yet.
    assert places(nurse, center["id"]) == before

    # Apply, by keyboard: from the proposal's heading (where the focus went) to its button.
    page.keyboard.press("Tab")
    apply = page.get_by_role("button", name="Apply these moves")
    expect(apply).to_be_focused()
    page.keyboard.press("Enter")
    status = page.locator("#even-out-status")
    expect(status).to_contain_text(f"Applied: {len(proposal['moves'])} visits have moved")
    expect(box).to_be_hidden()
    expect(page.locator("#week li.moving")).to_have_count(0)

    # Through the API: every visit is at its proposal's place, the others where they were.
    after = places(nurse, center["id"])
    assert set(after) == set(before)
    for move in proposal["moves"]:
        assert after[move["appointment_id"]] == (
            datetime.fromisoformat(move["to_start"]),
            move["to_chair_id"],
        ), move
    for visit_id in staying:
        assert after[visit_id] == before[visit_id]
    applied = nurse.get(f"/api/v1/optimisations/{proposal['id']}").json()
    assert applied["status"] == "applied"
    # And on the page: each at its new time, on its new day.
    for move in proposal["moves"]:
        moved_to = datetime.fromisoformat(move["to_start"]).date()
        item = day_card(page, moved_to).locator(f"li[data-appointment='{move['appointment_id']}']")
        expect(item).to_have_text(f"{hhmm(move['to_start'])} {names[move['appointment_id']]}")
    no_serious_violations(page)
    screenshot(page, server, "board-even-out-applied")


def test_a_stale_proposal_shows_the_refusal_and_moves_nothing(
    page: Page, server: Server, nurse: httpx.Client
) -> None:
    center, chairs, courses = center_with_crowded_monday(nurse, courses=5)
    named(nurse, courses)
    before = places(nurse, center["id"])
    sign_in(page, "nurse@test.local")
    open_week(page, center)
    proposal = ask(page)
    assert proposal["moves"], proposal
    expect(page.get_by_role("button", name="Apply these moves")).to_be_visible()

    # Someone books a visit on Wednesday meanwhile: the week is no longer what was proposed.
    other = order(nurse, center["id"]).json()["patient_id"]
    wednesday = datetime(2027, 1, 13, 15, 0, tzinfo=NY).isoformat()
    r = nurse.post(
        "/api/v1/appointments",
        json={
            "patient_id": other,
            "chair_id": chairs[0],
            "start": wednesday,
            "duration_minutes": 60,
        },
    )
    assert r.status_code == 201, r.text

    page.get_by_role("button", name="Apply these moves").click()
    status = page.locator("#even-out-status")
    expect(status).to_contain_text(
        "Not applied, nothing moved. The schedule changed since this proposal was made; ask for"
        " a new one (changed: Wednesday, 13 January 2027)."
    )
    expect(status).to_contain_text("to ask again")
    expect(status).to_have_class("answer bad")
    # The proposal is put away; the week is read again, with Wednesday's new visit.
    expect(page.locator("#proposal")).to_be_hidden()
    expect(day_card(page, MONDAY + timedelta(days=2))).to_contain_text("15:00 Patient, Test")
    still = places(nurse, center["id"])
    assert {k: v for k, v in still.items() if k in before} == before
    assert nurse.get(f"/api/v1/optimisations/{proposal['id']}").json()["status"] == "proposed"
    expect(page.get_by_role("button", name="Even out this week")).to_be_focused()
    no_serious_violations(page)
    screenshot(page, server, "board-even-out-stale")

    # Asking again gives a proposal of the week as it is now; discarding it moves nothing.
    again = ask(page)
    assert again["id"] != proposal["id"] and again["moves"]
    expect(page.locator("#proposal")).to_be_visible()
    page.get_by_role("button", name="Discard").click()
    expect(page.locator("#proposal")).to_be_hidden()
    expect(page.locator("#week li.moving")).to_have_count(0)
    expect(status).to_contain_text("Proposal discarded: nothing moved.")
    expect(page.get_by_role("button", name="Even out this week")).to_be_focused()
    assert nurse.get(f"/api/v1/optimisations/{again['id']}").json()["status"] == "proposed"


def test_a_week_already_even_says_so(page: Page, server: Server, nurse: httpx.Client) -> None:
    center, _, _ = center_with_crowded_monday(nurse, courses=1)
    sign_in(page, "nurse@test.local")
    open_week(page, center)
    proposal = ask(page)
    assert proposal["moves"] == [] and proposal["feasible"], proposal
    expect(page.locator("#even-out-status")).to_have_text(
        "This week is already as even as the rules allow: no visit needs to move."
    )
    expect(page.locator("#proposal")).to_be_hidden()
    no_serious_violations(page)
