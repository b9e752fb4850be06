"""Booking, moving and progressing appointments as nurses ask. Flushes; never commits."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core import locks, settle
from core.clock import utcnow
from core.outbox import events
from core.pagination import page
from core.problems import (
    IllegalTransition,
    Invalid,
    NotFound,
    Problem,
    ensure_version,
)
from core.repository import get_or_404
from scheduling.appointments import repository as appointment_repository
from scheduling.appointments.models import Appointment, AppointmentChange
from scheduling.appointments.placement import (
    CourseSession,
    _event,
    _guarded,
    _history,
    _insert_booked,
    _place,
    _record,
    local_start,
    slot_facts,
)
from scheduling.appointments.repository import SlotFacts
from scheduling.appointments.rules import next_status, past_start_problem, timing_problem
from scheduling.appointments.schemas import AppointmentCreate, AppointmentReschedule
from scheduling.centers import repository as center_repository
from scheduling.centers.models import Center
from scheduling.centers.repository import ChairAtCenter
from scheduling.localtime import (
    day_bounds,
    zone,
)


@dataclass(frozen=True)
class Placed:
    """A booked or moved appointment and its center's time zone, for the reply."""

    appointment: Appointment
    timezone: str


async def book(
    session: AsyncSession,
    data: AppointmentCreate,
    actor_id: uuid.UUID | None,
    course_session: CourseSession | None = None,
    appointment_id: uuid.UUID | None = None,
) -> Placed:
    """Book one appointment as a nurse asked for it (under `appointment_id`, if given)."""
    facts = None
    if data.start is not None:
        start = data.start
        end = _end(data, start)
        # The chair, its center and the slot in one statement (see `chair_and_slot`).
        place, facts = await appointment_repository.chair_and_slot(
            session, data.chair_id, data.patient_id, start, end
        )
    else:
        assert data.local_date is not None and data.local_time is not None
        place = await center_repository.chair_at_center(session, data.chair_id)
        start = local_start(data.local_date, data.local_time, place.timezone)
        end = _end(data, start)
    if problem := past_start_problem(start, utcnow(), data.record_reason):
        raise Invalid(problem)
    return await book_span(
        session,
        place,
        data.patient_id,
        start,
        end,
        actor_id,
        course_session,
        data.record_reason,
        appointment_id,
        facts,
    )


def _end(data: AppointmentCreate, start: datetime) -> datetime:
    return (
        data.end if data.end is not None else start + timedelta(minutes=data.duration_minutes or 0)
    )


async def check(
    session: AsyncSession, data: AppointmentCreate, actor_id: uuid.UUID | None
) -> Problem | None:
    """What booking `data` would answer, without booking it: the real booking runs in a
    savepoint that is always rolled back (row, history and event alike)."""
    savepoint = await session.begin_nested()
    try:
        await book(session, data, actor_id)
    except Problem as problem:
        await savepoint.rollback()
        return problem
    await savepoint.rollback()
    return None


