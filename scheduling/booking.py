"""Booking, moving and progressing appointments. Flushes; never commits.

The application checks give friendly errors naming the conflicting appointments; the
database has the last word (exclusion constraints / triggers, see migrations). Nurse capacity
cannot be expressed as a constraint, so bookings for one center and day are serialised: an
advisory lock on PostgreSQL, the database write lock (BEGIN IMMEDIATE) on SQLite.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import insert, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.outbox import events
from app.pagination import page
from app.problems import (
    BookingConflict,
    Conflict,
    IllegalTransition,
    Invalid,
    NotFound,
    ensure_version,
)
from scheduling import repository
from scheduling.center_days import CenterDays, PatientSpans
from scheduling.localtime import (
    AmbiguousLocalTime,
    NonexistentLocalTime,
    day_bounds,
    local_date,
    strict_instant,
    zone,
)
from scheduling.models import ACTIVE_STATUSES, Appointment, AppointmentChange, Center, Course
from scheduling.repository import ChairAtCenter
from scheduling.rules import (
    DayRules,
    Span,
    census_conflicts,
    day_rules,
    next_status,
    opening_problem,
    overlapping,
    span_problem,
    start_conflicts,
)
from scheduling.schemas import AppointmentCreate, AppointmentReschedule


def _ids(items: Sequence[uuid.UUID]) -> list[str]:
    return sorted(str(i) for i in items)


async def lock_center_day(session: AsyncSession, center_id: uuid.UUID, day: date) -> None:
    """Serialise capacity decisions for one center and local day until the transaction ends."""
    if session.get_bind().dialect.name != "postgresql":
        return  # SQLite write transactions already hold the database lock.
    await _advisory_lock(session, f"{center_id}/{day.isoformat()}")


async def _advisory_lock(session: AsyncSession, name: str) -> None:
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    key = int.from_bytes(digest, "big", signed=True)
    await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


async def lock_course_planning(session: AsyncSession, center_ids: list[uuid.UUID]) -> None:
    """Serialise course planners (booking runs, cascades, changes to course sessions) at the
    centers. A planner locks several days in an order set by preferences, so two of them could
    otherwise each hold a day the other wants. Taken after the course row and before any day;
    several centers in one order."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for center_id in sorted(set(center_ids)):
        await _advisory_lock(session, f"{center_id}/course-planning")


def local_start(day: date, hhmm: str, tz_name: str) -> datetime:
    try:
        return strict_instant(day, time.fromisoformat(hhmm), zone(tz_name))
    except (NonexistentLocalTime, AmbiguousLocalTime) as exc:
        raise Invalid(str(exc)) from exc


async def _place(
    session: AsyncSession,
    place: ChairAtCenter,
    patient_id: uuid.UUID,
    start: datetime,
    end: datetime,
    exclude: uuid.UUID | None = None,
) -> None:
    """Raise unless [start, end) on the chair for the patient keeps every booking rule."""
    if problem := span_problem(start, end):
        raise Invalid(problem)
    if not place.chair_active:
        raise Invalid("the chair is out of service")
    tz = zone(place.timezone)
    day = local_date(start, tz)
    rules = day_rules(await repository.center_calendar(session, place, day, day), day)
    if problem := opening_problem(rules, start, end):
        raise Invalid(problem)
    for reason in await repository.chair_block_reasons(session, place.chair_id, start, end):
        raise Invalid(f"the chair is out of service then ({reason})")

    # From here on the decision depends on the day's other bookings: hold the day's lock
    # for as few round trips as possible.
    await lock_center_day(session, place.center_id, day)
    spans = [
        s
        for s in await repository.active_spans(session, place.center_id, *day_bounds(day, tz))
        if s.id != exclude
    ]
    busy = await repository.patient_overlaps(session, patient_id, start, end, exclude)
    check_day(rules, spans, place.chair_id, start, end, busy)


def check_day(
    rules: DayRules,
    spans: Sequence[Span],
    chair_id: uuid.UUID,
    start: datetime,
    end: datetime,
    patient_busy: Sequence[uuid.UUID],
) -> None:
    """Raise unless [start, end) on the chair fits among the day's other active appointments
    (`spans`) and the patient's own overlapping ones (`patient_busy`)."""
    taken = [s.id for s in overlapping(spans, start, end) if s.chair_id == chair_id]
    if taken:
        raise BookingConflict("the chair is taken at that time", conflicts=_ids(taken))
    if patient_busy:
        raise BookingConflict(
            "the patient already has an appointment at that time", conflicts=_ids(patient_busy)
        )
    full = census_conflicts(rules, spans, start, end)
    if full is not None:
        raise BookingConflict(
            "nurse capacity is full at that time (nurses on duty x patients per nurse)",
            conflicts=_ids([s.id for s in full]),
        )
    crowded = start_conflicts(rules, spans, start)
    if crowded is not None:
        raise BookingConflict(
            "too many infusion starts within 30 minutes for the nurses on duty",
            conflicts=_ids([s.id for s in crowded]),
        )


