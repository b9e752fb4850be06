"""The named locks of core/locks.py: taken in their order they are all held until the
transaction ends; taken out of order they are refused, on both databases."""

from __future__ import annotations

import asyncio
import inspect
import uuid
from datetime import date, timedelta

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from core import locks
from core.db import Database
from core.locks import LockOrderError
from insurance import service as insurance
from insurance.models import Authorization
from insurance.schemas import AuthorizationCreate, CoverageCreate, PayerCreate
from scheduling.appointments import booking
from scheduling.appointments.models import Appointment
from scheduling.appointments.schemas import AppointmentCreate
from scheduling.courses.models import Course
from tests.support.records import a_center, a_chair, a_course, a_patient
from tests.support.transactions import rolled_back

MONDAY = date(2027, 1, 11)


def test_the_order_is_the_order_the_lock_functions_are_listed_in() -> None:
    """A reader finds the order by reading the module top to bottom."""
    functions = [getattr(locks, name) for name in locks.ORDER]
    lines = [inspect.getsourcelines(f)[1] for f in functions]
    assert lines == sorted(lines)


async def _records(db: Database) -> tuple[Course, Appointment, Authorization]:
    """A course, an appointment and an authorization, committed, each in a transaction of its
    own (each settles its patient's cover, the last lock of the order)."""
    async with db.unit_of_work() as session:
        center = await a_center(session)
        chair = await a_chair(session, center)
        patient = await a_patient(session)
    async with db.unit_of_work() as session:
        visit = {
            "patient_id": patient.id,
            "chair_id": chair.id,
            "start": "2027-01-12T14:00:00Z",
            "duration_minutes": 120,
        }
        placed = await booking.book(session, AppointmentCreate.model_validate(visit), None)
    async with db.unit_of_work() as session:
        course = await a_course(session, center, patient, MONDAY)
    async with db.unit_of_work() as session:
        payer_in = {
            "name": f"Payer {uuid.uuid4().hex[:6]}",
            "turnaround_days": 5,
            "expedited_turnaround_days": 2,
            "renewal_margin_days": 7,
        }
        payer = await insurance.create_payer(session, PayerCreate.model_validate(payer_in))
        coverage_in = {"payer_id": payer.id, "member_id": "M1", "effective_from": MONDAY}
        coverage = await insurance.create_coverage(
            session, patient.id, CoverageCreate.model_validate(coverage_in)
        )
        auth_in = {
            "patient_id": patient.id,
            "coverage_id": coverage.id,
            "service_code": "J1561",
            "valid_from": MONDAY,
            "valid_to": MONDAY + timedelta(days=180),
            "units_approved": 6,
        }
        auth = await insurance.create_authorization(
            session, AuthorizationCreate.model_validate(auth_in), None
        )
    return course, placed.appointment, auth


async def _take_all_in_order(
    session: AsyncSession, course: Course, appt: Appointment, auth: Authorization
) -> None:
    user = uuid.uuid4()
    assert await locks.idempotency_key(session, user, "POST /x", "key-1")
    assert [c.id for c in await locks.courses(session, Course, [course.id])] == [course.id]
    await locks.course_planning(session, [course.center_id])
    locked = await locks.appointment(session, Appointment, appt.id)
    assert locked is not None and locked.id == appt.id
    await locks.center_day(session, course.center_id, MONDAY)
    await locks.patient_cover(session, [course.patient_id])
    locked_auth = await locks.authorization(session, Authorization, auth.id)
    assert locked_auth is not None and locked_auth.id == auth.id
    for name, key in [
        ("courses", course.id),
        ("course_planning", course.center_id),
        ("appointment", appt.id),
        ("center_day", (course.center_id, MONDAY)),
        ("patient_cover", course.patient_id),
        ("authorization", auth.id),
    ]:
        assert locks.holds(session, name, key)


def test_every_lock_taken_in_order_is_held_until_the_transaction_ends(migrated_url: str) -> None:
    async def body() -> None:
        db = Database(migrated_url)
        try:
            # The rows must be committed for another connection to see them locked.
            course, appt, auth = await _records(db)
            async with db.unit_of_work() as session:
                await _take_all_in_order(session, course, appt, auth)
                if db.dialect == "postgresql":
                    await _others_wait(migrated_url, course, appt, auth)
            if db.dialect == "postgresql":
                await _others_wait(migrated_url, course, appt, auth, held=False)
        finally:
            await db.dispose()

    asyncio.run(body())


