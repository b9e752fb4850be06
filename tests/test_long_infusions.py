"""Long infusions: a dose that would hold a chair longer than a session may last is split over
more days, and what still cannot fit says how long it is; an induction keeps its time of day."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core import settle
from insurance.models import Alert
from scheduling.catalog.titration import Titration, chair_time, infusion_plan
from scheduling.courses import booking as course_booking
from scheduling.courses.splits import equal_parts, split_dose
from tests.support import records
from tests.support.factories import (
    MONDAY,
    book,
    local_day,
    make_center,
    make_chair,
    make_patient,
    order,
    sessions_of,
    weekday_center,
)
from tests.support.servers import at
from tests.support.transactions import in_transaction

THROUGH = (MONDAY + timedelta(weeks=4)).isoformat()

# --- the split rule ------------------------------------------------------------------------

totals = st.decimals(Decimal("0.5"), Decimal("400"), places=2)  # grams
titrations = st.builds(
    lambda initial, extra, step, minutes: Titration(initial, step, minutes, initial + extra),
    st.floats(0.05, 4),
    st.floats(0, 8),
    st.floats(0, 2),
    st.integers(10, 30),
)


def session_minutes(
    titration: Titration, weight_kg: float, overhead: int, first_extra: int
) -> Callable[[int, Decimal], int]:
    """A real session's chair time: the titrated infusion, premedication and observation, the
    first day watched for longer."""

    def minutes(day: int, dose: Decimal) -> int:
        plan = infusion_plan(float(dose) * 1000 / weight_kg, titration, titration.max_rate)
        return chair_time(
            plan.minutes,
            premed=overhead,
            observation=overhead,
            first_dose_extra=first_extra,
            first_dose=day == 0,
            turnover=0,
        ).total

    return minutes


@settings(max_examples=300, deadline=None)  # a loaded CI machine is slow, not wrong
@given(totals, st.integers(1, 14))
def test_equal_parts_add_up_to_the_dose_and_differ_by_less_than_a_gram(
    total: Decimal, days: int
) -> None:
    if total < days * Decimal("0.01"):
        with pytest.raises(ValueError):
            equal_parts(total, days)
        return
    parts = equal_parts(total, days)
    assert len(parts) == days and sum(parts) == total
    assert all(p > 0 and p == p.quantize(Decimal("0.01")) for p in parts)
    assert len(set(parts[1:])) <= 1  # the later days alike
    assert Decimal(0) <= parts[0] - parts[-1] < days * Decimal("0.01")


@settings(max_examples=300, deadline=None)  # a loaded CI machine is slow, not wrong
@given(
    totals,
    st.integers(1, 5),
    st.integers(6, 14),
    st.integers(60, 1440),
    titrations,
    st.floats(3, 150),
    st.integers(0, 60),
    st.integers(0, 60),
)
def test_a_split_is_the_fewest_days_over_which_every_session_fits(
    total: Decimal,
    ordered: int,
    most: int,
    limit: int,
    titration: Titration,
    weight: float,
    overhead: int,
    first_extra: int,
) -> None:
    minutes = session_minutes(titration, weight, overhead, first_extra)
    split = split_dose(total, ordered, most, limit, minutes)
    assert split.minutes_as_ordered == max(
        minutes(d, p) for d, p in enumerate(equal_parts(total, ordered))
    )
    assert sum(split.parts) == total.quantize(Decimal("0.01"))
    assert list(split.minutes) == [minutes(d, p) for d, p in enumerate(split.parts)]
    if split.days is None:  # not even the most days make every session fit
        assert split.longest > limit and len(split.parts) == split.most_days
        return
    assert len(split.parts) == split.days and ordered <= split.days <= most
    assert split.longest <= limit  # each part fits
    for fewer in range(ordered, split.days):  # and no fewer days would do
        parts = equal_parts(total, fewer)
        assert max(minutes(d, p) for d, p in enumerate(parts)) > limit
    assert split.is_split == (split.days > ordered)


def test_an_order_that_fits_is_not_split() -> None:
    split = split_dose(Decimal("140"), 5, 14, 480, lambda day, dose: 200)
    assert (split.days, split.is_split, split.parts) == (5, False, (Decimal("28.00"),) * 5)
    with pytest.raises(ValueError):
        split_dose(Decimal("140"), 6, 5, 480, lambda day, dose: 200)


# --- booking ---------------------------------------------------------------------------------


def privigen(api: httpx.Client) -> str:
    items = api.get("/api/v1/products", params={"limit": 500}).json()["items"]
    product_id: str = next(p["id"] for p in items if p["hcpcs_code"] == "J1459")
    return product_id


def renal_induction(api: httpx.Client, center_id: str, **overrides: Any) -> dict[str, Any]:
    """GBS loading, 2 g/kg over 5 days, for a renal-risk patient: Privigen at its minimum
    practicable rate (0.5 mg/kg/min) takes 800 minutes a day as ordered."""
    r = order(
        api,
        center_id,
        product_id=privigen(api),
        diagnosis_code="G61.0",
        induction={"total_dose_g_per_kg": 2, "days": 5},
        maintenance=None,
        renal_risk=True,
        preferred_weekdays=[],
        **overrides,
    )
    assert r.status_code == 201, r.text
    course: dict[str, Any] = r.json()
    return course


def plan_of(api: httpx.Client, course_id: str) -> dict[str, Any]:
    r = api.get(f"/api/v1/courses/{course_id}/plan", params={"through": THROUGH})
    assert r.status_code == 200, r.text
    plan: dict[str, Any] = r.json()
    return plan


def test_a_renal_risk_induction_is_split_over_more_days_and_booked(nurse: httpx.Client) -> None:
    center = make_center(nurse)  # every day, 07:00-19:00; sessions of at most 480 min
    make_chair(nurse, center["id"])
    course = renal_induction(nurse, center["id"])

    plan = plan_of(nurse, course["id"])
    sessions = plan["sessions"]
    # 2000 mg/kg at 0.5 mg/kg/min: 10 days would still need 495 min on the first (400 min of
    # infusion, premedication, observation and the first-dose observation); 11 days fit.
    assert [s["sequence"] for s in sessions] == list(range(1, 12))
    assert all(s["chair_minutes"] <= 480 for s in sessions)
    assert sum(s["dose_g"] for s in sessions) == 140.0  # 2 g/kg x 70 kg, as ordered
    [split] = plan["splits"]
    assert split["phase"] == "induction"
    assert (split["ordered_days"], split["days"], split["minutes_as_ordered"]) == (5, 11, 900)
    assert split["detail"].startswith("split over 11 days") and "480 min" in split["detail"]
    assert nurse.get(f"/api/v1/courses/{course['id']}").json()["induction"]["days"] == 5

    r = nurse.post(f"/api/v1/courses/{course['id']}/book", json={"through": THROUGH})
    assert r.status_code == 200, r.text
    booked = r.json()["booked"]
    assert r.json()["unbookable"] is None
    days = [local_day(a["start"]) for a in booked]
    assert days == [MONDAY + timedelta(days=i) for i in range(11)]
    assert [a["duration_minutes"] for a in booked] == [s["chair_minutes"] for s in sessions]
    assert [a["dose_g"] for a in booked] == [s["dose_g"] for s in sessions]
    # The plan and the booking agree, and keep agreeing once it is booked.
    after = plan_of(nurse, course["id"])
    assert [s["appointment"]["id"] for s in after["sessions"]] == [a["id"] for a in booked]
    assert after["splits"] == plan["splits"]


def test_a_split_induction_is_not_split_again_once_a_day_is_given(nurse: httpx.Client) -> None:
    center = make_center(nurse)
    make_chair(nurse, center["id"])
    course = renal_induction(nurse, center["id"])
    booked = nurse.post(f"/api/v1/courses/{course['id']}/book", json={"through": THROUGH})
    days = booked.json()["booked"]
    assert len(days) == 11
    first = days[0]
    start = datetime.fromisoformat(first["start"])
    url = f"/api/v1/appointments/{first['id']}"
    for step, minutes in (("check-in", -30), ("start", 5)):
        r = nurse.post(f"{url}/{step}", headers=at(start + timedelta(minutes=minutes)))
        assert r.status_code == 200, r.text
    # A reaction slows the rest: at 0.4 mg/kg/min no day fits 480 min any more. Re-splitting
    # now would give the remaining days a different share and the total would no longer be
    # the order's, so the days stay as booked and the longer sessions are reported.
    done = nurse.post(
        f"{url}/complete",
        json={
            "reactions": [{"kind": "flushing", "grade": 2, "action": "slowed"}],
            "tolerated_rate_mg_per_kg_min": 0.4,
        },
        headers=at(start + timedelta(minutes=470)),
    )
    assert done.status_code == 200, done.text
    plan = plan_of(nurse, course["id"])
    induction = [s for s in plan["sessions"] if s["phase"] == "induction"]
    assert [s["sequence"] for s in induction] == list(range(1, 12))
    assert [s["appointment"]["id"] for s in induction] == [a["id"] for a in days]
    assert plan["splits"][0]["days"] == 11 and plan["splits"][0]["session_minutes"] > 480
    assert sum(s["dose_g"] for s in induction) == 140.0


def test_the_centers_longest_session_is_a_setting_the_split_follows(
    nurse: httpx.Client,
) -> None:
    center = make_center(nurse, max_session_minutes=600, checkin_opens_minutes=60)
    assert (center["max_session_minutes"], center["checkin_opens_minutes"]) == (600, 60)
    assert make_center(nurse)["max_session_minutes"] == 480  # the default
    make_chair(nurse, center["id"])
    course = renal_induction(nurse, center["id"])
    # 600 min a session: 250 mg/kg a day (500 min of infusion) fits, so 8 days.
    [split] = plan_of(nurse, course["id"])["splits"]
    assert (split["days"], split["max_session_minutes"]) == (8, 600)
    url = f"/api/v1/centers/{center['id']}"
    for bad in (
        {"max_session_minutes": 30},
        {"max_session_minutes": 1441},
        {"checkin_opens_minutes": -1},
        {"checkin_opens_minutes": 1441},
    ):
        r = nurse.patch(url, json=bad, headers={"If-Match": '"1"'})
        assert r.status_code == 422, (bad, r.text)
        assert r.headers["content-type"] == "application/problem+json"
    r = nurse.patch(url, json={"max_session_minutes": 480}, headers={"If-Match": '"1"'})
    assert r.status_code == 200 and r.json()["max_session_minutes"] == 480, r.text
    assert plan_of(nurse, course["id"])["splits"][0]["days"] == 11


def test_a_dose_that_cannot_fit_any_session_names_its_length(nurse: httpx.Client) -> None:
    # Open 07:00-12:00: a five-hour day is shorter than any split of this order can make.
    center = make_center(nurse, opens="07:00", closes="12:00")
    make_chair(nurse, center["id"])
    course = renal_induction(nurse, center["id"])
    r = nurse.post(f"/api/v1/courses/{course['id']}/book", json={"through": THROUGH})
    assert r.status_code == 200, r.text
    assert r.json()["booked"] == []
    reason = r.json()["unbookable"]["unbookable_reason"]
    assert "min" in reason and "300 min" in reason, reason  # the session, the longest opening
    # The nurses hear of it on their queue at booking time, not from the nightly run.
    alerts = nurse.get(
        "/api/v1/alerts", params={"queue": "nursing", "patient_id": course["patient_id"]}
    ).json()["items"]
    assert [(a["kind"], a["status"]) for a in alerts] == [("course_unbookable", "open")]
    assert "300 min" in alerts[0]["detail"]
    plan = plan_of(nurse, course["id"])
    assert "300 min" in plan["sessions"][0]["unbookable_reason"]


def test_a_stuck_course_is_flagged_at_booking_and_cleared_once_it_books(
    nurse: httpx.Client,
) -> None:
    center = make_center(nurse, days=range(5))
    chair = make_chair(nurse, center["id"])["id"]
    # The only chair is taken all day on the induction's third day.
    wed = (MONDAY + timedelta(days=2)).isoformat()
    blocker = book(nurse, make_patient(nurse)["id"], chair, f"{wed}T07:00:00-05:00", 720)
    assert blocker.status_code == 201, blocker.text
    course = order(nurse, center["id"], induction={"total_dose_g_per_kg": 2, "days": 5}).json()
    url = f"/api/v1/courses/{course['id']}/book"
    assert nurse.post(url, json={"through": MONDAY.isoformat()}).json()["booked"] == []

    def flags() -> list[str]:
        items = nurse.get(
            "/api/v1/alerts", params={"queue": "nursing", "patient_id": course["patient_id"]}
        ).json()["items"]
        return [a["status"] for a in items if a["kind"] == "course_unbookable"]

    assert flags() == ["open"]
    assert nurse.post(f"/api/v1/appointments/{blocker.json()['id']}/cancel").status_code == 200
    assert len(nurse.post(url, json={"through": MONDAY.isoformat()}).json()["booked"]) == 5
    assert flags() == ["resolved"]


def test_an_induction_keeps_its_preferred_time_where_another_chair_has_room(
    nurse: httpx.Client,
) -> None:
    center = make_center(nurse, days=range(5))
    first, other = (make_chair(nurse, center["id"])["id"] for _ in range(2))
    somebody = make_patient(nurse)["id"]

    def busy(chair: str, day: int, start: str, minutes: int) -> None:
        when = (MONDAY + timedelta(days=day)).isoformat()
        assert book(nurse, somebody, chair, f"{when}T{start}:00-05:00", minutes).status_code == 201

    busy(other, 0, "08:00", 240)  # Monday: only the first chair is free at 08:30
    busy(first, 1, "10:30", 240)  # Tuesday: the first chair is taken from 10:30
    busy(first, 2, "07:00", 420)  # Wednesday: the first chair is taken until 14:00
    course = order(
        nurse,
        center["id"],
        induction={"total_dose_g_per_kg": 2, "days": 5},
        maintenance=None,
        diagnosis_code="G61.0",
        preferred_weekdays=[],
        preferred_start_time="08:30",
    ).json()
    r = nurse.post(f"/api/v1/courses/{course['id']}/book", json={"through": MONDAY.isoformat()})
    assert r.status_code == 200, r.text
    booked = r.json()["booked"]
    # The other chair is free at 08:30 on Tuesday and Wednesday: the time the patient asked
    # for comes before staying in the same chair.
    assert [a["start"][11:16] for a in booked] == ["08:30"] * 5
    assert booked[0]["chair_id"] == first and booked[1]["chair_id"] == other
    # Where it can, the course then stays in the chair it used last.
    assert [a["chair_id"] for a in booked[1:]] == [other] * 4


def test_an_order_whose_doses_cannot_be_booked_is_flagged_for_the_nurses(
    migrated_url: str,
) -> None:
    """Gamunex-C for a renal-risk patient at its initial 2 mg/kg/min: 2 g/kg is 1000 min of
    infusion, too long for one session even split over the two days a maintenance dose may
    take."""

    async def body(session: AsyncSession) -> None:
        center = await records.a_center(session)
        patient = await records.a_patient(session)
        fits = await records.a_course(session, center, patient, MONDAY, induction=None)
        assert await course_booking.flag_if_too_long(session, fits) is None
        course = await records.a_course(
            session,
            center,
            patient,
            MONDAY,
            induction=None,
            renal_risk=True,
            maintenance={
                "dose_g_per_kg": 2,
                "interval_days": 28,
                "window_min_days": 21,
                "window_max_days": 42,
                "cycles": 3,
            },
        )
        stuck = await course_booking.flag_if_too_long(session, course)
        assert stuck is not None and "split over 2 days" in stuck.reason
        await settle.settle(session)  # as the unit of work does before it commits
        alerts = list(
            await session.scalars(select(Alert).where(Alert.course_id.in_([fits.id, course.id])))
        )
        assert [(a.course_id, a.kind, a.queue) for a in alerts] == [
            (course.id, "course_unbookable", "nursing")
        ]
        assert "600 min" in alerts[0].detail

    in_transaction(migrated_url, body)


def test_ordering_a_course_no_session_can_hold_flags_it_at_once(nurse: httpx.Client) -> None:
    """Through the API: the alert is on the nurses' queue when the order is placed, before
    any booking run."""
    center, _ = weekday_center(nurse)
    r = order(
        nurse,
        center["id"],
        diagnosis_code="G61.82",
        induction=None,
        renal_risk=True,
        dose_override_reason="high-dose maintenance, neurologist's order",
        maintenance={
            "dose_g_per_kg": 2,
            "interval_days": 28,
            "window_min_days": 21,
            "window_max_days": 42,
            "cycles": 3,
        },
    )
    assert r.status_code == 201, r.text
    flags = nurse.get(
        "/api/v1/alerts", params={"queue": "nursing", "patient_id": r.json()["patient_id"]}
    ).json()["items"]
    assert [a["kind"] for a in flags] == ["course_unbookable"]
    assert "split over 2 days" in flags[0]["detail"]


def test_a_maintenance_dose_too_long_for_one_session_is_given_over_two_days(
    nurse: httpx.Client,
) -> None:
    """Reproduces issue 12's maintenance half: 1 g/kg of Gamunex-C at a renal-risk patient's
    2 mg/kg/min is 500 min of infusion, more than the 480 a session may last. Each dose is
    booked as two half doses on consecutive days; the course counts doses, not visits, and a
    nurse moving the first day takes the second along."""
    center, chairs = weekday_center(nurse)
    course = split_course(nurse, center["id"], cycles=2)
    booked = nurse.post(
        f"/api/v1/courses/{course['id']}/book",
        json={"through": (MONDAY + timedelta(weeks=10)).isoformat()},
    ).json()
    assert booked["unbookable"] is None, booked
    visits = sorted(booked["booked"], key=lambda a: a["start"])
    assert len(visits) == 4  # two doses, two days each
    days = [local_day(a["start"]) for a in visits]
    assert days[1] - days[0] == timedelta(days=1) and days[3] - days[2] == timedelta(days=1)
    assert all(a["duration_minutes"] <= 480 for a in visits)
    plan = nurse.get(
        f"/api/v1/courses/{course['id']}/plan",
        params={"through": (MONDAY + timedelta(weeks=10)).isoformat()},
    ).json()
    shown = [(s["sequence"], s["part"], s["dose_number"]) for s in plan["sessions"]]
    assert shown == [(1, 1, 1), (1, 2, 1), (2, 1, 2), (2, 2, 2)]
    halves = [s["dose_g"] for s in plan["sessions"][:2]]
    assert sum(halves) == 70.0  # 1 g/kg x 70 kg, shared over the two days
    # A nurse moves the second dose's second day to the other chair (so it is pinned)...
    other_chair = next(c for c in chairs if c != visits[3]["chair_id"])
    pinned = nurse.patch(
        f"/api/v1/appointments/{visits[3]['id']}",
        json={"chair_id": other_chair},
        headers={"If-Match": '"1"'},
    )
    assert pinned.status_code == 200 and pinned.json()["pinned"], pinned.text
    # ...then moves its first day two days later (inside its window): the second day still
    # comes along, to the day after (found in review: a pinned second day stayed behind).
    second_dose = nurse.get(f"/api/v1/appointments/{visits[2]['id']}").json()
    later = days[2] + timedelta(days=2)
    moved = nurse.patch(
        f"/api/v1/appointments/{second_dose['id']}",
        json={"local_date": later.isoformat(), "local_time": "08:00"},
        headers={"If-Match": f'"{second_dose["version"]}"'},
    )
    assert moved.status_code == 200, moved.text
    now = sorted(sessions_of(nurse, course["patient_id"]), key=lambda a: a["start"])
    assert [local_day(a["start"]) for a in now][2:] == [later, later + timedelta(days=1)]


def split_course(nurse: httpx.Client, center_id: str, cycles: int) -> dict[str, Any]:
    """Maintenance whose every dose takes two days (1 g/kg at a renal-risk 2 mg/kg/min)."""
    r = order(
        nurse,
        center_id,
        diagnosis_code="G61.82",
        induction=None,
        renal_risk=True,
        maintenance={
            "dose_g_per_kg": 1,
            "interval_days": 28,
            "window_min_days": 21,
            "window_max_days": 42,
            "cycles": cycles,
        },
    )
    assert r.status_code == 201, r.text
    course: dict[str, Any] = r.json()
    return course


def test_a_lost_day_of_a_two_day_dose_leaves_the_other_half_as_it_was(
    nurse: httpx.Client,
) -> None:
    """Found in review: a cancelled first day made the re-plan give the second day the whole
    dose (570 min, past max_session_minutes) on the day after the previous dose."""
    center, _ = weekday_center(nurse)
    course = split_course(nurse, center["id"], cycles=2)
    through = {"through": (MONDAY + timedelta(weeks=10)).isoformat()}
    visits = sorted(
        nurse.post(f"/api/v1/courses/{course['id']}/book", json=through).json()["booked"],
        key=lambda a: a["start"],
    )
    first_day, second_day = visits[2], visits[3]
    r = nurse.post(f"/api/v1/appointments/{first_day['id']}/cancel")
    assert r.status_code == 200, r.text
    assert r.json()["course_changes"]["problems"] == []
    kept = nurse.get(f"/api/v1/appointments/{second_day['id']}").json()
    assert (kept["start"], kept["end"]) == (second_day["start"], second_day["end"])
    plan = nurse.get(f"/api/v1/courses/{course['id']}/plan", params=through).json()["sessions"]
    by_id = {s["appointment"]["id"]: s for s in plan if s["appointment"]}
    assert by_id[second_day["id"]]["dose_g"] == by_id[visits[1]["id"]]["dose_g"]  # a half
    assert by_id[second_day["id"]]["dose_number"] == 2
    assert by_id[first_day["id"]]["dose_number"] is None  # lost


def test_the_nightly_run_counts_doses_not_visits(admin: httpx.Client, nurse: httpx.Client) -> None:
    """Found in review: with doses over two days, the run counted visits against the cycles
    and stopped after half of them."""
    center, _ = weekday_center(nurse)
    course = split_course(nurse, center["id"], cycles=4)
    through = {"through": (MONDAY + timedelta(weeks=5)).isoformat()}
    booked = nurse.post(f"/api/v1/courses/{course['id']}/book", json=through).json()["booked"]
    assert len(booked) == 4  # two doses of two days
    version = nurse.get(f"/api/v1/centers/{center['id']}").json()["version"]
    horizon = (MONDAY + timedelta(weeks=20) - date.today()).days
    r = nurse.patch(
        f"/api/v1/centers/{center['id']}",
        json={"booking_horizon_days": horizon},
        headers={"If-Match": f'"{version}"'},
    )
    assert r.status_code == 200, r.text
    run = admin.post("/api/v1/jobs/auto_book/run", params={"center_id": center["id"]}).json()
    assert run["outcome"] == "succeeded", run
    visits = [a for a in sessions_of(nurse, course["patient_id"])]
    assert len(visits) == 8  # all four doses, two days each
