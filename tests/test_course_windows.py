"""A course session's clinical window holds against nurses' moves (unless overridden with a
reason) and against re-plans, which never move a session a nurse placed."""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta
from typing import Any

import httpx
from hypothesis import given
from hypothesis import strategies as st

from scheduling.courses.windows import loading_day_window
from tests.support.factories import (
    MONDAY,
    local_day,
    order,
    sessions_of,
    weekday_center,
)
from tests.support.servers import at

THROUGH = {"through": (MONDAY + timedelta(weeks=12)).isoformat()}


def tight_course(
    nurse: httpx.Client, center_id: str
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A maintenance course every 21 days, window 21-28 days, three sessions booked."""
    course = order(
        nurse,
        center_id,
        diagnosis_code="G61.82",
        induction=None,
        maintenance={
            "dose_g_per_kg": 1,
            "interval_days": 21,
            "window_min_days": 21,
            "window_max_days": 28,
            "cycles": 3,
        },
    ).json()
    r = nurse.post(f"/api/v1/courses/{course['id']}/book", json=THROUGH)
    assert r.status_code == 200 and len(r.json()["booked"]) == 3, r.text
    return course, sorted(sessions_of(nurse, course["patient_id"]), key=lambda a: a["start"])


def on(day: date, hhmm: str) -> str:
    return f"{day.isoformat()}T{hhmm}:00-05:00"


def move(nurse: httpx.Client, appt: dict[str, Any], **body: Any) -> httpx.Response:
    current = nurse.get(f"/api/v1/appointments/{appt['id']}").json()
    return nurse.patch(
        f"/api/v1/appointments/{appt['id']}",
        json=body,
        headers={"If-Match": f'"{current["version"]}"'},
    )


def test_a_move_outside_the_window_needs_an_override(nurse: httpx.Client) -> None:
    """Reproduces issue 12: moved 20 days outside its 21-28-day window, accepted with
    `problems: []`."""
    center, _ = weekday_center(nurse)
    course, (s1, s2, _s3) = tight_course(nurse, center["id"])
    first = local_day(s1["start"])
    far = first + timedelta(days=49)  # 21 days past the window's last day; a Monday
    r = move(nurse, s2, start=on(far, "09:00"))
    assert r.status_code == 409, r.text
    problem = r.json()
    assert problem["type"].endswith("/outside-window")
    assert problem["window_start"] == (first + timedelta(days=21)).isoformat()
    assert problem["window_end"] == (first + timedelta(days=28)).isoformat()
    assert nurse.get(f"/api/v1/appointments/{s2['id']}").json()["start"] == s2["start"]

    r = move(nurse, s2, start=on(far, "09:00"), override_reason="patient abroad until March")
    assert r.status_code == 200, r.text
    moved = r.json()
    assert moved["outside_window"] is True and moved["pinned"] is True
    assert local_day(moved["start"]) == far
    history = nurse.get(f"/api/v1/appointments/{s2['id']}/history").json()
    assert history[-1]["reason"] == "patient abroad until March"
    plan = nurse.get(f"/api/v1/courses/{course['id']}/plan", params=THROUGH).json()["sessions"]
    entry = next(e for e in plan if e["appointment"] and e["appointment"]["id"] == s2["id"])
    assert entry["outside_window"] is True
    # The session after it follows it, inside its own window from the moved one.
    later = [a for a in sessions_of(nurse, course["patient_id"]) if a["start"] > moved["start"]]
    assert later and 21 <= (local_day(later[0]["start"]) - far).days <= 28


def test_a_loading_day_stays_between_its_neighbours(nurse: httpx.Client) -> None:
    """Reproduces issue 12: an induction day could be moved after the last one."""
    center, _ = weekday_center(nurse)
    loading = {"total_dose_g_per_kg": 2, "days": 5}
    course = order(nurse, center["id"], induction=loading).json()
    booked = nurse.post(f"/api/v1/courses/{course['id']}/book", json=THROUGH).json()["booked"]
    induction = booked[:5]
    friday = local_day(induction[-1]["start"])
    next_monday = friday + timedelta(days=3)
    for day in induction[2], induction[4]:
        r = move(nurse, day, start=on(next_monday, "09:00"))
        assert r.status_code == 409 and r.json()["type"].endswith("/outside-window"), r.text
    wednesday = local_day(induction[2]["start"])
    assert move(nurse, induction[2], start=on(wednesday, "13:00")).status_code == 200


def test_a_move_inside_the_window_is_pinned_and_a_replan_leaves_it(nurse: httpx.Client) -> None:
    center, chairs = weekday_center(nurse, chairs=1)
    _course, (s1, s2, _s3) = tight_course(nurse, center["id"])
    earlier = local_day(s1["start"]) + timedelta(days=23)  # a Wednesday, inside 21-28
    r = move(nurse, s2, start=on(earlier, "14:00"))
    assert r.status_code == 200, r.text
    assert r.json()["pinned"] is True and r.json()["outside_window"] is False
    placed = r.json()
    # Someone else takes the chair right after it, so a longer session cannot grow in place.
    end = datetime.fromisoformat(placed["end"]) + timedelta(minutes=15)
    other = order(nurse, center["id"]).json()["patient_id"]
    blocker = nurse.post(
        "/api/v1/appointments",
        json={
            "patient_id": other,
            "chair_id": chairs[0],
            "start": end.isoformat(),
            "end": on(earlier, "19:00"),
        },
    )
    assert blocker.status_code == 201, blocker.text
    # s1 is given with a reaction: a slower tolerated rate makes later sessions longer. The
    # pinned one stays put and the misfit is reported rather than the nurse's move undone.
    url = f"/api/v1/appointments/{s1['id']}"
    nurse.headers.update(at(datetime.fromisoformat(s1["start"]) + timedelta(minutes=5)))
    for step in ("check-in", "start"):
        assert nurse.post(f"{url}/{step}").status_code == 200
    done = nurse.post(f"{url}/complete", json={"tolerated_rate_mg_per_kg_min": 1.5})
    assert done.status_code == 200, done.text
    changes = done.json()["course_changes"]
    assert s2["id"] not in {a["id"] for a in changes["moved"]}
    assert any("placed by a nurse" in p["unbookable_reason"] for p in changes["problems"]), changes
    kept = nurse.get(f"/api/v1/appointments/{s2['id']}").json()
    assert (kept["start"], kept["chair_id"]) == (placed["start"], placed["chair_id"])


def test_a_replan_after_a_move_keeps_every_session_in_its_window(nurse: httpx.Client) -> None:
    center, _ = weekday_center(nurse)
    course, (s1, _s2, _s3) = tight_course(nurse, center["id"])
    # The first session's window runs a week from the start (28 - 21): move it to Friday.
    friday = local_day(s1["start"]) + timedelta(days=4)
    r = move(nurse, s1, start=on(friday, "09:00"))
    assert r.status_code == 200, r.text
    changes = r.json()["course_changes"]
    assert changes["problems"] == []
    days = [
        local_day(a["start"])
        for a in sorted(sessions_of(nurse, course["patient_id"]), key=lambda a: a["start"])
    ]
    assert days[0] == friday
    for previous, day in itertools.pairwise(days):
        assert 21 <= (day - previous).days <= 28, days


days = st.dates(min_value=date(2027, 1, 1), max_value=date(2027, 12, 31))


@given(days, st.integers(0, 5), st.integers(1, 5), st.integers(1, 5), st.booleans())
def test_a_loading_days_window_lies_between_its_neighbours(
    start: date, before_gap: int, own_gap: int, after_gap: int, last: bool
) -> None:
    before = start + timedelta(days=before_gap)
    own = before + timedelta(days=own_gap)
    after = None if last else own + timedelta(days=after_gap)
    next_open = before + timedelta(days=1) if last else None
    window = loading_day_window(own, start, before, after, next_open)
    assert window.earliest <= window.target <= window.latest
    assert window.earliest == before + timedelta(days=1)
    if after is not None:
        assert window.latest == after - timedelta(days=1) and own in window
    else:
        assert window.latest == before + timedelta(days=1)
    first = loading_day_window(own, start, None, after, None)
    assert first.earliest == start
