"""Treatment courses through the API: ordering, booking induction and maintenance, the plan."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from tests.support.factories import (
    MONDAY,
    gamunex,
    local_day,
    maintenance_course,
    make_center,
    make_chair,
    make_patient,
    order,
    order_maintenance,
    sessions_of,
    weekday_center,
)
from tests.support.servers import Server, at


def test_a_cidp_order_takes_the_preset_regimen(nurse: httpx.Client) -> None:
    center, _ = weekday_center(nurse)
    r = order(nurse, center["id"])
    assert r.status_code == 201, r.text
    course = r.json()
    assert course["induction"] == {"total_dose_g_per_kg": 2.0, "days": 5, "skip_closures": False}
    assert course["maintenance"]["interval_days"] == 21 and course["status"] == "active"
    assert nurse.get(r.headers["Location"]).json() == course
    # An explicit null means no such phase.
    mmn = order(nurse, center["id"], diagnosis_code="G61.82", induction=None).json()
    assert mmn["induction"] is None and mmn["maintenance"]["window_max_days"] == 42


def test_bad_orders_are_refused_and_not_stored(nurse: httpx.Client) -> None:
    center, _ = weekday_center(nurse)
    maintenance = {
        "dose_g_per_kg": 1,
        "interval_days": 28,
        "window_min_days": 21,
        "window_max_days": 42,
        "cycles": 6,
    }
    bad: list[dict[str, Any]] = [
        {"induction": {"total_dose_g_per_kg": 2, "days": 6}},
        {"maintenance": {**maintenance, "window_min_days": 30, "window_max_days": 25}},
        {"maintenance": {**maintenance, "dose_g_per_kg": 3.5}},
        {"maintenance": {**maintenance, "dose_g_per_kg": 0.05}},
        {"maintenance": {**maintenance, "cycles": None}},
        {"induction": None, "maintenance": None},
        {"diagnosis_code": "CIDP"},
        {"preferred_start_time": "9am"},
    ]
    for overrides in bad:
        r = order(nurse, center["id"], **overrides)
        assert r.status_code == 422, (overrides, r.text)
        assert r.headers["content-type"] == "application/problem+json"
    high = order(
        nurse,
        center["id"],
        maintenance={**maintenance, "dose_g_per_kg": 3.5},
        dose_override_reason="neurologist ordered 3.5 g/kg after relapse",
    )
    assert high.status_code == 201
    listed = nurse.get("/api/v1/courses", params={"limit": 500}).json()["items"]
    assert sum(1 for c in listed if c["center_id"] == center["id"]) == 1


def test_induction_then_maintenance_are_booked_inside_their_windows(nurse: httpx.Client) -> None:
    center, _ = weekday_center(nurse)
    course = order(nurse, center["id"]).json()
    through = (MONDAY + timedelta(weeks=10)).isoformat()
    r = nurse.post(f"/api/v1/courses/{course['id']}/book", json={"through": through})
    assert r.status_code == 200, r.text
    booked = r.json()["booked"]
    assert r.json()["unbookable"] is None
    induction, maintenance = booked[:5], booked[5:]
    days = [local_day(a["start"]) for a in induction]
    assert days == [MONDAY + timedelta(days=i) for i in range(5)]
    assert len({a["chair_id"] for a in induction}) == 1  # the same chair all week
    assert all(a["start"][11:16] == "09:00" for a in induction)
    previous = days[-1]
    assert maintenance, "maintenance sessions within ten weeks"
    for a in maintenance:
        day = local_day(a["start"])
        assert 21 <= (day - previous).days <= 28
        previous = day
    # Booking again books nothing twice.
    again = nurse.post(f"/api/v1/courses/{course['id']}/book", json={"through": through}).json()
    assert again["booked"] == []

    plan = nurse.get(f"/api/v1/courses/{course['id']}/plan", params={"through": through}).json()
    # The plan lists the whole course in order, each booked session where it was booked.
    sessions = plan["sessions"]
    assert [s["appointment"]["id"] for s in sessions if s["appointment"]] == [
        a["id"] for a in booked
    ]
    first = sessions[0]
    assert first["phase"] == "induction" and first["dose_g"] == 28.0  # 0.4 g/kg x 70 kg
    # Premedication, infusion and observation (the first dose observed longer); the chair's
    # 15-minute turnover follows the visit and is not part of it.
    assert first["chair_minutes"] == 195
    assert sessions[1]["chair_minutes"] == 165
    booked_first = nurse.get(f"/api/v1/appointments/{first['appointment']['id']}").json()
    assert booked_first["duration_minutes"] == 195


def test_an_induction_that_cannot_finish_is_not_started(nurse: httpx.Client) -> None:
    center, chairs = weekday_center(nurse, chairs=1)
    # The only chair is taken all day on Wednesday.
    other = make_patient(nurse)["id"]
    wed = (MONDAY + timedelta(days=2)).isoformat()
    r = nurse.post(
        "/api/v1/appointments",
        json={
            "patient_id": other,
            "chair_id": chairs[0],
            "start": f"{wed}T07:00:00-05:00",
            "end": f"{wed}T19:00:00-05:00",
        },
    )
    assert r.status_code == 201
    course = order(nurse, center["id"]).json()
    result = nurse.post(
        f"/api/v1/courses/{course['id']}/book", json={"through": MONDAY.isoformat()}
    ).json()
    assert result["booked"] == []
    assert result["unbookable"]["phase"] == "induction"
    assert "nothing booked" in result["unbookable"]["unbookable_reason"]
    listed = nurse.get("/api/v1/appointments", params={"patient_id": course["patient_id"]}).json()
    assert listed["items"] == []
    plan = nurse.get(f"/api/v1/courses/{course['id']}/plan", params={"through": MONDAY.isoformat()})
    assert "nothing booked" in plan.json()["sessions"][0]["unbookable_reason"]


def test_closures_inside_an_induction(nurse: httpx.Client) -> None:
    center, _ = weekday_center(nurse)
    nurse.post(
        f"/api/v1/centers/{center['id']}/closures",
        json={"date": (MONDAY + timedelta(days=2)).isoformat(), "reason": "inspection"},
    )
    strict = order(nurse, center["id"]).json()
    r = nurse.post(f"/api/v1/courses/{strict['id']}/book", json={"through": MONDAY.isoformat()})
    assert r.json()["booked"] == [] and "closed" in r.json()["unbookable"]["unbookable_reason"]
    lenient = order(
        nurse, center["id"], induction={"total_dose_g_per_kg": 2, "days": 5, "skip_closures": True}
    ).json()
    r = nurse.post(f"/api/v1/courses/{lenient['id']}/book", json={"through": MONDAY.isoformat()})
    days = [local_day(a["start"]) for a in r.json()["booked"]]
    assert len(days) == 5 and MONDAY + timedelta(days=2) not in days
    assert days[-1] == MONDAY + timedelta(days=7)  # Wednesday skipped, the weekend too


def test_holds_stop_booking(nurse: httpx.Client) -> None:
    center, _ = weekday_center(nurse)
    course = order(nurse, center["id"]).json()
    url = f"/api/v1/courses/{course['id']}"
    assert nurse.post(f"{url}/hold", json={"note": "infection"}).json()["status"] == "on_hold"
    assert nurse.post(f"{url}/book", json={"through": MONDAY.isoformat()}).status_code == 409
    assert nurse.post(f"{url}/hold").status_code == 409
    assert nurse.post(f"{url}/resume").json()["status"] == "active"
    assert nurse.post(f"{url}/discontinue").json()["status"] == "discontinued"
    assert nurse.post(f"{url}/resume").status_code == 409


def test_induction_racing_a_manual_booking_is_all_or_nothing(
    server: Server, nurse: httpx.Client
) -> None:
    center, chairs = weekday_center(nurse, chairs=1)
    course = order(nurse, center["id"]).json()
    thursday = (MONDAY + timedelta(days=3)).isoformat()
    manual = {
        "patient_id": make_patient(nurse)["id"],
        "chair_id": chairs[0],
        "start": f"{thursday}T07:00:00-05:00",
        "end": f"{thursday}T19:00:00-05:00",
    }

    async def race() -> list[httpx.Response]:
        headers = {"Authorization": f"Bearer {server.tokens['nurse']}"}
        async with httpx.AsyncClient(base_url=server.base_url, headers=headers, timeout=60) as c:
            return list(
                await asyncio.gather(
                    c.post(
                        f"/api/v1/courses/{course['id']}/book", json={"through": MONDAY.isoformat()}
                    ),
                    c.post("/api/v1/appointments", json=manual),
                )
            )

    booked, manual_r = asyncio.run(race())
    assert booked.status_code == 200 and manual_r.status_code in (201, 409)
    sessions = nurse.get(
        "/api/v1/appointments", params={"patient_id": course["patient_id"]}
    ).json()["items"]
    assert len(sessions) in (0, 5)
    assert (len(sessions) == 5) == (manual_r.status_code == 409)


def test_moving_a_session_moves_the_later_ones_into_their_windows(nurse: httpx.Client) -> None:
    center, _ = weekday_center(nurse)
    course = maintenance_course(nurse, center["id"])
    s1, s2, s3 = sessions_of(nurse, course["patient_id"])
    assert [local_day(s["start"]) for s in (s1, s2, s3)] == [
        MONDAY,
        MONDAY + timedelta(days=28),
        MONDAY + timedelta(days=56),
    ]
    # Session 2 moves 11 days later, to a Friday (still inside its 21-42 day window).
    later = (MONDAY + timedelta(days=39)).isoformat()
    r = nurse.patch(
        f"/api/v1/appointments/{s2['id']}",
        json={"start": f"{later}T09:00:00-05:00"},
        headers={"If-Match": f'"{s2["version"]}"'},
    )
    assert r.status_code == 200, r.text
    after = {a["id"]: local_day(a["start"]) for a in sessions_of(nurse, course["patient_id"])}
    gap = (after[s3["id"]] - after[s2["id"]]).days
    assert 21 <= gap <= 42, after  # session 3 followed session 2
    assert after[s3["id"]] != MONDAY + timedelta(days=56)


def test_a_session_moved_to_another_centers_chair_goes_there(nurse: httpx.Client) -> None:
    """The move plans at both centers (core.locks: a day and then the patient's cover lock
    only where the transaction plans), so it is neither refused nor a deadlock waiting."""
    center, _ = weekday_center(nurse)
    course = maintenance_course(nurse, center["id"])
    s1, _, _ = sessions_of(nurse, course["patient_id"])
    other = make_center(nurse, days=range(5))
    chair = make_chair(nurse, other["id"])
    r = nurse.patch(
        f"/api/v1/appointments/{s1['id']}",
        json={"chair_id": chair["id"]},
        headers={"If-Match": f'"{s1["version"]}"'},
    )
    assert r.status_code == 200, r.text
    moved = nurse.get(f"/api/v1/appointments/{s1['id']}").json()
    assert (moved["center_id"], moved["chair_id"]) == (other["id"], chair["id"])


def test_a_no_show_pulls_the_next_session_into_the_window_after_the_last_one(
    nurse: httpx.Client,
) -> None:
    center, _ = weekday_center(nurse)
    course = maintenance_course(nurse, center["id"])
    s1, s2, s3 = sessions_of(nurse, course["patient_id"])
    missed = at(datetime.fromisoformat(s2["start"]) + timedelta(minutes=30))
    assert nurse.post(f"/api/v1/appointments/{s2['id']}/no-show", headers=missed).status_code == 200
    remaining = {a["id"]: local_day(a["start"]) for a in sessions_of(nurse, course["patient_id"])}
    assert set(remaining) == {s1["id"], s3["id"]}
    gap = (remaining[s3["id"]] - remaining[s1["id"]]).days
    assert 21 <= gap <= 42


def test_completing_a_session_records_it_and_shapes_the_next(nurse: httpx.Client) -> None:
    center, _ = weekday_center(nurse)
    course = order_maintenance(nurse, center["id"])
    first = nurse.post(
        f"/api/v1/courses/{course['id']}/book", json={"through": MONDAY.isoformat()}
    ).json()["booked"][0]
    through = {"through": (MONDAY + timedelta(weeks=12)).isoformat()}
    before = nurse.get(f"/api/v1/courses/{course['id']}/plan", params=through).json()["sessions"]
    projected = before[1]
    assert projected["appointment"] is None and projected["dose_g"] == 70.0

    url = f"/api/v1/appointments/{first['id']}"
    chairside = at(datetime.fromisoformat(first["start"]) + timedelta(minutes=5))
    nurse.headers.update(chairside)  # every step below happens at the chair that morning
    assert nurse.post(f"{url}/check-in").status_code == 200
    assert nurse.post(f"{url}/start").status_code == 200
    bad = nurse.post(f"{url}/complete", json={"reaction": "moderate"})  # no tolerated rate
    assert bad.status_code == 422
    assert nurse.get(url).json()["status"] == "in_progress"
    done = nurse.post(
        f"{url}/complete",
        json={
            "weight_kg": 80,
            "dose_given_g": 70,
            "reaction": "moderate",
            "tolerated_rate_mg_per_kg_min": 4,
            "incat": 3,
            "mrc_sum": 52,
            "grip_strength_kg": 21.5,
        },
    )
    assert done.status_code == 200 and done.json()["status"] == "completed"

    after = nurse.get(f"/api/v1/courses/{course['id']}/plan", params=through).json()["sessions"]
    given, nxt = after[0], after[1]  # the plan keeps the session given, with its record
    assert given["appointment"]["status"] == "completed" and given["record"]["weight_kg"] == 80
    assert nxt["dose_g"] == 80.0  # the measured weight sets the next dose
    assert nxt["chair_minutes"] > projected["chair_minutes"]  # capped at 4 mg/kg/min now
    outcomes = nurse.get(f"/api/v1/courses/{course['id']}/outcomes").json()
    assert (
        len(outcomes) == 1 and outcomes[0]["incat"] == 3 and outcomes[0]["reaction"] == "moderate"
    )
    assert nurse.get(f"/api/v1/patients/{course['patient_id']}").json()["weight_kg"] == 80
    assert nurse.post(f"{url}/cancel", json={"reaction": "none"}).status_code == 422


def test_booking_without_a_body_books_through_the_centers_horizon(nurse: httpx.Client) -> None:
    """As the nightly run would: through today plus the center's `booking_horizon_days`."""
    center, _ = weekday_center(nurse)
    today = datetime.now(ZoneInfo(center["timezone"])).date()
    horizon = (MONDAY + timedelta(days=30) - today).days  # session 2 (day 28) in, 3 out
    patched = nurse.patch(
        f"/api/v1/centers/{center['id']}",
        json={"booking_horizon_days": horizon},
        headers={"If-Match": f'"{center["version"]}"'},
    )
    assert patched.status_code == 200, patched.text
    bodies: list[dict[str, Any] | None] = [None, {}]
    for body in bodies:
        course = order_maintenance(nurse, center["id"])
        url = f"/api/v1/courses/{course['id']}/book"
        r = nurse.post(url) if body is None else nurse.post(url, json=body)
        assert r.status_code == 200, r.text
        days = sorted(local_day(a["start"]) for a in r.json()["booked"])
        assert days == [MONDAY, MONDAY + timedelta(days=28)], days


