"""The plan says what the course's last re-plan changed (`last_replan`): when, what set it off,
and each session it moved, resized or added, from where it was to where it is now."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from hypothesis import given
from hypothesis import strategies as st

from scheduling.appointments.models import Appointment
from scheduling.courses.replans import PATIENT_CHANGED, Place, cause_text, changes
from tests.support.factories import (
    MONDAY,
    local_day,
    maintenance_course,
    order,
    sessions_of,
    weekday_center,
)
from tests.support.servers import at

THROUGH = {"through": (MONDAY + timedelta(weeks=12)).isoformat()}


def read_plan(nurse: httpx.Client, course_id: str) -> dict[str, Any]:
    r = nurse.get(f"/api/v1/courses/{course_id}/plan", params=THROUGH)
    assert r.status_code == 200, r.text
    plan: dict[str, Any] = r.json()
    return plan


def booked(nurse: httpx.Client, patient_id: str) -> list[dict[str, Any]]:
    return sorted(sessions_of(nurse, patient_id), key=lambda a: a["start"])


def history(nurse: httpx.Client, appointment_id: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = nurse.get(f"/api/v1/appointments/{appointment_id}/history").json()
    return rows


def test_no_re_plan_yet(nurse: httpx.Client) -> None:
    center, _ = weekday_center(nurse)
    course = maintenance_course(nurse, center["id"])
    assert read_plan(nurse, course["id"])["last_replan"] is None


def test_a_cancelled_session_moves_the_later_ones_and_the_plan_says_so(
    nurse: httpx.Client,
) -> None:
    center, _ = weekday_center(nurse)
    course = maintenance_course(nurse, center["id"])
    s1, s2, s3 = booked(nurse, course["patient_id"])
    r = nurse.post(f"/api/v1/appointments/{s1['id']}/cancel", json={"reason": "Patient unwell"})
    assert r.status_code == 200, r.text
    told = r.json()["course_changes"]
    last = read_plan(nurse, course["id"])["last_replan"]
    assert last is not None
    # The nurse's reason stays on the cancelled visit alone, not on what the re-plan moved.
    assert last["trigger"] == "maintenance session 1 was cancelled"
    assert last["resized"] == [] and last["added"] == []
    # The same sessions the cancel's reply named, each from where it was to where it is now.
    assert [m["appointment_id"] for m in last["moved"]] == [a["id"] for a in told["moved"]]
    assert [m["appointment_id"] for m in last["moved"]] == [s2["id"], s3["id"]]
    now = {a["id"]: a for a in booked(nurse, course["patient_id"])}
    for sequence, before, moved in zip((2, 3), (s2, s3), last["moved"], strict=True):
        assert (moved["phase"], moved["sequence"]) == ("maintenance", sequence)
        assert moved["from"]["start"] == before["start"]
        assert moved["from"]["chair_id"] == before["chair_id"]
        assert moved["from"]["duration_minutes"] == before["duration_minutes"]
        assert moved["to"]["start"] == now[before["id"]]["start"] != before["start"]
        assert moved["to"]["dose_g"] == moved["from"]["dose_g"] == 70.0
    assert local_day(last["moved"][0]["to"]["start"]) == MONDAY  # pulled to the course start
    # Instants in the center's offset, and the nurse who cancelled set it off.
    assert last["at"].endswith(("-05:00", "-04:00"))
    assert last["actor_id"] is not None
    # The moved session's own history says why it moved, once.
    rows = history(nurse, s2["id"])
    assert [(h["action"], h["reason"]) for h in rows] == [
        ("booked", None),
        ("rescheduled", "Re-planned after maintenance session 1 was cancelled"),
    ]


def test_a_new_weight_resizes_the_booked_sessions_with_dose_from_and_to(
    nurse: httpx.Client,
) -> None:
    center, _ = weekday_center(nurse)
    course = maintenance_course(nurse, center["id"])
    sessions = booked(nurse, course["patient_id"])
    # First a cancel re-plans the course; then the new weight does, and is the last re-plan.
    assert nurse.post(f"/api/v1/appointments/{sessions[2]['id']}/cancel").status_code == 200
    patient = nurse.get(f"/api/v1/patients/{course['patient_id']}")
    r = nurse.patch(
        f"/api/v1/patients/{course['patient_id']}",
        json={"weight_kg": 60},
        headers={"If-Match": patient.headers["ETag"]},
    )
    assert r.status_code == 200, r.text
    last = read_plan(nurse, course["id"])["last_replan"]
    assert last["trigger"] == PATIENT_CHANGED
    assert last["moved"] == [] and last["added"] == []
    resized = last["resized"]
    assert [c["appointment_id"] for c in resized] == [a["id"] for a in sessions[:2]]
    assert [c["sequence"] for c in resized] == [1, 2]
    now = {a["id"]: a for a in booked(nurse, course["patient_id"])}
    for change, before in zip(resized, sessions[:2], strict=True):
        assert (change["from"]["dose_g"], change["to"]["dose_g"]) == (70.0, 60.0)
        # Same day, time and chair; the chair time follows the smaller dose.
        assert change["from"]["start"] == change["to"]["start"] == before["start"]
        assert change["from"]["chair_id"] == change["to"]["chair_id"]
        assert change["from"]["duration_minutes"] == before["duration_minutes"]
        assert change["to"]["duration_minutes"] == now[before["id"]]["duration_minutes"]
    # A resized session that needed a new length says why on its history (a move in place).
    rows = history(nurse, sessions[0]["id"])
    same_length = resized[0]["to"]["duration_minutes"] == resized[0]["from"]["duration_minutes"]
    expected = [None] if same_length else [None, f"Re-planned after {PATIENT_CHANGED}"]
    assert [h["reason"] for h in rows] == expected


def test_a_nurse_moving_a_session_is_what_set_it_off(nurse: httpx.Client) -> None:
    center, _ = weekday_center(nurse)
    course = maintenance_course(nurse, center["id"])
    s1, s2, s3 = booked(nurse, course["patient_id"])
    # Two weeks later (still in its window): the next one is then too close, and follows.
    later = (local_day(s2["start"]) + timedelta(days=14)).isoformat()
    current = nurse.get(f"/api/v1/appointments/{s2['id']}").json()
    r = nurse.patch(
        f"/api/v1/appointments/{s2['id']}",
        json={"local_date": later, "local_time": "09:00"},
        headers={"If-Match": f'"{current["version"]}"'},
    )
    assert r.status_code == 200, r.text
    told = r.json()["course_changes"]
    assert [a["id"] for a in told["moved"]] == [s3["id"]]
    last = read_plan(nurse, course["id"])["last_replan"]
    assert last["trigger"] == "maintenance session 2 was moved"
    # The session the nurse moved is the cause, not a change the re-plan made.
    assert [c["appointment_id"] for c in last["moved"]] == [s3["id"]]
    assert last["resized"] == [] and last["added"] == []
    change = last["moved"][0]
    assert change["from"]["start"] == s3["start"]
    assert local_day(change["to"]["start"]) - local_day(later) >= timedelta(days=21)
    assert s1["id"] not in {c["appointment_id"] for c in last["moved"]}


def test_a_missed_loading_day_is_replaced_and_listed_as_added(nurse: httpx.Client) -> None:
    center, _ = weekday_center(nurse)
    loading = {"total_dose_g_per_kg": 2, "days": 5, "skip_closures": True}
    course = order(nurse, center["id"], induction=loading).json()
    days = nurse.post(f"/api/v1/courses/{course['id']}/book", json=THROUGH).json()["booked"]
    missed = at(datetime.fromisoformat(days[2]["start"]) + timedelta(minutes=30))
    r = nurse.post(f"/api/v1/appointments/{days[2]['id']}/no-show", headers=missed)
    assert r.status_code == 200, r.text
    told = r.json()["course_changes"]
    last = read_plan(nurse, course["id"])["last_replan"]
    assert last["trigger"] == "loading day 3 was missed (no-show)"
    assert [a["appointment_id"] for a in last["added"]] == [a["id"] for a in told["added"]]
    added = last["added"][0]
    assert added["from"] is None
    assert (added["phase"], added["sequence"]) == ("induction", 6)
    assert added["to"]["start"] == told["added"][0]["start"]
    assert added["to"]["dose_g"] == told["added"][0]["dose_g"] == 28.0  # 2 g/kg x 70 kg / 5
    moved = {c["appointment_id"] for c in last["moved"]}
    assert moved == {a["id"] for a in told["moved"]}


def test_the_cause_in_words() -> None:
    assert cause_text("maintenance", 2, 1, "cancel") == "maintenance session 2 was cancelled"
    assert cause_text("induction", 3, 1, "no-show") == "loading day 3 was missed (no-show)"
    assert cause_text("maintenance", 4, 1, None) == PATIENT_CHANGED
    second = cause_text("maintenance", 1, 2, "complete")
    assert second == "maintenance session 1 (second day) was given and recorded"


START = datetime(2027, 3, 1, 14, tzinfo=UTC)
CHAIRS = [uuid.UUID(int=n) for n in (1, 2)]


@given(
    st.lists(
        st.tuples(
            st.booleans(),  # stood somewhere before the re-plan
            st.sampled_from(CHAIRS),
            st.integers(0, 3),  # days later
            st.sampled_from(CHAIRS),
            st.integers(0, 3),
            st.sampled_from([None, Decimal(60), Decimal(70)]),
            st.sampled_from([None, Decimal(60), Decimal(70)]),
        ),
        max_size=6,
    )
)
def test_each_change_is_moved_resized_or_added_by_where_it_stood(
    sessions: list[tuple[bool, uuid.UUID, int, uuid.UUID, int, Decimal | None, Decimal | None]],
) -> None:
    before: dict[uuid.UUID, Place] = {}
    changed = []
    for n, (stood, chair0, day0, chair1, day1, dose0, dose1) in enumerate(sessions, start=1):
        appt = Appointment(
            id=uuid.uuid4(),
            chair_id=chair1,
            start_at=START + timedelta(days=day1),
            end_at=START + timedelta(days=day1, hours=4),
            dose_g=dose1,
            phase="maintenance",
            sequence=n,
            part=1,
        )
        if stood:
            before[appt.id] = Place(
                chair0, START + timedelta(days=day0), START + timedelta(days=day0, hours=4), dose0
            )
        changed.append(appt)
    found = {c.appointment_id: c for c in changes(before, changed)}
    for appt in changed:
        was = before.get(appt.id)
        if was is None:
            assert found[appt.id].kind == "added" and found[appt.id].before is None
        elif (was.chair_id, was.start, was.dose_g) == (appt.chair_id, appt.start_at, appt.dose_g):
            assert appt.id not in found  # nothing changed: not reported
        elif (was.chair_id, was.start) == (appt.chair_id, appt.start_at):
            assert found[appt.id].kind == "resized"
        else:
            assert found[appt.id].kind == "moved" and found[appt.id].before == was
    assert [c.sequence for c in found.values()] == sorted(c.sequence for c in found.values())