async def book_span(
    session: AsyncSession,
    place: ChairAtCenter,
    patient_id: uuid.UUID,
    start: datetime,
    end: datetime,
    actor_id: uuid.UUID | None,
    course_session: CourseSession | None = None,
    reason: str | None = None,
    appointment_id: uuid.UUID | None = None,
    facts: SlotFacts | None = None,
) -> Placed:
    """Book [start, end) on the chair for the patient, if every rule allows it. `facts`: the
    slot's, when the caller has read them already."""
    if facts is None:
        facts = await slot_facts(session, place, patient_id, start, end)
    if not facts.patient_found:
        raise NotFound("no such patient")
    await _place(session, place, patient_id, start, end, facts=facts)
    appt = await _insert_booked(
        session,
        place.center_id,
        place.chair_id,
        patient_id,
        start,
        end,
        actor_id,
        course_session,
        turnover_minutes=place.turnover_minutes,
        reason=reason,
        appointment_id=appointment_id,
    )
    return Placed(appt, place.timezone)


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
    and each sees the status the previous one left. A course session's course is locked
    first: see `scheduling.courses.changes.locked_session`."""
    if not for_update:
        return await get_or_404(session, Appointment, appointment_id, "appointment")
    appt = await locks.appointment(session, Appointment, appointment_id)
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
    place = await center_repository.chair_at_center(session, data.chair_id or appt.chair_id)
    start = new_start(data, place.timezone) or appt.start_at
    if data.end is not None:
        end = data.end
    elif data.duration_minutes is not None:
        end = start + timedelta(minutes=data.duration_minutes)
    else:
        end = start + (appt.end_at - appt.start_at)
    if start != appt.start_at and (
        problem := past_start_problem(start, utcnow(), data.record_reason)
    ):
        raise Invalid(problem)
    reason = data.record_reason or data.override_reason
    return await move_span(session, appt, place, start, end, actor_id, reason)


def new_start(data: AppointmentReschedule, tz_name: str) -> datetime | None:
    """Where a move asks the visit to start, if it asks."""
    if data.local_date is not None and data.local_time is not None:
        return local_start(data.local_date, data.local_time, tz_name)
    return data.start


async def move_span(
    session: AsyncSession,
    appt: Appointment,
    place: ChairAtCenter,
    start: datetime,
    end: datetime,
    actor_id: uuid.UUID | None,
    reason: str | None = None,
) -> Placed:
    """Move a booked appointment to [start, end) on the chair, if every rule allows it. The
    place it leaves is marked freed: once the change settles, what is still free of it is a
    waitlist opening (an optimiser's moves may fill it again in the same transaction)."""
    freed = (appt.id, appt.chair_id, appt.start_at, appt.end_at, "moved")
    await _place(session, place, appt.patient_id, start, end, exclude=appt.id)
    appt.center_id, appt.chair_id = place.center_id, place.chair_id
    appt.start_at, appt.end_at = start, end
    appt.turnover_minutes = place.turnover_minutes
    async with _guarded():
        await session.flush()
    await _history(session, _record(appt, "rescheduled", actor_id, appt.status, reason))
    await events.emit(session, "appointment.rescheduled", **_event(appt))
    if freed[1:4] != (appt.chair_id, appt.start_at, appt.end_at):
        settle.mark(session, settle.CHAIR_FREED, freed)
    return Placed(appt, place.timezone)


async def transition(
    session: AsyncSession,
    appt: Appointment,
    action: str,
    actor_id: uuid.UUID | None,
    reason: str | None = None,
) -> Appointment:
    before = appt.status
    target = next_status(before, action)
    if target is None:
        raise IllegalTransition(f"cannot {action} an appointment that is {before}")
    tz_name, opens_minutes = await center_repository.checkin_rules(session, appt.center_id)
    if problem := timing_problem(action, appt.start_at, utcnow(), zone(tz_name), opens_minutes):
        raise IllegalTransition(problem)
    appt.status = target
    appt.status_changed_at = utcnow()
    await session.flush()
    await _history(session, _record(appt, action, actor_id, before, reason))
    if target == "cancelled":
        await events.emit(session, "appointment.cancelled", **_event(appt))
    if target in ("cancelled", "no_show"):  # its chair is free: a waitlist opening, if ahead
        freed = (appt.id, appt.chair_id, appt.start_at, appt.end_at, target)
        settle.mark(session, settle.CHAIR_FREED, freed)
    return appt


async def history(session: AsyncSession, appointment_id: uuid.UUID) -> list[AppointmentChange]:
    rows = await session.scalars(
        select(AppointmentChange)
        .where(AppointmentChange.appointment_id == appointment_id)
        .order_by(AppointmentChange.at, AppointmentChange.id)
    )
    return list(rows)


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
        center = await center_repository.get_center(session, center_id)
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