def test_nothing_is_booked_in_the_past_or_too_far_ahead(nurse: httpx.Client) -> None:
    center, _ = weekday_center(nurse)
    today = date.today()
    course = order(
        nurse,
        center["id"],
        diagnosis_code="G61.82",
        induction=None,
        start_date=(today - timedelta(days=400)).isoformat(),
        maintenance={
            "dose_g_per_kg": 1,
            "interval_days": 28,
            "window_min_days": 21,
            "window_max_days": 42,
            "end_date": (today + timedelta(days=200)).isoformat(),
        },
    ).json()
    url = f"/api/v1/courses/{course['id']}/book"
    too_far = nurse.post(url, json={"through": (today + timedelta(days=400)).isoformat()})
    assert too_far.status_code == 422
    r = nurse.post(url, json={"through": (today + timedelta(days=60)).isoformat()})
    assert r.status_code == 200
    assert all(local_day(a["start"]) >= today for a in r.json()["booked"])


def test_discontinuing_a_course_frees_its_chairs(nurse: httpx.Client) -> None:
    center, _ = weekday_center(nurse)
    course = maintenance_course(nurse, center["id"])
    assert len(sessions_of(nurse, course["patient_id"])) == 3
    assert nurse.post(f"/api/v1/courses/{course['id']}/discontinue").status_code == 200
    assert sessions_of(nurse, course["patient_id"]) == []


