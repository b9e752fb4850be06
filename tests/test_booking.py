"""Booking rules through the API: opening hours, closures, blocks, chairs, patients, nurses."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import httpx
from sqlalchemy import func, select

from core.db import Database
from core.outbox.models import OutboxEvent
from scheduling.appointments.models import Appointment, AppointmentChange
from tests.support.factories import book, make_center, make_chair, make_patient
from tests.support.servers import Server
from tests.support.servers import at as as_of

DAY = "2027-01-12"  # a Tuesday, EST (-05:00)


def at(hhmm: str, day: str = DAY, offset: str = "-05:00") -> str:
    return f"{day}T{hhmm}:00{offset}"


def test_booking_returns_the_appointment_in_center_local_time(nurse: httpx.Client) -> None:
    center = make_center(nurse)
    chair = make_chair(nurse, center["id"])
    patient = make_patient(nurse)
    r = book(nurse, patient["id"], chair["id"], "2027-01-12T14:00:00Z", 150)
    assert r.status_code == 201, r.text
    body = r.json()
    assert r.headers["Location"] == f"/api/v1/appointments/{body['id']}"
    assert r.headers["ETag"] == '"1"'
    assert body["start"] == "2027-01-12T09:00:00-05:00"
    assert body["end"] == "2027-01-12T11:30:00-05:00"
    assert body["status"] == "booked"
    assert body["center_id"] == center["id"]
    fetched = nurse.get(f"/api/v1/appointments/{body['id']}").json()
    assert fetched == body


def test_chair_conflict_names_the_appointment_in_the_way(nurse: httpx.Client) -> None:
    center = make_center(nurse)
    chair = make_chair(nurse, center["id"])
    first = book(nurse, make_patient(nurse)["id"], chair["id"], at("09:00")).json()
    r = book(nurse, make_patient(nurse)["id"], chair["id"], at("11:00"))
    assert r.status_code == 409
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["status"] == 409 and problem["conflicts"] == [first["id"]]
    # The chair is cleaned for the center's turnover (15 min) after each patient; then free.
    cleaning = book(nurse, make_patient(nurse)["id"], chair["id"], at("12:00"))
    assert cleaning.status_code == 409 and cleaning.json()["conflicts"] == [first["id"]]
    assert "turnover" in cleaning.json()["detail"]
    assert book(nurse, make_patient(nurse)["id"], chair["id"], at("12:15")).status_code == 201


def test_turnover_holds_for_manual_bookings_and_moves(nurse: httpx.Client) -> None:
    """Reproduces issue 12: a chair booked 09:00-11:00 took another patient at 11:00."""
    center = make_center(nurse)  # turnover_minutes 15, the default
    chair = make_chair(nurse, center["id"])
    first = book(nurse, make_patient(nurse)["id"], chair["id"], at("09:00"), 120).json()
    r = book(nurse, make_patient(nurse)["id"], chair["id"], at("11:00"), 60)
    assert r.status_code == 409 and r.json()["conflicts"] == [first["id"]]
    # A visit just before needs its own turnover before the next patient.
    early = book(nurse, make_patient(nurse)["id"], chair["id"], at("07:00"), 110)
    assert early.status_code == 409
    later = book(nurse, make_patient(nurse)["id"], chair["id"], at("11:15"), 60).json()
    # Moving the later visit back into the turnover is refused too.
    moved = nurse.patch(
        f"/api/v1/appointments/{later['id']}",
        json={"start": at("11:05")},
        headers={"If-Match": '"1"'},
    )
    assert moved.status_code == 409 and moved.json()["conflicts"] == [first["id"]]
    # Availability offers no start inside the turnover.
    slots = nurse.get(
        f"/api/v1/centers/{center['id']}/availability",
        params={"date": DAY, "duration_minutes": 30},
    ).json()["slots"]
    starts = {s["start"] for s in slots if s["chair_id"] == chair["id"]}
    assert at("11:00") not in starts and at("12:15") not in starts and at("12:30") in starts
    # A center without turnover books back to back.
    quick = make_center(nurse, turnover_minutes=0)
    quick_chair = make_chair(nurse, quick["id"])
    book(nurse, make_patient(nurse)["id"], quick_chair["id"], at("09:00"), 120)
    assert book(nurse, make_patient(nurse)["id"], quick_chair["id"], at("11:00")).status_code == 201


def test_a_patient_is_never_in_two_chairs(nurse: httpx.Client) -> None:
    center = make_center(nurse)
    a, b = make_chair(nurse, center["id"]), make_chair(nurse, center["id"])
    patient = make_patient(nurse)
    first = book(nurse, patient["id"], a["id"], at("09:00")).json()
    r = book(nurse, patient["id"], b["id"], at("10:00"))
    assert r.status_code == 409 and r.json()["conflicts"] == [first["id"]]
    # ...and not in another center either.
    other = make_center(nurse)
    elsewhere = make_chair(nurse, other["id"])
    assert book(nurse, patient["id"], elsewhere["id"], at("10:00")).status_code == 409


def test_opening_hours_closures_and_blocks_are_422(nurse: httpx.Client) -> None:
    center = make_center(nurse, days=range(5))  # Monday to Friday
    chair = make_chair(nurse, center["id"])
    patient = make_patient(nurse)["id"]
    assert book(nurse, patient, chair["id"], at("06:45")).status_code == 422
    assert book(nurse, patient, chair["id"], at("17:00")).status_code == 422  # ends 20:00
    assert book(nurse, patient, chair["id"], at("16:00")).status_code == 201  # ends 19:00
    saturday = book(nurse, patient, chair["id"], at("09:00", "2027-01-16"))
    assert saturday.status_code == 422 and "Saturday" in saturday.json()["detail"]

    r = nurse.post(
        f"/api/v1/centers/{center['id']}/closures", json={"date": "2027-01-13", "reason": "snow"}
    )
    assert r.status_code == 201
    closed = book(nurse, patient, chair["id"], at("09:00", "2027-01-13"))
    assert closed.status_code == 422 and "closed" in closed.json()["detail"]
    dup = nurse.post(
        f"/api/v1/centers/{center['id']}/closures", json={"date": "2027-01-13", "reason": "x"}
    )
    assert dup.status_code == 409

    r = nurse.post(
        f"/api/v1/chairs/{chair['id']}/blocks",
        json={
            "start": at("08:00", "2027-01-14"),
            "end": at("10:00", "2027-01-14"),
            "reason": "repair",
        },
    )
    assert r.status_code == 201
    blocked = book(nurse, patient, chair["id"], at("09:30", "2027-01-14"))
    assert blocked.status_code == 422 and "out of service" in blocked.json()["detail"]
    assert book(nurse, patient, chair["id"], at("10:00", "2027-01-14")).status_code == 201


def test_census_never_exceeds_nurses_times_patients_per_nurse(nurse: httpx.Client) -> None:
    center = make_center(nurse, nurses=1, patients_per_nurse=2)
    chairs = [make_chair(nurse, center["id"]) for _ in range(3)]
    ids = [
        book(nurse, make_patient(nurse)["id"], chairs[i]["id"], at(t), 240).json()["id"]
        for i, t in enumerate(["08:00", "08:30"])
    ]
    r = book(nurse, make_patient(nurse)["id"], chairs[2]["id"], at("10:00"), 60)
    assert r.status_code == 409 and "capacity" in r.json()["detail"]
    assert sorted(r.json()["conflicts"]) == sorted(ids)
    # Once the first leaves at 12:00 there is room again.
    assert (
        book(nurse, make_patient(nurse)["id"], chairs[2]["id"], at("12:00"), 60).status_code == 201
    )


def test_starts_are_staggered_by_nurses_on_duty(nurse: httpx.Client) -> None:
    center = make_center(nurse, nurses=2, patients_per_nurse=6)
    chairs = [make_chair(nurse, center["id"]) for _ in range(4)]
    assert book(nurse, make_patient(nurse)["id"], chairs[0]["id"], at("09:00")).status_code == 201
    assert book(nurse, make_patient(nurse)["id"], chairs[1]["id"], at("09:20")).status_code == 201
    r = book(nurse, make_patient(nurse)["id"], chairs[2]["id"], at("09:10"))
    assert r.status_code == 409 and "starts" in r.json()["detail"]
    # 09:30 leaves [09:00, 09:30) alone and makes [09:20, 09:50) hold two: allowed.
    assert book(nurse, make_patient(nurse)["id"], chairs[2]["id"], at("09:30")).status_code == 201
    # 09:40 would put three starts in [09:20, 09:50).
    assert book(nurse, make_patient(nurse)["id"], chairs[3]["id"], at("09:40")).status_code == 409
    assert book(nurse, make_patient(nurse)["id"], chairs[3]["id"], at("09:50")).status_code == 201


def test_lifecycle_and_illegal_transitions(nurse: httpx.Client) -> None:
    center = make_center(nurse)
    chair = make_chair(nurse, center["id"])
    appt = book(nurse, make_patient(nurse)["id"], chair["id"], at("09:00")).json()
    url = f"/api/v1/appointments/{appt['id']}"
    chairside = as_of(datetime.fromisoformat(appt["start"]) - timedelta(minutes=20))
    assert nurse.post(url + "/complete", headers=chairside).status_code == 409
    for action, status in [
        ("check-in", "checked_in"),
        ("start", "in_progress"),
        ("complete", "completed"),
    ]:
        r = nurse.post(f"{url}/{action}", headers=chairside)
        assert r.status_code == 200 and r.json()["status"] == status
    r = nurse.post(url + "/cancel")
    assert r.status_code == 409 and r.headers["content-type"] == "application/problem+json"
    assert nurse.post(url + "/teleport").status_code == 422


def test_cancelled_and_no_show_free_the_chair(nurse: httpx.Client) -> None:
    center = make_center(nurse)
    chair = make_chair(nurse, center["id"])
    for action in ("cancel", "no-show"):
        appt = book(nurse, make_patient(nurse)["id"], chair["id"], at("09:00")).json()
        missed = as_of(datetime.fromisoformat(appt["start"]) + timedelta(minutes=30))
        r = nurse.post(f"/api/v1/appointments/{appt['id']}/{action}", headers=missed)
        assert r.status_code == 200
    assert book(nurse, make_patient(nurse)["id"], chair["id"], at("09:00")).status_code == 201
    listed = nurse.get(
        "/api/v1/appointments", params={"center_id": center["id"], "date": DAY}
    ).json()
    assert sorted(a["status"] for a in listed["items"]) == ["booked", "cancelled", "no_show"]


def test_reschedule_needs_if_match_and_keeps_the_rules(nurse: httpx.Client) -> None:
    center = make_center(nurse)
    a, b = make_chair(nurse, center["id"]), make_chair(nurse, center["id"])
    appt = book(nurse, make_patient(nurse)["id"], a["id"], at("09:00")).json()
    other = book(nurse, make_patient(nurse)["id"], b["id"], at("13:00")).json()
    url = f"/api/v1/appointments/{appt['id']}"
    assert nurse.patch(url, json={"start": at("10:00")}).status_code == 428
    assert (
        nurse.patch(url, json={"start": at("10:00")}, headers={"If-Match": '"7"'}).status_code
        == 412
    )
    moved = nurse.patch(url, json={"start": at("10:00")}, headers={"If-Match": '"1"'})
    assert moved.status_code == 200, moved.text
    assert moved.json()["start"] == at("10:00") and moved.json()["end"] == at("13:00")
    assert moved.headers["ETag"] == '"2"'
    # Moving onto the other chair at a taken time is a conflict, and changes nothing.
    r = nurse.patch(
        url, json={"chair_id": b["id"], "start": at("12:00")}, headers={"If-Match": '"2"'}
    )
    assert r.status_code == 409 and r.json()["conflicts"] == [other["id"]]
    assert nurse.get(url).json()["start"] == at("10:00")
    # The old slot is free again (up to the turnover before the moved visit).
    assert book(nurse, make_patient(nurse)["id"], a["id"], at("07:00"), 165).status_code == 201


def test_availability_lists_only_bookable_slots(nurse: httpx.Client) -> None:
    center = make_center(nurse, opens="08:00", closes="12:00", nurses=1, patients_per_nurse=2)
    chairs = [make_chair(nurse, center["id"]) for _ in range(2)]
    make_chair(nurse, center["id"], kind="bed")
    book(nurse, make_patient(nurse)["id"], chairs[0]["id"], at("08:00"), 120)
    r = nurse.get(
        f"/api/v1/centers/{center['id']}/availability",
        params={"date": DAY, "duration_minutes": 60, "chair_kind": "chair"},
    )
    assert r.status_code == 200
    slots = r.json()["slots"]
    starts = sorted({s["start"][11:16] for s in slots})
    # 08:00-08:15 are inside the first start's 30-minute window (1 nurse); then chair 2 is free.
    assert starts[0] == "08:30" and starts[-1] == "11:00"
    assert all(s["chair_id"] == chairs[1]["id"] for s in slots if s["start"] < at("10:00"))
    labels = {c["id"]: c["label"] for c in chairs}
    assert all(s["chair_label"] == labels[s["chair_id"]] for s in slots)  # named, not only ids
    # Every advertised slot is really bookable.
    for slot in slots[:: max(1, len(slots) // 4)]:
        probe = make_patient(nurse)["id"]
        r = nurse.post(
            "/api/v1/appointments",
            json={
                "patient_id": probe,
                "chair_id": slot["chair_id"],
                "start": slot["start"],
                "end": slot["end"],
            },
        )
        assert r.status_code == 201, (slot, r.text)
        nurse.post(f"/api/v1/appointments/{r.json()['id']}/cancel")


def test_day_board_shows_chairs_census_and_capacity(nurse: httpx.Client) -> None:
    center = make_center(nurse, opens="08:00", closes="12:00", nurses=2, patients_per_nurse=3)
    chair = make_chair(nurse, center["id"])
    appt = book(nurse, make_patient(nurse)["id"], chair["id"], at("09:00"), 60).json()
    board = nurse.get(f"/api/v1/centers/{center['id']}/day", params={"date": DAY}).json()
    assert board["opens"] == at("08:00") and board["closes"] == at("12:00")
    assert board["chairs"][0]["appointments"][0]["id"] == appt["id"]
    slots = {s["start"][11:16]: s for s in board["slots"]}
    assert len(slots) == 16
    assert slots["09:00"] == {
        "start": at("09:00"),
        "census": 1,
        "nurses": 2,
        "nurse_capacity": 6,
        "starts": 1,
    }
    assert slots["10:00"]["census"] == 0


def rows(server: Server) -> tuple[int, int, int]:
    """Appointments, their history and outbox events: what a booking writes."""

    async def count() -> tuple[int, int, int]:
        db = Database(server.database_url)
        try:
            async with db.unit_of_work(write=False) as session:
                found = [
                    int(await session.scalar(select(func.count()).select_from(t)) or 0)
                    for t in (Appointment, AppointmentChange, OutboxEvent)
                ]
                return found[0], found[1], found[2]
        finally:
            await db.dispose()

    return asyncio.run(count())


def test_a_check_answers_as_booking_would_and_books_nothing(
    server: Server, nurse: httpx.Client
) -> None:
    center = make_center(nurse)
    chair = make_chair(nurse, center["id"])
    patient = make_patient(nurse)["id"]
    body = {
        "patient_id": patient,
        "chair_id": chair["id"],
        "start": at("09:00"),
        "duration_minutes": 120,
    }
    before = rows(server)
    free = nurse.post("/api/v1/appointments/check", json=body)
    assert free.status_code == 200 and free.json() == {"bookable": True, "problem": None}
    assert rows(server) == before  # no appointment, no history, no event left behind
    first = book(nurse, patient, chair["id"], at("09:00"), 120).json()
    other = {**body, "patient_id": make_patient(nurse)["id"], "start": at("11:00")}
    answer = nurse.post("/api/v1/appointments/check", json=other).json()
    assert answer["bookable"] is False
    assert answer["problem"]["type"].endswith("/booking-conflict")
    assert "turnover" in answer["problem"]["detail"] and answer["problem"]["conflicts"] == [
        first["id"]
    ]
    late = nurse.post("/api/v1/appointments/check", json={**other, "start": at("20:00")}).json()
    assert late["bookable"] is False and "opening hours" in late["problem"]["detail"]
    listed = nurse.get("/api/v1/appointments", params={"center_id": center["id"], "date": DAY})
    assert [a["id"] for a in listed.json()["items"]] == [first["id"]]


def test_a_move_may_name_the_local_date_and_time(nurse: httpx.Client) -> None:
    center = make_center(nurse)
    chair = make_chair(nurse, center["id"])
    appt = book(nurse, make_patient(nurse)["id"], chair["id"], at("09:00"), 60).json()
    r = nurse.patch(
        f"/api/v1/appointments/{appt['id']}",
        json={"local_date": "2027-01-13", "local_time": "14:30"},
        headers={"If-Match": '"1"'},
    )
    assert r.status_code == 200, r.text
    assert (r.json()["start"], r.json()["end"]) == (
        at("14:30", "2027-01-13"),
        at("15:30", "2027-01-13"),
    )
    half = nurse.patch(
        f"/api/v1/appointments/{appt['id']}",
        json={"local_date": "2027-01-13"},
        headers={"If-Match": '"2"'},
    )
    assert half.status_code == 422


def test_a_visit_given_still_holds_its_chair_through_the_turnover(nurse: httpx.Client) -> None:
    """Found in review: completing a visit released its chair with no cleaning time."""
    center = make_center(nurse)
    chair = make_chair(nurse, center["id"])
    visit = book(nurse, make_patient(nurse)["id"], chair["id"], at("09:00"), 120).json()
    chairside = as_of(datetime.fromisoformat(visit["start"]) + timedelta(minutes=5))
    for step in ("check-in", "start", "complete"):
        r = nurse.post(f"/api/v1/appointments/{visit['id']}/{step}", headers=chairside)
        assert r.status_code == 200, r.text
    next_patient = make_patient(nurse)["id"]
    r = book(nurse, next_patient, chair["id"], at("11:00"), 60)
    assert r.status_code == 409 and r.json()["conflicts"] == [visit["id"]], r.text
    assert "turnover" in r.json()["detail"]
    # It no longer counts toward the nurses' load, and the chair is free after the cleaning.
    assert book(nurse, next_patient, chair["id"], at("11:15"), 60).status_code == 201