@asynccontextmanager
async def _guarded() -> AsyncIterator[None]:
    """A racing booking that slipped past the checks is stopped by the database."""
    try:
        yield
    except IntegrityError as exc:
        message = str(exc.orig)
        if "course" in message:
            raise Conflict("this session of the course is already booked") from exc
        if "overlap" in message:
            raise BookingConflict(
                "the chair or the patient was booked for that time by someone else",
                conflicts=[],
            ) from exc
        raise


def _record(
    appt: Appointment, action: str, actor_id: uuid.UUID | None, before: str | None
) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "at": utcnow(),
        "appointment_id": appt.id,
        "actor_id": actor_id,
        "action": action,
        "from_status": before,
        "to_status": appt.status,
        "chair_id": appt.chair_id,
        "start_at": appt.start_at,
        "end_at": appt.end_at,
    }


def _event(appt: Appointment) -> dict[str, Any]:
    """What other systems hear about an appointment: ids and times, nothing clinical."""
    return {
        "appointment_id": appt.id,
        "patient_id": appt.patient_id,
        "center_id": appt.center_id,
        "chair_id": appt.chair_id,
        "start": appt.start_at,
        "end": appt.end_at,
        "status": appt.status,
    }


_INSERT_APPOINTMENT = insert(Appointment)
# Skips a row an exclusion constraint refuses (DO NOTHING handles those too); no id, no row.
_INSERT_APPOINTMENT_UNLESS_REFUSED = (
    postgresql.insert(Appointment).on_conflict_do_nothing().returning(Appointment.id)
)
_INSERT_CHANGE = insert(AppointmentChange)


@dataclass(frozen=True)
class Placed:
    """A booked or moved appointment and its center's time zone, for the reply."""

    appointment: Appointment
    timezone: str


@dataclass(frozen=True)
class CourseSession:
    """Which session of which course an appointment is, and the dose it was planned with."""

    course_id: uuid.UUID
    phase: str
    sequence: int
    dose_g: Decimal


async def book(
    session: AsyncSession,
    data: AppointmentCreate,
    actor_id: uuid.UUID | None,
    course_session: CourseSession | None = None,
) -> Placed:
    """Book one appointment as a nurse asked for it."""
    place = await repository.chair_at_center(session, data.chair_id)
    if data.start is not None:
        start = data.start
    else:
        assert data.local_date is not None and data.local_time is not None
        start = local_start(data.local_date, data.local_time, place.timezone)
    end = (
        data.end if data.end is not None else start + timedelta(minutes=data.duration_minutes or 0)
    )
    return await book_span(session, place, data.patient_id, start, end, actor_id, course_session)


async def book_span(
    session: AsyncSession,
    place: ChairAtCenter,
    patient_id: uuid.UUID,
    start: datetime,
    end: datetime,
    actor_id: uuid.UUID | None,
    course_session: CourseSession | None = None,
) -> Placed:
    """Book [start, end) on the chair for the patient, if every rule allows it."""
    if not await repository.patient_exists(session, patient_id):
        raise NotFound("no such patient")
    await _place(session, place, patient_id, start, end)
    appt = await _insert_booked(
        session, place.center_id, place.chair_id, patient_id, start, end, actor_id, course_session
    )
    return Placed(appt, place.timezone)


