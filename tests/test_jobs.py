"""Background jobs through the API: the nightly booking run, its record, its alerts."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select, update

from app.jobs.models import JobRun
from core.clock import utcnow
from core.db import Database
from core.outbox.models import OutboxEvent
from core.problems import BookingConflict
from scheduling import jobs as scheduling_jobs
from scheduling.appointments import placement
from scheduling.appointments import repository as appointment_repository
from scheduling.appointments.center_days import CenterDays, PatientSpans
from scheduling.appointments.models import Appointment, AppointmentChange
from scheduling.centers import repository as center_repository
from scheduling.courses import booking as course_booking
from scheduling.courses import service as courses
from tests.support.factories import book, gamunex, make_center, make_chair, make_patient
from tests.support.servers import Server


def course_starting_soon(api: httpx.Client, center_id: str, **overrides: Any) -> dict[str, Any]:
    start = date.today() + timedelta(days=7)
    body = {
        "patient_id": make_patient(api, weight_kg=70, height_cm=165, sex="female")["id"],
        "center_id": center_id,
        "product_id": gamunex(api),
        "diagnosis_code": "G61.82",
        "induction": None,
        "maintenance": {
            "dose_g_per_kg": 1,
            "interval_days": 21,
            "window_min_days": 21,
            "window_max_days": 28,
            "cycles": 6,
        },
        "start_date": start.isoformat(),
        "preferred_weekdays": [start.weekday()],
        **overrides,
    }
    r = api.post("/api/v1/courses", json=body)
    assert r.status_code == 201, r.text
    course: dict[str, Any] = r.json()
    return course


def booked(api: httpx.Client, patient_id: str) -> list[dict[str, Any]]:
    items = api.get("/api/v1/appointments", params={"patient_id": patient_id}).json()["items"]
    return [a for a in items if a["status"] == "booked"]


def run(admin: httpx.Client, center_id: str) -> dict[str, Any]:
    r = admin.post("/api/v1/jobs/auto_book/run", params={"center_id": center_id})
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


def test_the_booking_run_books_the_horizon_once_and_is_recorded(
    admin: httpx.Client, nurse: httpx.Client
) -> None:
    center = make_center(nurse)
    make_chair(nurse, center["id"])
    course = course_starting_soon(nurse, center["id"])
    first = run(admin, center["id"])
    assert first["outcome"] == "succeeded" and first["trigger"] == "manual"
    assert first["scope"] == center["id"]
    # 56 days ahead by default: the sessions of day 7, 28 and 49.
    assert first["counts"] == {
        "courses": 1,
        "booked": 3,
        "unbookable": 0,
        "failed": 0,
        "skipped": 0,
        "optimised": 0,
    }
    assert len(booked(nurse, course["patient_id"])) == 3
    again = run(admin, center["id"])
    assert again["counts"]["booked"] == 0 and len(booked(nurse, course["patient_id"])) == 3

    runs = admin.get("/api/v1/jobs/runs", params={"job": "auto_book", "limit": 2}).json()
    assert [r["id"] for r in runs["items"]] == [again["id"], first["id"]]  # newest first
    jobs = {j["name"]: j for j in nurse.get("/api/v1/jobs").json()}
    assert set(jobs) == {
        "auto_book",
        "lapse_sweep",
        "no_show_sweep",
        "reminders",
        "webhook_delivery",
        "housekeeping",
        "drug_check",
        "waitlist_offers",
        "pas_inquiry",
    }
    assert jobs["auto_book"]["last_run"]["started_at"] >= again["started_at"]
    assert nurse.post("/api/v1/jobs/auto_book/run").status_code == 403
    assert (
        admin.post("/api/v1/jobs/lapse_sweep/run", params={"center_id": center["id"]}).status_code
        == 422
    )
    assert admin.post("/api/v1/jobs/nothing/run").status_code == 422


def records(server: Server, patient_id: str) -> tuple[Counter[str], Counter[str]]:
    """How many "booked" history rows and `appointment.booked` events each of the patient's
    appointments has, by appointment id."""

    async def read() -> tuple[Counter[str], Counter[str]]:
        db = Database(server.database_url)
        try:
            async with db.unit_of_work(write=False) as session:
                history = await session.scalars(
                    select(AppointmentChange.appointment_id)
                    .join(Appointment, Appointment.id == AppointmentChange.appointment_id)
                    .where(
                        Appointment.patient_id == uuid.UUID(patient_id),
                        AppointmentChange.action == "booked",
                    )
                )
                events = await session.scalars(
                    select(OutboxEvent.data).where(OutboxEvent.type == "appointment.booked")
                )
                return (
                    Counter(str(i) for i in history),
                    Counter(e["appointment_id"] for e in events if e["patient_id"] == patient_id),
                )
        finally:
            await db.dispose()

    return asyncio.run(read())


def test_a_course_the_run_cannot_book_is_flagged_until_it_can(
    server: Server, admin: httpx.Client, nurse: httpx.Client, billing: httpx.Client
) -> None:
    center = make_center(nurse)
    chair = make_chair(nurse, center["id"])["id"]
    loading = {"total_dose_g_per_kg": 2, "days": 5}
    course = course_starting_soon(
        nurse, center["id"], maintenance=None, induction=loading, diagnosis_code="G61.0"
    )
    # The only chair is taken all day on the third loading day.
    third = date.fromisoformat(course["start_date"]) + timedelta(days=2)
    blocker = nurse.post(
        "/api/v1/appointments",
        json={
            "patient_id": make_patient(nurse)["id"],
            "chair_id": chair,
            "local_date": third.isoformat(),
            "local_time": "07:00",
            "duration_minutes": 720,
        },
    )
    assert blocker.status_code == 201, blocker.text
    result = run(admin, center["id"])
    assert result["counts"]["unbookable"] == 1 and booked(nurse, course["patient_id"]) == []

    def flags() -> list[dict[str, Any]]:
        items = billing.get(
            "/api/v1/alerts",
            params={"kind": "course_unbookable", "patient_id": course["patient_id"]},
        ).json()["items"]
        assert isinstance(items, list)
        return items

    open_flags = [a for a in flags() if a["status"] == "open"]
    assert len(open_flags) == 1 and "nothing booked" in open_flags[0]["detail"]
    # It is the nurses' to solve: on their queue, not on billing's (nor in billing's export).
    assert open_flags[0]["queue"] == "nursing"
    nursing = nurse.get("/api/v1/alerts", params={"queue": "nursing", "limit": 200}).json()
    assert open_flags[0]["id"] in {a["id"] for a in nursing["items"]}
    billing_queue = billing.get("/api/v1/alerts", params={"queue": "billing", "limit": 200})
    assert open_flags[0]["id"] not in {a["id"] for a in billing_queue.json()["items"]}
    assert open_flags[0]["id"] not in billing.get("/api/v1/billing/worklist.csv").text
    run(admin, center["id"])  # still stuck: still one alert
    assert len([a for a in flags() if a["status"] == "open"]) == 1

    assert nurse.post(f"/api/v1/appointments/{blocker.json()['id']}/cancel").status_code == 200
    run(admin, center["id"])
    sessions = booked(nurse, course["patient_id"])
    assert len(sessions) == 5
    # Each booked session has its history and its event once; the loading days taken back
    # when the third day failed left neither.
    once = Counter({a["id"]: 1 for a in sessions})
    assert records(server, course["patient_id"]) == (once, once)
    assert [a["status"] for a in flags()] == ["resolved"]


def test_missed_appointments_become_no_shows_once_the_center_has_closed(
    admin: httpx.Client, nurse: httpx.Client
) -> None:
    center = make_center(nurse)
    chair = make_chair(nurse, center["id"])["id"]
    patient = make_patient(nurse)["id"]
    yesterday = (date.today() - timedelta(days=2)).isoformat()
    missed = nurse.post(
        "/api/v1/appointments",
        json={
            "patient_id": patient,
            "chair_id": chair,
            "local_date": yesterday,
            "local_time": "09:00",
            "duration_minutes": 120,
            "record_reason": "booked by phone, entered after the visit day",
        },
    )
    assert missed.status_code == 201, missed.text
    later = (date.today() + timedelta(days=3)).isoformat()
    upcoming = nurse.post(
        "/api/v1/appointments",
        json={
            "patient_id": patient,
            "chair_id": chair,
            "local_date": later,
            "local_time": "09:00",
            "duration_minutes": 120,
        },
    ).json()
    first = admin.post("/api/v1/jobs/no_show_sweep/run").json()
    assert first["outcome"] == "succeeded" and first["counts"]["marked"] >= 1
    assert nurse.get(f"/api/v1/appointments/{missed.json()['id']}").json()["status"] == "no_show"
    assert nurse.get(f"/api/v1/appointments/{upcoming['id']}").json()["status"] == "booked"
    again = admin.post("/api/v1/jobs/no_show_sweep/run").json()
    assert again["counts"]["marked"] == 0


def test_one_run_of_a_job_at_a_time_and_a_dead_one_does_not_block(
    server: Server, admin: httpx.Client
) -> None:
    """A run another process has under way (its heartbeat fresh) makes a second start wait its
    turn (409); once its heartbeat is old, its process is taken for dead and a new run goes."""
    run_id = uuid.uuid4()

    async def plant(heartbeat: datetime) -> None:
        db = Database(server.database_url)
        try:
            async with db.unit_of_work() as session:
                session.add(
                    JobRun(
                        id=run_id,
                        job="reminders",
                        trigger="schedule",
                        runner="elsewhere:1",
                        heartbeat_at=heartbeat,
                    )
                )
        finally:
            await db.dispose()

    async def age() -> None:
        db = Database(server.database_url)
        try:
            async with db.unit_of_work() as session:
                await session.execute(
                    update(JobRun)
                    .where(JobRun.id == run_id)
                    .values(heartbeat_at=utcnow() - timedelta(hours=1))
                )
        finally:
            await db.dispose()

    asyncio.run(plant(utcnow()))
    busy = admin.post("/api/v1/jobs/reminders/run")
    assert busy.status_code == 409 and "already running" in busy.json()["detail"]
    asyncio.run(age())
    fresh = admin.post("/api/v1/jobs/reminders/run")
    assert fresh.status_code == 200 and fresh.json()["outcome"] == "succeeded"
    dead = next(
        r
        for r in admin.get("/api/v1/jobs/runs", params={"job": "reminders"}).json()["items"]
        if r["id"] == str(run_id)
    )
    assert dead["outcome"] == "failed" and dead["error"].startswith("stopped without finishing")


def test_a_booking_run_checks_its_copy_of_a_day_against_what_was_booked_meanwhile(
    server: Server, nurse: httpx.Client
) -> None:
    """A booking run reads each day once and keeps it across its courses. A nurse's booking
    made after the run read the day must still count: here it takes the one nurse's only
    patient place at 09:00, on another chair, which no database constraint would catch."""
    center = make_center(nurse, nurses=1, patients_per_nurse=1)
    for label in ("A-1", "B-2"):  # the planner tries A-1 first
        r = nurse.post(f"/api/v1/centers/{center['id']}/chairs", json={"label": label})
        assert r.status_code == 201, r.text
    other_chair = r.json()
    course = course_starting_soon(nurse, center["id"])
    day = date.fromisoformat(course["start_date"])
    tz = ZoneInfo(center["timezone"])

    async def book_with_stale_day() -> Appointment:
        db = Database(server.database_url)
        try:
            async with db.unit_of_work(write=False) as session:
                days = CenterDays(
                    await center_repository.get_center(session, uuid.UUID(center["id"]))
                )
                assert (await days.day(session, day)).spans == []  # the run has read the day
            taken = book(
                nurse,
                make_patient(nurse)["id"],
                other_chair["id"],
                datetime.combine(day, time(9), tz).isoformat(),
                minutes=120,
            )
            assert taken.status_code == 201, taken.text
            async with db.unit_of_work() as session:
                row = await courses.get_course(session, uuid.UUID(course["id"]), for_update=True)
                result = await course_booking.book_through(session, row, day, None, days)
            assert result.problems == []
            (first,) = result.appointments
            async with db.unit_of_work(write=False) as session:
                kept = [s.id for s in (await days.day(session, day)).spans]
                truth = await appointment_repository.active_spans(
                    session, row.center_id, *days.bounds(day)
                )
            assert sorted(kept) == sorted(s.id for s in truth)  # each booking counted once
            return first
        finally:
            await db.dispose()

    first = asyncio.run(book_with_stale_day())
    # Same day, after the nurse's patient leaves, not on top of them at 09:00.
    assert first.start_at.astimezone(tz) == datetime.combine(day, time(11), tz)


def test_a_planned_booking_the_database_refuses_leaves_the_course_transaction_usable(
    server: Server, nurse: httpx.Client
) -> None:
    """A planner's copy of the patient's appointments can miss one booked a moment ago at
    another center, which no day lock covers. The database refuses the overlapping session;
    the planner reads the patient again and the transaction goes on (no savepoint needed)."""
    here = make_center(nurse)
    chair = make_chair(nurse, here["id"])
    elsewhere = make_center(nurse)
    patient = make_patient(nurse)
    tz = ZoneInfo(here["timezone"])
    day = date.today() + timedelta(days=9)
    start = datetime.combine(day, time(9), tz)
    taken = book(nurse, patient["id"], make_chair(nurse, elsewhere["id"])["id"], start.isoformat())
    assert taken.status_code == 201, taken.text

    async def book_with_stale_patient() -> None:
        db = Database(server.database_url)
        try:
            async with db.unit_of_work() as session:
                days = CenterDays(
                    await center_repository.get_center(session, uuid.UUID(here["id"]))
                )
                week = timedelta(days=7)
                stale = PatientSpans(uuid.UUID(patient["id"]), start - week, start + week)
                what = placement.CourseSession(uuid.uuid4(), "maintenance", 1, Decimal(70))
                try:
                    await placement.book_planned(
                        session,
                        days,
                        uuid.UUID(chair["id"]),
                        stale,
                        start,
                        start + timedelta(hours=3),
                        None,
                        what,
                    )
                except BookingConflict:
                    pass
                else:
                    raise AssertionError("the overlapping session was booked")
                assert [s.id for s in stale.spans] == [uuid.UUID(taken.json()["id"])]
                # The transaction is still usable.
                assert await appointment_repository.patient_exists(
                    session, uuid.UUID(patient["id"])
                )
        finally:
            await db.dispose()

    asyncio.run(book_with_stale_patient())


def test_a_day_full_of_chairs_still_has_room_for_a_bed(server: Server, nurse: httpx.Client) -> None:
    """A booking run remembers a day found full, per kind of chair: the chairs being taken
    says nothing about the beds."""
    center = make_center(nurse)
    chair = make_chair(nurse, center["id"])
    make_chair(nurse, center["id"], kind="bed")
    in_a_chair = course_starting_soon(nurse, center["id"])
    in_a_bed = course_starting_soon(nurse, center["id"], chair_kind="bed")
    day = date.fromisoformat(in_a_chair["start_date"])
    tz = ZoneInfo(center["timezone"])
    taken = book(
        nurse,
        make_patient(nurse)["id"],
        chair["id"],
        datetime.combine(day, time(7), tz).isoformat(),
        minutes=12 * 60,
    )
    assert taken.status_code == 201, taken.text

    async def book_both() -> list[date]:
        db = Database(server.database_url)
        try:
            async with db.unit_of_work(write=False) as session:
                days = CenterDays(
                    await center_repository.get_center(session, uuid.UUID(center["id"]))
                )
            firsts = []
            for course in (in_a_chair, in_a_bed):  # the chair course first: it finds the day full
                async with db.unit_of_work() as session:
                    row = await courses.get_course(
                        session, uuid.UUID(course["id"]), for_update=True
                    )
                    result = await course_booking.book_through(session, row, day, None, days)
                firsts.append(result.appointments[0].start_at.astimezone(tz).date())
            return firsts
        finally:
            await db.dispose()

    chair_day, bed_day = asyncio.run(book_both())
    assert chair_day > day and bed_day == day


def test_a_course_that_fails_is_flagged_and_the_run_goes_on(
    server: Server, nurse: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first course's transaction fails half-way; the center it read in that
    transaction is read again, and the next course books."""
    center = make_center(nurse)
    make_chair(nurse, center["id"])
    made = [course_starting_soon(nurse, center["id"]) for _ in range(2)]
    real = course_booking.book_through
    failed: list[uuid.UUID] = []

    async def first_one_fails(session: Any, course: Any, *args: Any, **kwargs: Any) -> Any:
        if not failed:
            failed.append(course.id)
            await real(session, course, *args, **kwargs)  # books, then it rolls back
            raise RuntimeError("a bug")
        return await real(session, course, *args, **kwargs)

    monkeypatch.setattr(course_booking, "book_through", first_one_fails)

    async def run_it() -> dict[str, int]:
        db = Database(server.database_url)
        try:
            return (await scheduling_jobs.auto_book(db, uuid.UUID(center["id"]))).counts
        finally:
            await db.dispose()

    counts = asyncio.run(run_it())
    assert counts["courses"] == 2 and counts["failed"] == 1 and counts["booked"] == 3
    bad = next(c for c in made if c["id"] == str(failed[0]))
    good = next(c for c in made if c["id"] != str(failed[0]))
    assert booked(nurse, bad["patient_id"]) == []  # rolled back, nothing half-booked
    assert len(booked(nurse, good["patient_id"])) == 3


