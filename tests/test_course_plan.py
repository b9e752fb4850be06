"""A course's plan: the whole course in order, with numbers that do not shift."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx

from tests.support.factories import (
    MONDAY,
    maintenance_course,
    make_center,
    make_chair,
    order,
    sessions_of,
)
from tests.support.servers import at

THROUGH = {"through": (MONDAY + timedelta(weeks=30)).isoformat()}


def weekday_center(api: httpx.Client) -> str:
    center = make_center(api, days=range(5))
    for _ in range(2):
        make_chair(api, center["id"])
    center_id: str = center["id"]
    return center_id


def plan(api: httpx.Client, course_id: str) -> list[dict[str, Any]]:
    r = api.get(f"/api/v1/courses/{course_id}/plan", params=THROUGH)
    assert r.status_code == 200, r.text
    sessions: list[dict[str, Any]] = r.json()["sessions"]
    return sessions


def status(entry: dict[str, Any]) -> str | None:
    appt = entry["appointment"]
    return appt["status"] if appt else None


def complete(api: httpx.Client, appt: dict[str, Any], **record: Any) -> None:
    url = f"/api/v1/appointments/{appt['id']}"
    start = datetime.fromisoformat(appt["start"])
    for step, when in (("check-in", -30), ("start", 5), ("complete", 200)):
        headers = at(start + timedelta(minutes=when))
        body = record if step == "complete" else None
        r = api.post(f"{url}/{step}", json=body, headers=headers)
        assert r.status_code == 200, r.text


def test_a_cancelled_session_keeps_its_place_and_the_numbers_do_not_shift(
    nurse: httpx.Client,
) -> None:
    course = maintenance_course(nurse, weekday_center(nurse), cycles=4)
    s2 = sessions_of(nurse, course["patient_id"])[1]
    assert nurse.post(f"/api/v1/appointments/{s2['id']}/cancel").status_code == 200
    sessions = plan(nurse, course["id"])
    # The lost dose is shown where it was; the one it is made up with comes at the end.
    assert [(s["sequence"], status(s)) for s in sessions] == [
        (1, "booked"),
        (2, "cancelled"),
        (3, "booked"),
        (4, "booked"),
        (5, None),
    ]
    assert [s["dose_number"] for s in sessions] == [1, None, 2, 3, 4]
    assert sessions[1]["appointment"]["id"] == s2["id"]
    assert all(s["phase"] == "maintenance" for s in sessions)
    # Booking the made-up dose gives it the number the plan showed.
    r = nurse.post(f"/api/v1/courses/{course['id']}/book", json=THROUGH)
    assert [a["sequence"] for a in r.json()["booked"]] == [5]
    assert [s["sequence"] for s in plan(nurse, course["id"])] == [1, 2, 3, 4, 5]


def test_the_plan_keeps_given_sessions_with_their_record(nurse: httpx.Client) -> None:
    course = maintenance_course(nurse, weekday_center(nurse), cycles=3)
    s1 = sessions_of(nurse, course["patient_id"])[0]
    before = plan(nurse, course["id"])
    complete(nurse, s1, weight_kg=71, dose_given_g=70)
    sessions = plan(nurse, course["id"])
    assert [s["sequence"] for s in sessions] == [s["sequence"] for s in before] == [1, 2, 3]
    given = sessions[0]
    assert status(given) == "completed" and given["appointment"]["id"] == s1["id"]
    assert given["record"]["dose_given_g"] == 70.0 and given["record"]["weight_kg"] == 71.0
    assert sessions[1]["record"] is None
    # Upcoming ones keep their windows; every entry says whether a nurse pinned it.
    assert sessions[1]["window_start"] <= sessions[1]["target_date"] <= sessions[1]["window_end"]
    assert all(s["outside_window"] is False and s["pinned"] is False for s in sessions)


def test_an_induction_and_its_maintenance_in_course_order(nurse: httpx.Client) -> None:
    course = order(nurse, weekday_center(nurse)).json()  # CIDP: 5 loading days, then every 21
    r = nurse.post(f"/api/v1/courses/{course['id']}/book", json=THROUGH)
    booked = r.json()["booked"]
    complete(nurse, booked[0])
    assert nurse.post(f"/api/v1/appointments/{booked[6]['id']}/cancel").status_code == 200
    sessions = plan(nurse, course["id"])
    phases = [(s["phase"], s["sequence"]) for s in sessions]
    assert phases[:5] == [("induction", n) for n in range(1, 6)]
    maintenance = [n for phase, n in phases if phase == "maintenance"]
    assert maintenance == list(range(1, len(maintenance) + 1))  # the lost one is there too
    assert status(sessions[0]) == "completed" and status(sessions[6]) == "cancelled"
    dates = [s["appointment"]["start"][:10] if s["appointment"] else "" for s in sessions]
    kept = [d for d in dates if d]
    assert kept == sorted(kept)
