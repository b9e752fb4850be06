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
from typing import Any

from sqlalchemy import Insert, and_, bindparam, exists, or_, select
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
        statement, values = _entry(session, course, appointment_id, earliest, latest, minutes)
        await session.execute(statement, values)


def _entry(
    session: AsyncSession,
    course: Course,
    appointment_id: uuid.UUID | None,
    earliest: date,
    latest: date,
    minutes: int,
) -> tuple[Insert, dict[str, object]]:
    """The course's entry, in one statement: not when it waits already or waited for this
    before (staff removed it, or it was booked); a waiting entry another transaction put on
    first is skipped quietly (the unique index refuses the second, DO NOTHING drops it)."""
    stuck = appointment_id is None
    values: dict[str, object] = {
        "id": uuid.uuid4(),
        "center_id": course.center_id,
        "patient_id": course.patient_id,
        "course_id": course.id,
        "appointment_id": appointment_id,
        "earliest": earliest,
        "latest": latest,
        "duration_minutes": minutes,
        "chair_kind": course.chair_kind,
        "priority": STUCK_PRIORITY if stuck else LATE_PRIORITY,
        "status": "waiting",
        "note": STUCK_NOTE if stuck else LATE_NOTE,
        "created_at": utcnow(),
        "created_by": None,
        "version": 1,
    }
    return _INSERT_ENTRY[session.get_bind().dialect.name == "postgresql"], values


def _insert_entry(dialect: Any) -> Insert:
    """Built once per kind of database (a booking run puts hundreds of courses on)."""
    table = WaitlistEntry.__table__
    columns = [c.key for c in table.columns]
    row = select(*(bindparam(c.key, type_=c.type) for c in table.columns))
    waited = exists().where(
        WaitlistEntry.course_id == bindparam("course_id"),
        or_(
            WaitlistEntry.status == "waiting",
            and_(
                WaitlistEntry.appointment_id.is_not_distinct_from(bindparam("appointment_id")),
                WaitlistEntry.latest == bindparam("latest"),
            ),
        ),
    )
    insert: Insert = dialect.insert(table).from_select(columns, row.where(~waited))
    return insert.on_conflict_do_nothing()  # type: ignore[attr-defined, no-any-return]


_INSERT_ENTRY = {True: _insert_entry(postgresql), False: _insert_entry(sqlite)}