async def book_planned(
    session: AsyncSession,
    days: CenterDays,
    chair_id: uuid.UUID,
    patient: PatientSpans,
    start: datetime,
    end: datetime,
    actor_id: uuid.UUID | None,
    course_session: CourseSession,
) -> Appointment:
    """Book a slot a course planner chose from `days` (so inside opening hours, on a chair of
    the center): lock the day, read it again, and check the slot against what is there now.
    The fresh read replaces the planner's copy of the day, so after a refusal it plans with
    the truth. `patient`: the patient's active appointments, read again after a refusal only
    the database saw. The caller adds the booking to both copies once its savepoint holds,
    and writes the history and events of what it kept with `record_booked`."""
    center = days.center
    day = local_date(start, zone(center.timezone))
    await lock_center_day(session, center.id, day)
    fresh = await days.refresh(session, day)
    if not fresh.is_open:
        raise BookingConflict("the center closed that day meanwhile", conflicts=[])
    if chair_id in fresh.idle_chairs:
        raise BookingConflict("the chair was taken out of service meanwhile", conflicts=[])
    for b in fresh.blocks:
        if b.chair_id == chair_id and b.start < end and b.end > start:
            raise BookingConflict(f"the chair is out of service then ({b.reason})", conflicts=[])
    busy = [s.id for s in overlapping(patient.spans, start, end)]
    check_day(fresh.rules, fresh.spans, chair_id, start, end, busy)
    try:
        # No savepoint needed: a refused row leaves the transaction usable on both databases.
        appt = await _insert_booked(
            session,
            center.id,
            chair_id,
            patient.patient_id,
            start,
            end,
            actor_id,
            course_session,
            refusal_keeps_transaction=True,
            recorded=False,
        )
    except BookingConflict:
        # Only a booking elsewhere can slip past the day's lock: the patient's, at another
        # center. Read the patient's appointments again before the next try.
        await patient.reload(session)
        raise
    return appt


async def _insert_booked(
    session: AsyncSession,
    center_id: uuid.UUID,
    chair_id: uuid.UUID,
    patient_id: uuid.UUID,
    start: datetime,
    end: datetime,
    actor_id: uuid.UUID | None,
    course_session: CourseSession | None,
    *,
    refusal_keeps_transaction: bool = False,
    recorded: bool = True,
) -> Appointment:
    """The appointment comes back detached from the session: it was a plain INSERT.

    A row the overlap guards refuse raises BookingConflict. On PostgreSQL that error aborts
    the transaction unless the caller holds a savepoint; `refusal_keeps_transaction` asks
    for an insert that skips a refused row instead (SQLite undoes only the statement).
    `recorded=False` leaves its history row and event to the caller (see `record_booked`)."""
    now = utcnow()
    appt = Appointment(
        id=uuid.uuid4(),
        center_id=center_id,
        chair_id=chair_id,
        patient_id=patient_id,
        start_at=start,
        end_at=end,
        status="booked",
        version=1,
        booked_by=actor_id,
        status_changed_at=now,
        created_at=now,
        updated_at=now,
        course_id=course_session.course_id if course_session else None,
        phase=course_session.phase if course_session else None,
        sequence=course_session.sequence if course_session else None,
        dose_g=course_session.dose_g if course_session else None,
    )
    # Plain INSERTs: the hot path of the service needs no unit-of-work bookkeeping.
    columns = {c.key: getattr(appt, c.key) for c in Appointment.__table__.columns}
    if refusal_keeps_transaction and session.get_bind().dialect.name == "postgresql":
        if await session.scalar(_INSERT_APPOINTMENT_UNLESS_REFUSED, columns) is None:
            if course_session is not None and await _course_session_taken(session, course_session):
                raise Conflict("this session of the course is already booked")
            raise BookingConflict(
                "the chair or the patient was booked for that time by someone else",
                conflicts=[],
            )
    else:
        async with _guarded():
            await session.execute(_INSERT_APPOINTMENT, columns)
    if recorded:
        await session.execute(_INSERT_CHANGE, _record(appt, "booked", actor_id, None))
        await events.emit(session, "appointment.booked", **_event(appt))
    return appt


async def _course_session_taken(session: AsyncSession, what: CourseSession) -> bool:
    """Whether the course's session of that number is booked already: DO NOTHING skips a row
    the unique (course, phase, sequence) refuses as quietly as one the overlap guards do."""
    taken = await session.scalar(
        select(Appointment.id).where(
            Appointment.course_id == what.course_id,
            Appointment.phase == what.phase,
            Appointment.sequence == what.sequence,
            Appointment.status.in_(ACTIVE_STATUSES),  # as the unique index has it
        )
    )
    return taken is not None


async def record_booked(
    session: AsyncSession, appointments: Sequence[Appointment], actor_id: uuid.UUID | None
) -> None:
    """The history rows and `appointment.booked` events of a planner's bookings, in one
    statement each (a course books several sessions in one transaction)."""
    if not appointments:
        return
    await session.execute(
        _INSERT_CHANGE, [_record(a, "booked", actor_id, None) for a in appointments]
    )
    await events.emit_many(session, "appointment.booked", [_event(a) for a in appointments])


