"""Scheduling's background jobs. Each takes the database and commits its own steps: one
transaction per course, so one course that fails is recorded and the others go on."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select, true

from app.db import Database
from app.logs import describe
from insurance import alerts, coverage
from scheduling import course_booking, courses
from scheduling.localtime import lenient_instant, zone
from scheduling.models import Center, Course

Progress = Callable[[int, int], None]  # done, total
log = logging.getLogger("chairside.jobs")


async def auto_book(
    db: Database, center_id: uuid.UUID | None = None, progress: Progress | None = None
) -> dict[str, int]:
    """Book every active course's sessions due within its center's booking horizon. Booking
    what is already booked books nothing, so a re-run or a takeover does no harm (and the
    database refuses a course session twice). A course that cannot be booked as planned, or
    fails, raises a `course_unbookable` alert; one that books cleanly clears it."""
    async with db.unit_of_work(write=False) as session:
        course_ids = list(
            await session.scalars(
                select(Course.id)
                .where(
                    Course.status == "active",
                    Course.center_id == center_id if center_id is not None else true(),
                )
                .order_by(Course.id)
            )
        )
    counts = {"courses": len(course_ids), "booked": 0, "unbookable": 0, "failed": 0}
    for done, course_id in enumerate(course_ids, start=1):
        try:
            problem = await _book_one(db, course_id, counts)
        except Exception as exc:  # one course's failure must not stop the others
            counts["failed"] += 1
            log.warning("auto_book: a course failed", extra={"error": describe(exc)})
            problem = f"the booking run failed ({type(exc).__name__})"
        if problem is not None:
            try:
                await _flag(db, course_id, problem)
            except Exception as exc:  # nor may a failure to flag it
                log.warning("auto_book: flagging a course failed", extra={"error": describe(exc)})
        if progress is not None:
            progress(done, len(course_ids))
    return counts


async def _book_one(db: Database, course_id: uuid.UUID, counts: dict[str, int]) -> str | None:
    async with db.unit_of_work() as session:
        course = await courses.get_course(session, course_id, for_update=True)
        if course.status != "active":
            return None  # stopped since the list was read
        center = await course_booking.center_of(session, course)
        through = course_booking.today_at(center) + timedelta(days=center.booking_horizon_days)
        result = await course_booking.book_through(session, course, through, None)
        counts["booked"] += len(result.appointments)
        if result.appointments:  # nothing booked, nothing to recompute: re-runs stay cheap
            await coverage.recompute_patient(session, course.patient_id)
        stuck = result.unbookable
        if stuck is None:
            await alerts.course_booked(session, course.id)
            return None
        counts["unbookable"] += 1
        return f"{stuck.phase} session {stuck.sequence} ({stuck.window.target}): {stuck.reason}"


async def _flag(db: Database, course_id: uuid.UUID, problem: str) -> None:
    async with db.unit_of_work() as session:
        course = await session.get(Course, course_id)
        if course is not None:
            await alerts.course_unbookable(session, course, problem)


async def centers_due_for_booking(
    db: Database, booked_since: dict[uuid.UUID, datetime]
) -> list[uuid.UUID]:
    """Centers whose nightly booking time has passed today (their local day) and that have not
    been booked since it did. `booked_since`: each center's last finished booking run."""
    async with db.unit_of_work(write=False) as session:
        rows = (
            await session.execute(select(Center.id, Center.timezone, Center.auto_book_at))
        ).all()
    due: list[uuid.UUID] = []
    for center_id, tz_name, at in rows:
        tz = zone(tz_name)
        now = datetime.now(tz)
        if now.time() < at:
            continue
        since = lenient_instant(now.date(), at, tz)
        last = booked_since.get(center_id)
        if last is None or last < since:
            due.append(center_id)
    return due
