"""Re-planning a course after one of its sessions changes: sizes, lost days, what is reported."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import httpx

from tests.support.factories import (
    MONDAY,
    local_day,
    maintenance_course,
    make_center,
    make_chair,
    make_patient,
    order,
    sessions_of,
)
from tests.support.servers import Server, at

THROUGH = {"through": (MONDAY + timedelta(weeks=12)).isoformat()}


def weekday_center(api: httpx.Client, chairs: int = 2, **kw: Any) -> tuple[str, list[str]]:
    center = make_center(api, days=range(5), **kw)
    return center["id"], [make_chair(api, center["id"])["id"] for _ in range(chairs)]


def minutes(a: dict[str, Any]) -> int:
    return int(a["duration_minutes"])


def plan(api: httpx.Client, course_id: str) -> list[dict[str, Any]]:
    sessions: list[dict[str, Any]] = api.get(
        f"/api/v1/courses/{course_id}/plan", params=THROUGH
    ).json()["sessions"]
    return sessions


def test_a_reaction_and_a_new_weight_resize_the_booked_sessions(nurse: httpx.Client) -> None:
    center, _ = weekday_center(nurse)
    course = maintenance_course(nurse, center)
    s1, s2, s3 = sessions_of(nurse, course["patient_id"])
    before = {p["appointment"]["id"]: p for p in plan(nurse, course["id"])}
    assert before[s2["id"]]["dose_g"] == 70.0
    url = f"/api/v1/appointments/{s1['id']}"
    nurse.headers.update(at(datetime.fromisoformat(s1["start"]) + timedelta(minutes=5)))
    for step in ("check-in", "start"):
        assert nurse.post(f"{url}/{step}").status_code == 200
    done = nurse.post(
        f"{url}/complete",
        json={"weight_kg": 80, "reaction": "mild", "tolerated_rate_mg_per_kg_min": 3},
    )
    assert done.status_code == 200, done.text
    changes = done.json()["course_changes"]
    # The chairs have room: each session keeps its day, chair and start, and gets longer.
    assert [a["id"] for a in changes["resized"]] == [s2["id"], s3["id"]]
    assert changes["moved"] == [] and changes["problems"] == []
    assert [a["start"] for a in changes["resized"]] == [s2["start"], s3["start"]]
    after = {p["appointment"]["id"]: p for p in plan(nurse, course["id"])}
    for s in (s2, s3):
        assert after[s["id"]]["dose_g"] == 80.0  # the new weight
        # More drug at a lower ceiling takes longer, and the chair is booked for it.
        assert after[s["id"]]["chair_minutes"] > before[s["id"]]["chair_minutes"]
    booked = {a["id"]: a for a in sessions_of(nurse, course["patient_id"])}
    assert minutes(booked[s2["id"]]) == after[s2["id"]]["chair_minutes"]


def test_a_weight_change_on_the_patient_redoses_booked_sessions(nurse: httpx.Client) -> None:
    center, _ = weekday_center(nurse)
    course = maintenance_course(nurse, center)
    patient = nurse.get(f"/api/v1/patients/{course['patient_id']}")
    r = nurse.patch(
        f"/api/v1/patients/{course['patient_id']}",
        json={"weight_kg": 60},
        headers={"If-Match": patient.headers["ETag"]},
    )
    assert r.status_code == 200, r.text
    doses = [p["dose_g"] for p in plan(nurse, course["id"]) if p["appointment"]]
    assert doses == [60.0, 60.0, 60.0]
    booked = sessions_of(nurse, course["patient_id"])
    planned = [p["chair_minutes"] for p in plan(nurse, course["id"]) if p["appointment"]]
    assert [minutes(a) for a in booked] == planned


def test_cancelling_the_first_session_gives_the_next_the_first_dose_observation(
    nurse: httpx.Client,
) -> None:
    center, _ = weekday_center(nurse)
    course = maintenance_course(nurse, center)
    s1, s2, s3 = sessions_of(nurse, course["patient_id"])
    assert minutes(s1) > minutes(s2)  # the first dose is watched for longer
    r = nurse.post(f"/api/v1/appointments/{s1['id']}/cancel")
    assert r.status_code == 200
    changes = r.json()["course_changes"]
    assert [a["id"] for a in changes["moved"]] == [s2["id"], s3["id"]]
    now_first = changes["moved"][0]
    assert local_day(now_first["start"]) == MONDAY  # pulled to the course's start
    booked = {a["id"]: a for a in sessions_of(nurse, course["patient_id"])}
    assert minutes(booked[s2["id"]]) == minutes(s1)


def test_a_missed_induction_day_is_added_after_the_last_one(nurse: httpx.Client) -> None:
    center, _ = weekday_center(nurse)
    loading = {"total_dose_g_per_kg": 2, "days": 5, "skip_closures": True}
    course = order(nurse, center, induction=loading).json()
    booked = nurse.post(f"/api/v1/courses/{course['id']}/book", json=THROUGH).json()["booked"]
    induction, maintenance = booked[:5], booked[5:]
    friday = local_day(induction[-1]["start"])
    missed = at(datetime.fromisoformat(induction[2]["start"]) + timedelta(minutes=30))
    r = nurse.post(f"/api/v1/appointments/{induction[2]['id']}/no-show", headers=missed)
    assert r.status_code == 200, r.text
    changes = r.json()["course_changes"]
    assert len(changes["added"]) == 1 and changes["problems"] == []
    added = changes["added"][0]
    # The center shuts at weekends and this regimen may skip closed days: the next Monday.
    assert local_day(added["start"]) == friday + timedelta(days=3)
    assert added["chair_id"] == induction[-1]["chair_id"]
    # Maintenance now follows the added day: each session inside its window again.
    previous = local_day(added["start"])
    current = {a["id"]: local_day(a["start"]) for a in sessions_of(nurse, course["patient_id"])}
    for a in maintenance:
        day = current[a["id"]]
        assert 21 <= (day - previous).days <= 28
        previous = day


def test_a_missed_induction_day_that_cannot_follow_on_is_reported(nurse: httpx.Client) -> None:
    center, _ = weekday_center(nurse)
    course = order(nurse, center).json()
    booked = nurse.post(
        f"/api/v1/courses/{course['id']}/book", json={"through": MONDAY.isoformat()}
    ).json()["booked"]
    # The regimen does not allow a gap, and Friday's successor is a Saturday.
    r = nurse.post(f"/api/v1/appointments/{booked[1]['id']}/cancel")
    problems = r.json()["course_changes"]["problems"]
    assert r.status_code == 200 and r.json()["course_changes"]["added"] == []
    assert problems[0]["phase"] == "induction" and "closed" in problems[0]["unbookable_reason"]
    steps = [p for p in plan(nurse, course["id"]) if p["unbookable_reason"]]
    assert steps and "closed" in steps[0]["unbookable_reason"]
    # Maintenance is still booked, and the booking run still says the day is missing.
    again = nurse.post(f"/api/v1/courses/{course['id']}/book", json=THROUGH).json()
    assert again["booked"] and all(
        (local_day(a["start"]) - local_day(booked[-1]["start"])).days >= 21 for a in again["booked"]
    )
    assert again["unbookable"]["phase"] == "induction"


def test_a_session_that_cannot_fit_stays_reported_and_the_rest_follow_it(
    nurse: httpx.Client,
) -> None:
    center, chairs = weekday_center(nurse, chairs=1)
    course = maintenance_course(nurse, center, cycles=4)
    _s1, s2, s3, s4 = sessions_of(nurse, course["patient_id"])
    # The only chair is out of service for the whole window of session 3 after session 1.
    nurse.post(
        f"/api/v1/chairs/{chairs[0]}/blocks",
        json={
            "start": f"{(MONDAY + timedelta(days=20)).isoformat()}T00:00:00-05:00",
            "end": f"{(MONDAY + timedelta(days=43)).isoformat()}T00:00:00-05:00",
            "reason": "recall",
        },
    )
    r = nurse.post(f"/api/v1/appointments/{s2['id']}/cancel")
    assert r.status_code == 200
    problems = r.json()["course_changes"]["problems"]
    assert [p["sequence"] for p in problems] == [3]
    reason = problems[0]["unbookable_reason"]
    assert "kept outside its window" in reason and "no chair free" in reason
    # Session 3 keeps the patient's place, and session 4 still follows it.
    left = {a["id"]: a for a in sessions_of(nurse, course["patient_id"])}
    assert set(left) == {_s1["id"], s3["id"], s4["id"]}
    assert left[s3["id"]]["start"] == s3["start"] and left[s4["id"]]["start"] == s4["start"]
    shown = [p for p in plan(nurse, course["id"]) if p["unbookable_reason"]]
    assert shown and "kept outside its window" in shown[0]["unbookable_reason"]


def test_cancelling_the_last_loading_day_books_a_new_one_after_it(nurse: httpx.Client) -> None:
    center, _ = weekday_center(nurse)
    loading = {"total_dose_g_per_kg": 2, "days": 5, "skip_closures": True}
    course = order(nurse, center, induction=loading).json()
    booked = nurse.post(f"/api/v1/courses/{course['id']}/book", json=THROUGH).json()["booked"]
    friday = booked[4]
    r = nurse.post(f"/api/v1/appointments/{friday['id']}/cancel")
    added = r.json()["course_changes"]["added"]
    assert [local_day(a["start"]) for a in added] == [local_day(friday["start"]) + timedelta(3)]
    assert added[0]["phase"] == "induction" and added[0]["sequence"] == 6
    # Another booking run adds nothing: every session exists once.
    again = nurse.post(f"/api/v1/courses/{course['id']}/book", json=THROUGH).json()
    assert again["booked"] == [] and again["problems"] == []
    days = [local_day(a["start"]) for a in sessions_of(nurse, course["patient_id"])]
    assert len(days) == len(set(days))


def test_a_booking_run_after_a_lost_day_books_nothing_twice(nurse: httpx.Client) -> None:
    center, _ = weekday_center(nurse)
    course = order(nurse, center).json()  # loading days may not skip the weekend
    booked = nurse.post(f"/api/v1/courses/{course['id']}/book", json=THROUGH).json()["booked"]
    r = nurse.post(f"/api/v1/appointments/{booked[2]['id']}/cancel")
    assert r.json()["course_changes"]["problems"][0]["phase"] == "induction"
    again = nurse.post(f"/api/v1/courses/{course['id']}/book", json=THROUGH).json()
    assert again["booked"] == []
    assert [p["phase"] for p in again["problems"]] == ["induction"]
    days = [local_day(a["start"]) for a in sessions_of(nurse, course["patient_id"])]
    assert len(days) == len(set(days)) == len(booked) - 1


def test_unbookable_reasons_say_whether_chairs_or_nurses_ran_out(nurse: httpx.Client) -> None:
    # One nurse caring for one patient at a time, three chairs: nurses run out first.
    center, chairs = weekday_center(nurse, chairs=3, nurses=1, patients_per_nurse=1)
    r = nurse.post(
        "/api/v1/appointments",
        json={
            "patient_id": make_patient(nurse)["id"],
            "chair_id": chairs[0],
            "start": f"{MONDAY.isoformat()}T07:00:00-05:00",
            "end": f"{MONDAY.isoformat()}T19:00:00-05:00",
        },
    )
    assert r.status_code == 201
    course = order(nurse, center, induction={"total_dose_g_per_kg": 2, "days": 1}).json()
    result = nurse.post(
        f"/api/v1/courses/{course['id']}/book", json={"through": MONDAY.isoformat()}
    ).json()
    assert "no nurse capacity" in result["unbookable"]["unbookable_reason"]


def test_racing_bookings_and_changes_of_courses_at_one_center(
    server: Server, nurse: httpx.Client
) -> None:
    """Several courses booked at once, one of them twice, while a session of another is
    cancelled: every request is answered (no lock cycle), nothing is booked twice."""
    center, _ = weekday_center(nurse, chairs=4)
    first = maintenance_course(nurse, center)
    s1, s2, _ = sessions_of(nurse, first["patient_id"])
    others = [
        order(nurse, center, diagnosis_code="G61.82", induction=None, start_date=d).json()
        for d in (MONDAY.isoformat(), (MONDAY + timedelta(days=1)).isoformat())
    ]

    async def race() -> list[httpx.Response]:
        headers = {"Authorization": f"Bearer {server.tokens['nurse']}"}
        async with httpx.AsyncClient(base_url=server.base_url, headers=headers, timeout=60) as c:
            calls = [c.post(f"/api/v1/courses/{o['id']}/book", json=THROUGH) for o in others]
            calls.append(c.post(f"/api/v1/courses/{others[0]['id']}/book", json=THROUGH))
            calls.append(c.post(f"/api/v1/appointments/{s1['id']}/cancel"))
            calls.append(
                c.patch(
                    f"/api/v1/appointments/{s2['id']}",
                    json={
                        "start": f"{(MONDAY + timedelta(days=31)).isoformat()}T10:00:00-05:00",
                        # Once the cancellation lands, session 2 is the course's first and
                        # day 31 lies past its window: the nurse means it either way.
                        "override_reason": "patient asked for this date",
                    },
                    headers={"If-Match": f'"{s2["version"]}"'},
                )
            )
            return list(await asyncio.gather(*calls))

    answers = asyncio.run(race())
    # The move may find session 2 already re-placed by the cancellation's cascade: 412.
    codes = [r.status_code for r in answers]
    assert codes[:4] == [200] * 4 and codes[4] in (200, 412), [r.text for r in answers]
    for o in others:
        sessions = sessions_of(nurse, o["patient_id"])
        keys = [(a["start"], a["chair_id"]) for a in sessions]
        assert len(set(keys)) == len(sessions) >= 3