async def _others_wait(
    url: str, course: Course, appt: Appointment, auth: Authorization, held: bool = True
) -> None:
    """From another connection: each advisory lock is taken (or free), each row is locked
    (or not), without waiting."""
    from sqlalchemy.engine import make_url

    other = await asyncpg.connect(
        make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    )
    try:
        async with other.transaction():
            for name in (
                f"{course.center_id}/course-planning",
                f"{course.center_id}/{MONDAY.isoformat()}",
                f"{course.patient_id}/coverage",
            ):
                got = await other.fetchval("SELECT pg_try_advisory_xact_lock($1)", locks._key(name))
                assert got is not held, name
        for table, row_id in (
            ("courses", course.id),
            ("appointments", appt.id),
            ("authorizations", auth.id),
        ):
            try:
                async with other.transaction():
                    await other.execute(
                        f"SELECT id FROM {table} WHERE id = $1 FOR UPDATE NOWAIT", row_id
                    )
                locked = False
            except asyncpg.LockNotAvailableError:
                locked = True
            assert locked is held, table
    finally:
        await other.close()


def test_a_lock_asked_for_after_a_later_one_is_refused(migrated_url: str) -> None:
    async def body() -> None:
        db = Database(migrated_url)
        try:
            async with rolled_back(db) as session:
                center_id = uuid.uuid4()
                await locks.center_day(session, center_id, MONDAY)
                with pytest.raises(
                    LockOrderError, match="course_planning lock asked for after the center_day"
                ):
                    await locks.course_planning(session, [center_id])
                # Taking again what the transaction holds is never out of order.
                await locks.center_day(session, center_id, MONDAY)
            async with rolled_back(db) as session:
                await locks.patient_cover(session, [uuid.uuid4()])
                with pytest.raises(LockOrderError):
                    await locks.courses(session, Course, [uuid.uuid4()])
        finally:
            await db.dispose()

    asyncio.run(body())


def test_no_cover_lock_after_a_day_at_a_center_the_transaction_does_not_plan(
    migrated_url: str,
) -> None:
    """What makes the planner's exception safe: whoever holds a day and then waits on a
    patient's cover holds that center's planning lock too (a course session moved to another
    center plans there as well)."""

    async def body() -> None:
        db = Database(migrated_url)
        try:
            async with rolled_back(db) as session:
                planned, elsewhere = uuid.uuid4(), uuid.uuid4()
                await locks.course_planning(session, [planned])
                await locks.center_day(session, planned, MONDAY)
                await locks.patient_cover(session, [uuid.uuid4()])  # a planned day: fine
            async with rolled_back(db) as session:
                await locks.course_planning(session, [planned])
                await locks.center_day(session, elsewhere, MONDAY)
                with pytest.raises(LockOrderError, match="does not hold"):
                    await locks.patient_cover(session, [uuid.uuid4()])
                with pytest.raises(LockOrderError, match="does not hold"):
                    await locks.try_patient_cover(session, [uuid.uuid4()])
        finally:
            await db.dispose()

    asyncio.run(body())


def test_a_planner_may_take_its_centers_days_after_a_patients_cover(migrated_url: str) -> None:
    """The one exception: under a center's planning lock, a `block` center's planner books a
    session, asks insurance (the cover lock), then books the next day."""

    async def body() -> None:
        db = Database(migrated_url)
        try:
            async with rolled_back(db) as session:
                planned, other = uuid.uuid4(), uuid.uuid4()
                await locks.course_planning(session, [planned])
                await locks.center_day(session, planned, MONDAY)
                await locks.patient_cover(session, [uuid.uuid4()])
                await locks.center_day(session, planned, MONDAY + timedelta(days=1))
                with pytest.raises(LockOrderError):
                    await locks.center_day(session, other, MONDAY)  # not planned here
        finally:
            await db.dispose()

    asyncio.run(body())


def test_the_next_transaction_of_a_session_starts_holding_no_lock(migrated_url: str) -> None:
    async def body() -> None:
        db = Database(migrated_url)
        try:
            patient_id, center_id = uuid.uuid4(), uuid.uuid4()
            async with AsyncSession(db.engine) as session:
                async with session.begin():
                    await locks.patient_cover(session, [patient_id])
                    assert locks.holds(session, "patient_cover", patient_id)
                async with session.begin():
                    assert not locks.holds(session, "patient_cover", patient_id)
                    await locks.course_planning(session, [center_id])  # in order again
        finally:
            await db.dispose()

    asyncio.run(body())
