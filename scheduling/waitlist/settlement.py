"""What the waitlist settles when something it depends on changed. Importing the package
registers both settlers (see `__init__.py`).

- `CHAIR_FREED`: a cancel, a no-show or a move freed a chair's span; what of it is still free
  when the change settles becomes an opening (`openings.record`), offered to the best-ranked
  entry it fits (`offers.offer_next`).
- `WAITLIST_WANTED`: the booking run booked a course session after its window's target date,
  or could not book the course's next dose at all; the course goes on the waitlist by itself,
  for the days from its window's start to the target (a late session) or to the window's end
  (a dose not booked). A course that already has a waiting entry gets no second one (the
  unique index refuses it, quietly), nor one for a window it waited for before."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core import settle
from core.problems import Problem
from scheduling.appointments.models import Appointment
from scheduling.courses.models import Course
from scheduling.courses.sessions import (
    center_of,
    load_context,
    maintenance_split,
    session_figures,
    today_at,
)
from scheduling.waitlist import offers, openings
from scheduling.waitlist.models import WaitlistEntry

LATE_PRIORITY = 3  # a session booked, only later than its target: as a nurse's default entry
STUCK_PRIORITY = 2  # a dose not booked at all comes first
LATE_NOTE = "put on by the booking run: the session was booked after its target date"
STUCK_NOTE = "put on by the booking run: no slot in the dose's window"


@settle.settles(settle.CHAIR_FREED)
async def offer_openings(
    session: AsyncSession, freed: list[tuple[uuid.UUID, uuid.UUID, datetime, datetime, str]]
) -> None:
    for appointment_id, chair_id, start, end, cause in freed:
        for opening in await openings.record(session, appointment_id, chair_id, start, end, cause):
            await offers.offer_next(session, opening)


@settle.settles(settle.WAITLIST_WANTED)
async def wait_for_sooner(
    session: AsyncSession, wanted: list[tuple[uuid.UUID, uuid.UUID | None, date, date]]
) -> None:
    for course_id, appointment_id, earliest, latest in wanted:
        await _add(session, course_id, appointment_id, earliest, latest)


async def _add(
    session: AsyncSession,
    course_id: uuid.UUID,
    appointment_id: uuid.UUID | None,
    earliest: date,
    latest: date,
) -> None:
    course = await session.get(Course, course_id)
    if course is None or course.status != "active":
        return
    center = await center_of(session, course)
    earliest = max(earliest, today_at(center))
    if earliest > latest or await _waited_before(session, course_id, appointment_id, latest):
        return
    minutes = await _minutes(session, course, appointment_id)
    if minutes is None or not 15 <= minutes <= 720:
        return  # a dose no opening of one visit could take
    entry = WaitlistEntry(
        id=uuid.uuid4(),
        center_id=course.center_id,
        patient_id=course.patient_id,
        course_id=course.id,
        appointment_id=appointment_id,
        earliest=earliest,
        latest=latest,
        duration_minutes=minutes,
        chair_kind=course.chair_kind,
        priority=STUCK_PRIORITY if appointment_id is None else LATE_PRIORITY,
        status="waiting",
        note=STUCK_NOTE if appointment_id is None else LATE_NOTE,
        created_by=None,
    )
    try:
        async with session.begin_nested():  # a refused entry leaves with the savepoint
            session.add(entry)
            await session.flush()
    except IntegrityError:
        return  # a waiting entry for the course came first: that one stays


async def _waited_before(
    session: AsyncSession, course_id: uuid.UUID, appointment_id: uuid.UUID | None, latest: date
) -> bool:
    """The course waits already, or waited for this before (staff removed it, or it was
    booked): it is not put on again."""
    rows = await session.execute(
        select(WaitlistEntry.status, WaitlistEntry.appointment_id, WaitlistEntry.latest).where(
            WaitlistEntry.course_id == course_id
        )
    )
    return any(
        status == "waiting" or (appt == appointment_id and last == latest)
        for status, appt, last in rows
    )


async def _minutes(
    session: AsyncSession, course: Course, appointment_id: uuid.UUID | None
) -> int | None:
    """How long the visit is: the booked session's, or the dose not booked as the planner
    would give it (None for a dose given over two days, or one not to be worked out)."""
    if appointment_id is not None:
        appt = await session.get(Appointment, appointment_id)
        if appt is None or appt.status != "booked":
            return None
        return offers.moving_minutes(appt)
    try:
        ctx = await load_context(session, course)
        first = not ctx.sessions
        if maintenance_split(ctx, first).days not in (None, 1):
            return None
        return session_figures(
            course, ctx.product, ctx.patient, "maintenance", first, days=1
        ).chair_minutes
    except Problem:
        return None