def test_an_order_needs_the_measurements_its_dose_is_taken_from(nurse: httpx.Client) -> None:
    center, _ = weekday_center(nurse)
    unweighed = make_patient(nurse, weight_kg=None, height_cm=None)["id"]
    r = order(nurse, center["id"], patient_id=unweighed)
    assert r.status_code == 422 and "weight" in r.json()["detail"]
    weighed = make_patient(nurse, weight_kg=120, height_cm=None)["id"]
    r = order(nurse, center["id"], patient_id=weighed, weight_basis="adjusted")
    assert r.status_code == 422 and "height" in r.json()["detail"]


def test_orders_and_bookings_take_an_idempotency_key(nurse: httpx.Client) -> None:
    center, _ = weekday_center(nurse)
    patient = make_patient(nurse, weight_kg=70, height_cm=165, sex="female")["id"]
    key = {"Idempotency-Key": f"order-{patient}"}
    body = {
        "patient_id": patient,
        "center_id": center["id"],
        "product_id": gamunex(nurse),
        "diagnosis_code": "G61.81",
        "start_date": MONDAY.isoformat(),
    }
    first = nurse.post("/api/v1/courses", json=body, headers=key)
    again = nurse.post("/api/v1/courses", json=body, headers=key)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json() and again.headers["ETag"] == '"1"'
    other = nurse.post("/api/v1/courses", json={**body, "diagnosis_code": "G61.0"}, headers=key)
    assert other.status_code == 422
    mine = nurse.get("/api/v1/courses", params={"patient_id": patient}).json()["items"]
    assert len(mine) == 1

    url = f"/api/v1/courses/{first.json()['id']}/book"
    book_key = {"Idempotency-Key": "book-1"}
    booked = nurse.post(url, json={"through": MONDAY.isoformat()}, headers=book_key)
    replay = nurse.post(url, json={"through": MONDAY.isoformat()}, headers=book_key)
    assert booked.status_code == replay.status_code == 200
    assert replay.json() == booked.json() and len(booked.json()["booked"]) == 5


