"""What the waitlist settles when something it depends on changed. Importing the package
registers both settlers (see `__init__.py`).

- `CHAIR_FREED`: a cancel, a no-show or a move freed a chair's span; what of it is still free
  when the change settles becomes an opening (`openings.record`), offered to the best-ranked
  entry it fits (`offers.offer_next`).
- `WAITLIST_WANTED`: the booking run booked a course session after its window's target date,
  or could not book the course's next dose at all; the course goes on the waitlist by itself,
  for the days from its window's start to the target (a late session) or to the window's end
  (a dose not booked). A course that already has a waiting entry gets no second one (the
  unique index refuses it, quietly), nor one for a window it waited for before. One
  statement an entry: the run fires this for most courses it books at a busy center."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import Insert, and_, exists, literal, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from core import settle
from core.clock import utcnow
from scheduling.courses.models import Course
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
    session: AsyncSession, wanted: list[tuple[uuid.UUID, uuid.UUID | None, date, date, int | None]]
) -> None:
    """`wanted`: course, its late session (None: the dose not booked), the days it waits for
    (from today on) and how long the visit is (None: a dose no single opening could take),
    as the booking run planned them: it knows them all, so nothing is read again here."""
    for course_id, appointment_id, earliest, latest, minutes in wanted:
        if minutes is None or not 15 <= minutes <= 720 or earliest > latest:
            continue  # a dose no opening of one visit could take
        course = await session.get(Course, course_id)  # the booking run's, already loaded
        if course is None or course.status != "active":
            continue
        await session.execute(_entry(session, course, appointment_id, earliest, latest, minutes))


def _entry(
    session: AsyncSession,
    course: Course,
    appointment_id: uuid.UUID | None,
    earliest: date,
    latest: date,
    minutes: int,
) -> Insert:
    """The course's entry, in one statement: not when it waits already or waited for this
    before (staff removed it, or it was booked); a waiting entry another transaction put on
    first is skipped quietly (the unique index refuses the second, DO NOTHING drops it)."""
    stuck = appointment_id is None
    values = {
        WaitlistEntry.id: uuid.uuid4(),
        WaitlistEntry.center_id: course.center_id,
        WaitlistEntry.patient_id: course.patient_id,
        WaitlistEntry.course_id: course.id,
        WaitlistEntry.appointment_id: appointment_id,
        WaitlistEntry.earliest: earliest,
        WaitlistEntry.latest: latest,
        WaitlistEntry.duration_minutes: minutes,
        WaitlistEntry.chair_kind: course.chair_kind,
        WaitlistEntry.priority: STUCK_PRIORITY if stuck else LATE_PRIORITY,
        WaitlistEntry.status: "waiting",
        WaitlistEntry.note: STUCK_NOTE if stuck else LATE_NOTE,
        WaitlistEntry.created_at: utcnow(),
        WaitlistEntry.created_by: None,
        WaitlistEntry.version: 1,
    }
    waited = exists().where(
        WaitlistEntry.course_id == course.id,
        or_(
            WaitlistEntry.status == "waiting",
            and_(
                WaitlistEntry.appointment_id.is_not_distinct_from(appointment_id),
                WaitlistEntry.latest == latest,
            ),
        ),
    )
    row = select(*(literal(v, type_=c.type) for c, v in values.items())).where(~waited)
    if session.get_bind().dialect.name == "postgresql":
        return (
            postgresql.insert(WaitlistEntry).from_select(list(values), row).on_conflict_do_nothing()
        )
    return sqlite.insert(WaitlistEntry).from_select(list(values), row).on_conflict_do_nothing()
