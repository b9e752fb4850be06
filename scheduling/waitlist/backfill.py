"""Accepting an offer: the opening is booked with the booking use cases, never written
directly, so every booking rule holds. Flushes; never commits.

- An entry without a course books an ordinary appointment of the entry's duration.
- An entry for a course session (`appointment_id`) moves that session into the opening, as a
  nurse's move does (`courses.changes.move`): it stays inside its window, later sessions
  follow it, and at a `block` center a move insurance would not pay for is refused. So does an
  entry with a course and no session, with the course's first booked session after the offer.
- A course with no booked session after it, stuck where the booking could not place its next
  maintenance dose (`course.unbookable`), has that dose booked into the opening: the next
  session number, the dose and chair time the planner would give it, under the course's and
  the day's locks, through the same `book_span` a nurse's booking uses.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core import locks, settle
from core.clock import utcnow
from core.problems import Conflict, IllegalTransition
from scheduling import cover
from scheduling.appointments import booking
from scheduling.appointments.models import Appointment
from scheduling.appointments.placement import CourseSession
from scheduling.appointments.schemas import AppointmentCreate, AppointmentReschedule
from scheduling.centers import repository as center_repository
from scheduling.courses import changes
from scheduling.courses.models import Course
from scheduling.courses.sessions import (
    last_sequence,
    load_context,
    maintenance_split,
    session_figures,
)
from scheduling.waitlist import offers
from scheduling.waitlist.models import WaitlistEntry, WaitlistOffer, WaitlistOpening


@settle.use_case
async def accept(
    session: AsyncSession, offer_id: uuid.UUID, actor_id: uuid.UUID | None
) -> WaitlistOffer:
    """Book the offer. 409 once it was answered, after its hold, or when the booking rules
    refuse it now (nothing changes then: the offer stays open until its hold ends)."""
    offer = await offers.claim(session, offer_id, "accepted", actor_id)
    opening = await session.get(WaitlistOpening, offer.opening_id)
    entry = await session.get(WaitlistEntry, offer.entry_id)
    assert opening is not None and entry is not None
    if opening.status != "open":
        raise IllegalTransition(f"the opening is {opening.status}")
    if entry.status != "waiting":
        raise IllegalTransition(f"the waitlist entry is {entry.status}")
    appt = await _book(session, offer, opening, entry, actor_id)
    offer.appointment_id = appt.id
    offer.start_at, offer.end_at = appt.start_at, appt.end_at  # as booked
    opening.status, opening.closed_at = "filled", utcnow()
    entry.status = "booked"
    await session.flush()
    return offer


async def _book(
    session: AsyncSession,
    offer: WaitlistOffer,
    opening: WaitlistOpening,
    entry: WaitlistEntry,
    actor_id: uuid.UUID | None,
) -> Appointment:
    if entry.course_id is None:
        data = AppointmentCreate.model_validate(
            {
                "patient_id": entry.patient_id,
                "chair_id": opening.chair_id,
                "start": offer.start_at.isoformat(),  # as a request gives it
                "duration_minutes": entry.duration_minutes,
            }
        )
        return (await booking.book(session, data, actor_id)).appointment
    session_id = entry.appointment_id or await _next_session(session, entry.course_id, offer)
    if session_id is not None:
        return await _bring_forward(session, session_id, offer, opening, actor_id)
    return await _book_stuck_dose(session, entry.course_id, offer, opening, actor_id)


async def _next_session(
    session: AsyncSession, course_id: uuid.UUID, offer: WaitlistOffer
) -> uuid.UUID | None:
    """The course's first booked session after the offer's start: the one it would bring
    forward."""
    return await session.scalar(
        select(Appointment.id)
        .where(
            Appointment.course_id == course_id,
            Appointment.status == "booked",
            Appointment.start_at > offer.start_at,
        )
        .order_by(Appointment.start_at, Appointment.id)
        .limit(1)
    )


async def _bring_forward(
    session: AsyncSession,
    appointment_id: uuid.UUID,
    offer: WaitlistOffer,
    opening: WaitlistOpening,
    actor_id: uuid.UUID | None,
) -> Appointment:
    appt = await session.get(Appointment, appointment_id)
    if appt is None or appt.status != "booked":
        raise Conflict("the course session to bring forward is no longer booked")
    if appt.start_at <= offer.start_at:
        raise Conflict("the course session is already at or before the opening")
    move = AppointmentReschedule.model_validate(
        {"start": offer.start_at.isoformat(), "chair_id": opening.chair_id}
    )
    placed, _ = await changes.move(session, appt.id, appt.version, move, actor_id)
    return placed.appointment


async def _book_stuck_dose(
    session: AsyncSession,
    course_id: uuid.UUID,
    offer: WaitlistOffer,
    opening: WaitlistOpening,
    actor_id: uuid.UUID | None,
) -> Appointment:
    """The maintenance dose the booking could not place, booked into the opening."""
    (course,) = await locks.courses(session, Course, [course_id])
    stuck = course.unbookable
    if course.status != "active" or stuck is None or stuck.get("phase") != "maintenance":
        raise Conflict("the course has no session to bring forward and none waiting to be booked")
    await locks.course_planning(session, [course.center_id])
    ctx = await load_context(session, course)
    first = not ctx.sessions
    if maintenance_split(ctx, first).days not in (None, 1):
        raise Conflict("the course's dose is given over two days: one opening cannot take it")
    figures = session_figures(course, ctx.product, ctx.patient, "maintenance", first, days=1)
    sequence = await last_sequence(session, course.id, "maintenance") + 1
    place = await center_repository.chair_at_center(session, opening.chair_id)
    what = CourseSession(course.id, "maintenance", sequence, figures.dose_g)
    end = offer.start_at + timedelta(minutes=figures.chair_minutes)
    placed = await booking.book_span(
        session, place, course.patient_id, offer.start_at, end, actor_id, what
    )
    if ctx.center.coverage_policy == "block":
        why = await cover.check().why_uncovered(session, course.patient_id, placed.appointment.id)
        if why is not None:
            raise Conflict(f"insurance would not pay for it (the center blocks that): {why}")
    course.unbookable = None
    settle.mark(session, settle.COURSE_BOOKED, course.id)
    settle.mark(session, settle.COVER, course.patient_id)
    return placed.appointment
