"""Placing an appointment: every booking rule checked under the day's lock, then the row written.
Flushes; never commits.

The application checks give friendly errors naming the conflicting appointments; the
database has the last word (exclusion constraints / triggers, see migrations). Nurse capacity
cannot be expressed as a constraint, so bookings for one center and day are serialised: an
advisory lock on PostgreSQL, the database write lock (BEGIN IMMEDIATE) on SQLite.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import Table, insert, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core import appends, locks
from core.clock import utcnow
from core.outbox import events
from core.problems import (
    BookingConflict,
    Conflict,
    Invalid,
)
from scheduling.appointments import repository as appointment_repository
from scheduling.appointments.center_days import CenterDays, PatientSpans
from scheduling.appointments.models import ACTIVE_STATUSES, Appointment, AppointmentChange
from scheduling.appointments.repository import SlotFacts
from scheduling.appointments.rules import span_problem
from scheduling.centers import repository as center_repository
from scheduling.centers.repository import ChairAtCenter
from scheduling.centers.rules import (
    DayRules,
    Span,
    census_conflicts,
    day_rules,
    holding_chairs,
    opening_problem,
    overlapping,
    start_conflicts,
)
from scheduling.localtime import (
    AmbiguousLocalTime,
    NonexistentLocalTime,
    day_bounds,
    local_date,
    strict_instant,
    zone,
)


def _ids(items: Sequence[uuid.UUID]) -> list[str]:
    return sorted(str(i) for i in items)


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
    facts: SlotFacts | None = None,
) -> None:
    """Raise unless [start, end) on the chair for the patient keeps every booking rule.
    `facts`: the slot's, when the caller has read them already (see `slot_facts`)."""
    if problem := span_problem(start, end):
        raise Invalid(problem)
    if not place.chair_active:
        raise Invalid("the chair is out of service")
    tz = zone(place.timezone)
    day = local_date(start, tz)
    if facts is None:
        facts = await slot_facts(session, place, patient_id, start, end)
    closures = {day: facts.closure} if facts.closure is not None else {}
    calendar = await center_repository.center_calendar(session, place, day, day, closures)
    rules = day_rules(calendar, day)
    if problem := opening_problem(rules, start, end):
        raise Invalid(problem)
    for reason in facts.chair_blocks:
        raise Invalid(f"the chair is out of service then ({reason})")

    # From here on the decision depends on the day's other bookings: hold the day's lock
    # for as few round trips as possible (the lock, then one read).
    await locks.center_day(session, place.center_id, day)
    spans, busy = await appointment_repository.day_and_patient(
        session, place.center_id, *day_bounds(day, tz), patient_id, start, end, exclude
    )
    check_day(rules, [s for s in spans if s.id != exclude], place.chair_id, start, end, busy)


async def slot_facts(
    session: AsyncSession,
    place: ChairAtCenter,
    patient_id: uuid.UUID,
    start: datetime,
    end: datetime,
) -> SlotFacts:
    """What the rules need to know of the slot before the day's lock, in one statement."""
    return await appointment_repository.slot_facts(
        session,
        center_id=place.center_id,
        chair_id=place.chair_id,
        patient_id=patient_id,
        day=local_date(start, zone(place.timezone)),
        start=start,
        end=end,
    )


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
    taken = [s for s in holding_chairs(rules, spans, start, end) if s.chair_id == chair_id]
    if taken:
        if any(s.start < end and s.end > start for s in taken):
            why = "the chair is taken at that time"
        else:
            why = "the chair is being cleaned then (the center's turnover between patients)"
        raise BookingConflict(why, conflicts=_ids([s.id for s in taken]))
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
    appt: Appointment,
    action: str,
    actor_id: uuid.UUID | None,
    before: str | None,
    reason: str | None = None,
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
        "reason": reason,
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


# On the table, not the mapped class: an ORM-enabled INSERT costs more Python per row, and
# these rows come back as the Appointment already built (`_insert_booked`).
_APPOINTMENTS: Table = Appointment.__table__  # type: ignore[assignment]
_INSERT_APPOINTMENT = insert(_APPOINTMENTS)
# Skips a row an exclusion constraint refuses (DO NOTHING handles those too); no id, no row.
_INSERT_APPOINTMENT_UNLESS_REFUSED = (
    postgresql.insert(_APPOINTMENTS).on_conflict_do_nothing().returning(_APPOINTMENTS.c.id)
)


async def _history(session: AsyncSession, *changes: dict[str, Any]) -> None:
    """An appointment's history rows, written as the transaction commits (`core.appends`)."""
    await appends.add_all(session, AppointmentChange, changes)


@dataclass(frozen=True)
class CourseSession:
    """Which session of which course an appointment is, and the dose it was planned with."""

    course_id: uuid.UUID
    phase: str
    sequence: int
    dose_g: Decimal
    part: int = 1  # 2: the second day of a maintenance dose given over two