async def patient_of(session: AsyncSession, appointment_id: uuid.UUID) -> uuid.UUID:
    patient_id = await session.scalar(
        select(Appointment.patient_id).where(Appointment.id == appointment_id)
    )
    if patient_id is None:
        raise NotFound("no such appointment")
    return patient_id


async def get_appointment(
    session: AsyncSession, appointment_id: uuid.UUID, *, for_update: bool = False
) -> Appointment:
    """The appointment; `for_update` locks its row (PostgreSQL) so racing changes queue up
    and each sees the status the previous one left.

    A course session's change may re-place the course's other sessions, so its course row and
    its center's planning lock are taken first: everyone who changes a course's sessions takes
    the course, the planning, the appointments, then the days, in that order, and no two of
    them can wait on each other in a circle."""
    if for_update:
        course_id = await session.scalar(
            select(Appointment.course_id).where(Appointment.id == appointment_id)
        )
        if course_id is not None:
            center_id = await session.scalar(
                select(Course.center_id).where(Course.id == course_id).with_for_update()
            )
            if center_id is not None:
                await lock_course_planning(session, [center_id])
    appt = await session.get(Appointment, appointment_id, with_for_update=for_update)
    if appt is None:
        raise NotFound("no such appointment")
    return appt


async def reschedule(
    session: AsyncSession,
    appt: Appointment,
    expected_version: int,
    data: AppointmentReschedule,
    actor_id: uuid.UUID | None,
) -> Placed:
    ensure_version(appt.version, expected_version, "appointment")
    if appt.status != "booked":
        raise IllegalTransition(f"a {appt.status} appointment cannot be moved")
    place = await repository.chair_at_center(session, data.chair_id or appt.chair_id)
    start = data.start or appt.start_at
    if data.end is not None:
        end = data.end
    elif data.duration_minutes is not None:
        end = start + timedelta(minutes=data.duration_minutes)
    else:
        end = start + (appt.end_at - appt.start_at)
    return await move_span(session, appt, place, start, end, actor_id)


async def move_span(
    session: AsyncSession,
    appt: Appointment,
    place: ChairAtCenter,
    start: datetime,
    end: datetime,
    actor_id: uuid.UUID | None,
) -> Placed:
    """Move a booked appointment to [start, end) on the chair, if every rule allows it."""
    await _place(session, place, appt.patient_id, start, end, exclude=appt.id)
    appt.center_id, appt.chair_id = place.center_id, place.chair_id
    appt.start_at, appt.end_at = start, end
    async with _guarded():
        await session.flush()
    await session.execute(_INSERT_CHANGE, _record(appt, "rescheduled", actor_id, appt.status))
    await events.emit(session, "appointment.rescheduled", **_event(appt))
    return Placed(appt, place.timezone)


async def transition(
    session: AsyncSession, appt: Appointment, action: str, actor_id: uuid.UUID | None
) -> Appointment:
    before = appt.status
    target = next_status(before, action)
    if target is None:
        raise IllegalTransition(f"cannot {action} an appointment that is {before}")
    appt.status = target
    appt.status_changed_at = utcnow()
    await session.flush()
    await session.execute(_INSERT_CHANGE, _record(appt, action, actor_id, before))
    if target == "cancelled":
        await events.emit(session, "appointment.cancelled", **_event(appt))
    return appt


async def list_appointments(
    session: AsyncSession,
    *,
    center_id: uuid.UUID | None,
    patient_id: uuid.UUID | None,
    day: date | None,
    status: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[Appointment], str | None]:
    query = select(Appointment)
    if center_id is not None:
        query = query.where(Appointment.center_id == center_id)
    if patient_id is not None:
        query = query.where(Appointment.patient_id == patient_id)
    if status is not None:
        query = query.where(Appointment.status == status)
    if day is not None:
        if center_id is None:
            raise Invalid("filtering by date needs center_id (dates are local to a center)")
        center = await repository.get_center(session, center_id)
        first, last = day_bounds(day, zone(center.timezone))
        query = query.where(Appointment.start_at >= first, Appointment.start_at < last)
    return await page(
        session,
        query,
        [Appointment.start_at, Appointment.id],
        limit,
        cursor,
    )


async def center_zones(session: AsyncSession, center_ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    rows = await session.execute(
        select(Center.id, Center.timezone).where(Center.id.in_(center_ids))
    )
    return {i: tz for i, tz in rows}