def test_bookings_written_together_that_the_database_refuses_are_booked_again_one_by_one(
    server: Server, nurse: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run writes a course's bookings in one statement once it has placed them all. The
    patient is booked at another center in between (a real booking, committed through the
    API), which no day lock covers: PostgreSQL refuses the overlapping row, the course's
    transaction is lost, and the run books the course again one booking at a time, around
    the new appointment."""
    if server.kind == "sqlite":
        pytest.skip("SQLite has one writer at a time: nothing commits while the run writes")
    here = make_center(nurse)
    make_chair(nurse, here["id"])
    elsewhere = make_center(nurse)
    other_chair = make_chair(nurse, elsewhere["id"])
    course = course_starting_soon(nurse, here["id"])
    real = placement.write_booked
    refused: list[str] = []

    async def patient_booked_elsewhere_first(session: Any, appointments: Any) -> None:
        if not refused:
            first = min(appointments, key=lambda a: a.start_at)
            minutes = int((first.end_at - first.start_at).total_seconds() // 60)
            taken = book(
                nurse, course["patient_id"], other_chair["id"], first.start_at.isoformat(), minutes
            )
            assert taken.status_code == 201, taken.text
        try:
            await real(session, appointments)
        except placement.BatchRefused as exc:
            refused.append(str(exc))
            raise

    monkeypatch.setattr(placement, "write_booked", patient_booked_elsewhere_first)

    async def run_it() -> dict[str, int]:
        db = Database(server.database_url)
        try:
            return (await scheduling_jobs.auto_book(db, uuid.UUID(here["id"]))).counts
        finally:
            await db.dispose()

    counts = asyncio.run(run_it())
    assert len(refused) == 1  # refused once, and not written together again
    assert (counts["failed"], counts["booked"], counts["unbookable"]) == (0, 3, 0)
    mine = booked(nurse, course["patient_id"])
    at: dict[str, list[tuple[datetime, datetime]]] = {a["center_id"]: [] for a in mine}
    for a in mine:
        at[a["center_id"]].append(
            (datetime.fromisoformat(a["start"]), datetime.fromisoformat(a["end"]))
        )
    assert len(at[here["id"]]) == 3 and len(at[elsewhere["id"]]) == 1
    ((other_start, other_end),) = at[elsewhere["id"]]
    assert all(e <= other_start or s >= other_end for s, e in at[here["id"]])


def test_a_closure_or_a_chair_out_of_service_added_mid_run_is_respected(
    server: Server, nurse: httpx.Client
) -> None:
    """The run re-reads a day under its lock before booking into it: a closure or a chair
    taken out of service after the run first read the day counts."""
    center = make_center(nurse)
    chairs = []
    for label in ("A-1", "B-2"):  # the planner tries A-1 first
        r = nurse.post(f"/api/v1/centers/{center['id']}/chairs", json={"label": label})
        assert r.status_code == 201, r.text
        chairs.append(r.json())
    closed = course_starting_soon(nurse, center["id"])
    idle = course_starting_soon(nurse, center["id"])
    day = date.fromisoformat(closed["start_date"])
    tz = ZoneInfo(center["timezone"])

    async def run() -> tuple[Any, Any]:
        db = Database(server.database_url)
        try:
            async with db.unit_of_work(write=False) as session:
                days = CenterDays(
                    await center_repository.get_center(session, uuid.UUID(center["id"]))
                )
                assert (await days.day(session, day)).is_open
            shut = await asyncio.to_thread(
                nurse.post,
                f"/api/v1/centers/{center['id']}/closures",
                json={"date": day.isoformat(), "reason": "burst pipe"},
            )
            assert shut.status_code == 201, shut.text
            async with db.unit_of_work() as session:
                row = await courses.get_course(session, uuid.UUID(closed["id"]), for_update=True)
                first = await course_booking.book_through(session, row, day, None, days)
            # A fresh copy of the next week's day, then chair A-1 leaves service.
            later = day + timedelta(days=7)
            async with db.unit_of_work(write=False) as session:
                await days.day(session, later)
            off = await asyncio.to_thread(
                nurse.patch,
                f"/api/v1/chairs/{chairs[0]['id']}",
                json={"active": False},
                headers={"If-Match": f'"{chairs[0]["version"]}"'},
            )
            assert off.status_code == 200, off.text
            async with db.unit_of_work() as session:
                row = await courses.get_course(session, uuid.UUID(idle["id"]), for_update=True)
                row.start_date = later
                second = await course_booking.book_through(session, row, later, None, days)
            return first, second
        finally:
            await db.dispose()

    first, second = asyncio.run(run())
    (session_one,) = first.appointments
    assert session_one.start_at.astimezone(tz).date() != day  # not on the day that closed
    (session_two,) = second.appointments
    assert str(session_two.chair_id) == chairs[1]["id"]  # not in the chair out of service


def test_a_run_reads_an_edited_center_again_and_clears_a_flag_raised_after_it_began(
    server: Server, nurse: httpx.Client, billing: httpx.Client
) -> None:
    center = make_center(nurse)
    make_chair(nurse, center["id"])
    first, second = (course_starting_soon(nurse, center["id"]) for _ in range(2))

    async def run() -> tuple[int, int]:
        db = Database(server.database_url)
        try:
            the_run = scheduling_jobs._Run(db, {"booked": 0, "unbookable": 0})
            await the_run.book(uuid.UUID(first["id"]))
            before = the_run.days[uuid.UUID(center["id"])].center.version
            edited = await asyncio.to_thread(
                nurse.patch,
                f"/api/v1/centers/{center['id']}",
                json={"turnover_minutes": 20},
                headers={"If-Match": f'"{before}"'},
            )
            assert edited.status_code == 200, edited.text
            # Another run flagged the second course after this one read its flags.
            await scheduling_jobs._flag(db, uuid.UUID(second["id"]), "stuck elsewhere")
            async with db.unit_of_work() as session:
                row = await courses.get_course(session, uuid.UUID(second["id"]))
                row.unbookable = {"reason": "stuck elsewhere"}
            await the_run.book(uuid.UUID(second["id"]))
            return before, the_run.days[uuid.UUID(center["id"])].center.version
        finally:
            await db.dispose()

    before, after = asyncio.run(run())
    assert after == before + 1
    flags = billing.get(
        "/api/v1/alerts", params={"kind": "course_unbookable", "patient_id": second["patient_id"]}
    ).json()["items"]
    assert [a["status"] for a in flags] == ["resolved"]