def test_the_day_and_week_boards_show_staff_who_and_what(
    nurse: httpx.Client, admin: httpx.Client
) -> None:
    """For staff at the chair: the patient's name and MRN, and a course session's product,
    dose, phase and number; a week is seven such days. Both are patient reads on the trail."""
    center, _ = weekday_center(nurse)
    course = maintenance_course(nurse, center["id"])
    patient = nurse.get(f"/api/v1/patients/{course['patient_id']}").json()
    first = sessions_of(nurse, course["patient_id"])[0]
    product = nurse.get(f"/api/v1/products/{course['product_id']}").json()
    board = nurse.get(
        f"/api/v1/centers/{center['id']}/day", params={"date": MONDAY.isoformat()}
    ).json()
    (seen,) = [a for c in board["chairs"] for a in c["appointments"] if a["id"] == first["id"]]
    assert seen["patient_name"] == f"{patient['family_name']}, {patient['given_name']}"
    assert seen["mrn"] == patient["mrn"] and seen["product"] == product["name"]
    assert (seen["phase"], seen["sequence"], seen["dose_g"]) == ("maintenance", 1, 70.0)

    week = nurse.get(
        f"/api/v1/centers/{center['id']}/week",
        params={"start": (MONDAY - timedelta(days=2)).isoformat()},
    )
    assert week.status_code == 200, week.text
    days = week.json()["days"]
    assert [d["date"] for d in days] == [
        (MONDAY + timedelta(days=n)).isoformat() for n in range(-2, 5)
    ]
    assert days[0]["opens"] is None  # a Saturday: the center does not open
    monday = next(d for d in days if d["date"] == MONDAY.isoformat())
    assert first["id"] in {a["id"] for c in monday["chairs"] for a in c["appointments"]}

    events = admin.get("/api/v1/audit-events", params={"limit": 20}).json()["items"]
    looks = [e for e in events if e["request_id"] == week.headers["x-request-id"]]
    assert [(e["action"], e["resource_type"], e["outcome"]) for e in looks] == [
        ("search", "patient", "success")
    ]