async def book_planned(
    session: AsyncSession,
    days: CenterDays,
    chair_id: uuid.UUID,
    patient: PatientSpans,
    start: datetime,
    end: datetime,
    actor_id: uuid.UUID | None,
    course_session: CourseSession,
    *,
    read_under_lock: bool = False,
    write: bool = True,
) -> Appointment:
    """Book a slot a course planner chose from `days` (so inside opening hours, on a chair of
    the center): lock the day, read it again, and check the slot against what is there now.
    The fresh read replaces the planner's copy of the day, so after a refusal it plans with
    the truth. `patient`: the patient's active appointments, read again after a refusal only
    the database saw. The caller adds the booking to both copies once its savepoint holds,
    and writes the history and events of what it kept with `record_booked`.
    `read_under_lock`: the caller locked the day and read it since (`CenterDays.refresh_all`,
    a planner locking all its days at once), so `days` holds the truth already.
    `write=False`: checked, not written; the caller writes what it keeps in one statement
    (`write_booked`)."""
    center = days.center
    day = local_date(start, zone(center.timezone))
    if read_under_lock:
        if not locks.holds(session, "center_day", (center.id, day)):
            raise RuntimeError("a day read under its lock is one whose lock is held")
        fresh = await days.day(session, day)
    else:
        await locks.center_day(session, center.id, day)
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
    if not write:
        return _booked(
            center.id,
            chair_id,
            patient.patient_id,
            start,
            end,
            actor_id,
            course_session,
            turnover_minutes=center.turnover_minutes,
        )
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
            turnover_minutes=center.turnover_minutes,
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
    turnover_minutes: int,
    refusal_keeps_transaction: bool = False,
    recorded: bool = True,
    reason: str | None = None,
    appointment_id: uuid.UUID | None = None,
) -> Appointment:
    """The appointment comes back detached from the session: it was a plain INSERT.

    A row the overlap guards refuse raises BookingConflict. On PostgreSQL that error aborts
    the transaction unless the caller holds a savepoint; `refusal_keeps_transaction` asks
    for an insert that skips a refused row instead (SQLite undoes only the statement).
    `recorded=False` leaves its history row and event to the caller (see `record_booked`)."""
    appt = _booked(
        center_id,
        chair_id,
        patient_id,
        start,
        end,
        actor_id,
        course_session,
        turnover_minutes=turnover_minutes,
        appointment_id=appointment_id,
    )
    # Plain INSERTs: the hot path of the service needs no unit-of-work bookkeeping.
    columns = _columns(appt)
    if refusal_keeps_transaction and session.get_bind().dialect.name == "postgresql":
        if await session.scalar(_INSERT_APPOINTMENT_UNLESS_REFUSED, columns) is None:
            if course_session is not None and await _course_session_taken(session, course_session):
                raise Conflict("this session of the course is already booked")
            raise BookingConflict(
                "the chair or the patient was booked for that time by someone else",
                conflicts=[],
            )
    elif recorded and not session.in_nested_transaction():
        # Its history row and event (and what else the request holds to write, such as its
        # audit event) are written by the INSERT's own statement: see `appends.riding`.
        await _history(session, _record(appt, "booked", actor_id, None, reason))
        await events.emit(session, "appointment.booked", **_event(appt))
        statement, params = appends.riding(session, _INSERT_APPOINTMENT, columns)
        async with _guarded():
            await session.execute(statement, params)
        return appt
    else:
        async with _guarded():
            await session.execute(_INSERT_APPOINTMENT, columns)
    if recorded:
        await _history(session, _record(appt, "booked", actor_id, None, reason))
        await events.emit(session, "appointment.booked", **_event(appt))
    return appt


def _booked(
    center_id: uuid.UUID,
    chair_id: uuid.UUID,
    patient_id: uuid.UUID,
    start: datetime,
    end: datetime,
    actor_id: uuid.UUID | None,
    course_session: CourseSession | None,
    *,
    turnover_minutes: int,
    appointment_id: uuid.UUID | None = None,
) -> Appointment:
    """A new booked appointment, not yet written."""
    now = utcnow()
    return Appointment(
        id=appointment_id or uuid.uuid4(),
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
        part=course_session.part if course_session else 1,
        turnover_minutes=turnover_minutes,
        outside_window=False,
        pinned=False,
    )


def _columns(appt: Appointment) -> dict[str, Any]:
    return {c.key: getattr(appt, c.key) for c in _APPOINTMENTS.columns}


class BatchRefused(Exception):
    """The database refused a booking written with others (`write_booked`): the
    transaction cannot go on. The caller books the course again, one booking at a time."""


async def write_booked(session: AsyncSession, appointments: Sequence[Appointment]) -> None:
    """Bookings checked under their days' locks (`book_planned(write=False)`), written in
    one statement. Only the database's guards can refuse one now: the patient's booking at
    another center, which no day lock covers."""
    if not appointments:
        return
    try:
        await session.execute(_INSERT_APPOINTMENT, [_columns(a) for a in appointments])
    except IntegrityError as exc:
        raise BatchRefused(type(exc.orig).__name__) from exc


async def _course_session_taken(session: AsyncSession, what: CourseSession) -> bool:
    """Whether the course's session of that number is booked already: DO NOTHING skips a row
    the unique (course, phase, sequence) refuses as quietly as one the overlap guards do."""
    taken = await session.scalar(
        select(Appointment.id).where(
            Appointment.course_id == what.course_id,
            Appointment.phase == what.phase,
            Appointment.sequence == what.sequence,
            Appointment.part == what.part,
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
    await _history(session, *(_record(a, "booked", actor_id, None) for a in appointments))
    await events.emit_many(session, "appointment.booked", [_event(a) for a in appointments])
