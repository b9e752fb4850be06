"""Scheduling's background jobs: the nightly booking run, the no-show sweep and appointment
reminders. Each takes the database and commits its own steps (one transaction per course, or
per missed appointment), so one that fails is recorded and the others go on."""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    ScalarSelect,
    Uuid,
    bindparam,
    case,
    func,
    or_,
    select,
    true,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from core import clock, settle
from core.clock import utcnow
from core.db import Database
from core.logs import describe
from core.outbox import events
from core.problems import Problem
from patients.models import Patient
from scheduling.appointments import placement
from scheduling.appointments.center_days import CenterDays
from scheduling.appointments.models import ACTIVE_STATUSES, Appointment
from scheduling.catalog.models import Product
from scheduling.centers import repository as center_repository
from scheduling.centers.models import Center, CenterOpenings
from scheduling.centers.rules import day_rules
from scheduling.courses import booking as course_booking
from scheduling.courses import changes as session_changes
from scheduling.courses import service as courses
from scheduling.courses import sessions as course_sessions
from scheduling.courses.models import Course
from scheduling.levelling import service as levelling
from scheduling.localtime import day_bounds, lenient_instant, zone

Progress = Callable[[int, int], None]  # done, total
log = logging.getLogger("chairside.jobs")


@dataclass
class BookingRun:
    counts: dict[str, int]
    # Whose cover this run changed. Each course's transaction marked them due for review;
    # recomputing them together after the run costs a fraction of one recompute per course
    # (the job does, see app/jobs/registry.py). If the run dies first, the hourly sweep does.
    patients: list[uuid.UUID]


async def auto_book(
    db: Database, center_id: uuid.UUID | None = None, progress: Progress | None = None
) -> BookingRun:
    """Book every active course's sessions due within its center's booking horizon. Booking
    what is already booked books nothing, so a re-run or a takeover does no harm (and the
    database refuses a course session twice). A course that cannot be booked as planned, or
    fails, is flagged to billing (`course_unbookable`); one that books cleanly is cleared."""
    async with db.unit_of_work(write=False) as session:
        course_ids, skipped = await _courses_to_book(session, center_id)
    counts = {
        "courses": len(course_ids),
        "booked": 0,
        "unbookable": 0,
        "failed": 0,
        "skipped": skipped,  # stuck, and nothing they could use has changed since
    }
    run = _Run(db, counts)
    for done, course_id in enumerate(course_ids, start=1):
        try:
            await run.book(course_id)
        except Exception as exc:  # one course's failure must not stop the others
            counts["failed"] += 1
            run.forget()  # what it booked was rolled back
            log.warning("auto_book: a course failed", extra={"error": describe(exc)})
            try:  # its transaction rolled back: the flag goes in one of its own
                await _flag(db, course_id, f"the booking run failed ({type(exc).__name__})")
            except Exception as flag_exc:  # nor may a failure to flag it
                log.warning(
                    "auto_book: flagging a course failed", extra={"error": describe(flag_exc)}
                )
        if progress is not None:
            progress(done, len(course_ids))
    counts["optimised"] = await _even_out(db, run.booked)
    return BookingRun(counts, sorted(run.patients))


async def _even_out(db: Database, booked: dict[uuid.UUID, set[uuid.UUID]]) -> int:
    """At centers that ask for it, the optimiser re-places what the run booked (first fit
    stays where it finds nothing better); how many visits it moved."""
    moved = 0
    for center_id, ids in sorted(booked.items(), key=lambda kv: str(kv[0])):
        try:
            moved += await levelling.place_booked(db, center_id, ids)
        except Exception as exc:  # the run booked what it booked; evening out is a bonus
            log.warning("auto_book: evening out failed", extra={"error": describe(exc)})
    return moved


async def _courses_to_book(
    session: AsyncSession, center_id: uuid.UUID | None
) -> tuple[list[uuid.UUID], int]:
    """The active courses that may have something to book, in one query, and how many stuck
    ones were left alone. A course whose next session falls beyond its center's horizon,
    with nothing lost or stuck, is left alone (a booking run would find nothing to do); so is
    a stuck one whose key still holds (`stuck_key`): so a re-run costs little."""
    given = (*ACTIVE_STATUSES, "completed")
    mine = (Appointment.course_id == Course.id, Appointment.status.in_(given))
    last = select(func.max(Appointment.start_at)).where(*mine).scalar_subquery()
    loading = select(func.count()).where(*mine, Appointment.phase == "induction")
    # Doses, not visits: a dose given over two days is one of the course's cycles.
    upkeep = select(func.count(func.distinct(Appointment.sequence))).where(
        *mine, Appointment.phase == "maintenance"
    )
    # Read only for a course that has a key to check.
    seen = case(
        (Course.unbookable_key.is_not(None), _openings_seen(Course.center_id, Course.patient_id)),
        else_=None,
    )
    rows = await session.execute(
        select(
            Course,
            Center.timezone,
            Center.booking_horizon_days,
            last,
            loading.scalar_subquery(),
            upkeep.scalar_subquery(),
            seen,
            Center.version,
            Patient.version,
            Product.version,
        )
        .join(Center, Center.id == Course.center_id)
        .join(Patient, Patient.id == Course.patient_id)
        .join(Product, Product.id == Course.product_id)
        .where(
            Course.status == "active",
            Course.center_id == center_id if center_id is not None else true(),
        )
        .order_by(Course.id)
    )
    wanted: list[uuid.UUID] = []
    skipped = 0
    for course, tz_name, horizon, last_start, induction, maintenance, *versions in rows:
        if course.unbookable is not None and course.unbookable_key is not None:
            openings, center_version, patient_version, product_version = versions
            key = stuck_key(
                course, openings, center_version, patient_version, product_version, tz_name
            )
            if key == course.unbookable_key:
                skipped += 1
                continue
        if has_work(course, tz_name, horizon, last_start, induction, maintenance):
            wanted.append(course.id)
    return wanted, skipped


_Column = ColumnElement[uuid.UUID] | InstrumentedAttribute[uuid.UUID]


def _openings_seen(center_id: _Column, patient_id: _Column) -> ScalarSelect[Any]:
    """The openings versions of every center a course's booking depends on: its own, and
    those where its patient has appointments (busy times elsewhere keep a slot from them).
    Versions only grow, so the sum moves whenever one of them does."""
    patient_centers = select(Appointment.center_id).where(Appointment.patient_id == patient_id)
    return (
        select(func.coalesce(func.sum(CenterOpenings.version), 0))
        .where(
            or_(
                CenterOpenings.center_id == center_id,
                CenterOpenings.center_id.in_(patient_centers),
            )
        )
        .scalar_subquery()
    )


# Fields of the course that planning does not read, or that the booking run writes itself.
_NOT_PLANNED = frozenset(
    {"id", "version", "created_at", "updated_at", "unbookable", "unbookable_key"}
)
_PLANNED = tuple(c.key for c in Course.__table__.columns if c.key not in _NOT_PLANNED)


def stuck_key(
    course: Course,
    openings: int,
    center_version: int,
    patient_version: int,
    product_version: int,
    tz_name: str,
) -> str:
    """What a stuck course was planned with: the openings of the centers it depends on (new
    bookings only take room, so only a write that frees some moves them), its center's,
    patient's and product's versions, its own order, and the center's date (the window and
    the horizon move with it). Equal keys, equal inputs: the run would be stuck again."""
    order = repr(tuple(getattr(course, k) for k in _PLANNED))
    digest = hashlib.blake2b(order.encode(), digest_size=12).hexdigest()
    today = clock.today(zone(tz_name)).isoformat()
    return f"{openings}:{center_version}:{patient_version}:{product_version}:{today}:{digest}"


def has_work(
    course: Course,
    tz_name: str,
    horizon: int,
    last_start: datetime | None,
    induction: int,
    maintenance: int,
) -> bool:
    """Whether a booking run could book anything for the course now (see `book_through`)."""
    if course.unbookable or induction < course_sessions.induction_days_of(course):
        return True  # stuck last time, or loading days still to book or replace (a split too)
    if not course.interval_days:
        return False
    if course.cycles is not None and maintenance >= course.cycles:
        return False
    tz = zone(tz_name)
    through = clock.today(tz) + timedelta(days=horizon)
    if last_start is None:
        upcoming = course.start_date
    else:
        upcoming = last_start.astimezone(tz).date() + timedelta(days=course.interval_days)
    if course.end_date is not None and upcoming > course.end_date:
        return False
    return upcoming <= through


_CENTER_ID = bindparam("center_id", type_=Uuid)
_PATIENT_ID = bindparam("patient_id", type_=Uuid)
_PRODUCT_ID = bindparam("product_id", type_=Uuid)
# Read before the course is planned (a change after it moves them, so it is never missed):
# the center's version (its days are read afresh when it moved), the openings version of
# the center (so are they when it moved: something freed room on a day kept from before)
# and the versions a stuck course's key is made of. The patient and the product come whole,
# in the same round trip: the planner finds them loaded.
_VERSIONS = (
    select(
        Center.version,
        select(CenterOpenings.version)
        .where(CenterOpenings.center_id == _CENTER_ID)
        .scalar_subquery(),
        _openings_seen(_CENTER_ID, _PATIENT_ID),
        Patient,
        Product,
    )
    .select_from(Center)
    .join(Patient, Patient.id == _PATIENT_ID)
    .join(Product, Product.id == _PRODUCT_ID)
    .where(Center.id == _CENTER_ID)
)


class _Run:
    """One booking run: the centers' days it has read, kept across its courses, and the
    patients whose cover it changed."""

    def __init__(self, db: Database, counts: dict[str, int]) -> None:
        self.db, self.counts = db, counts
        self.days: dict[uuid.UUID, CenterDays] = {}
        self.openings: dict[uuid.UUID, int | None] = {}  # per center, when its days were read
        self.patients: set[uuid.UUID] = set()
        self.booked: dict[uuid.UUID, set[uuid.UUID]] = {}  # per center, what the run booked

    def forget(self) -> None:
        """A course's transaction rolled back: what it booked is gone, and so is the center it
        may have read in that transaction (a rollback expires what the session loaded)."""
        self.days.clear()

    async def book(self, course_id: uuid.UUID) -> None:
        try:
            await self._book(course_id, write_at_end=True)
        except placement.BatchRefused:
            # The database refused one of the course's bookings written together (the
            # patient booked elsewhere meanwhile): that transaction is gone. Book the course
            # again, one booking at a time, each refusal answered as it comes.
            self.forget()
            await self._book(course_id, write_at_end=False)

    async def _book(self, course_id: uuid.UUID, *, write_at_end: bool) -> None:
        counts = self.counts
        async with self.db.unit_of_work() as session:
            course = await courses.get_course(session, course_id, for_update=True)
            if course.status != "active":
                return  # stopped since the list was read
            days = self.days.get(course.center_id)
            planned = {
                "center_id": course.center_id,
                "patient_id": course.patient_id,
                "product_id": course.product_id,
            }
            row = (await session.execute(_VERSIONS, planned)).one()
            version, openings, seen, patient, product = row
            patient_version, product_version = patient.version, product.version
            if (
                days is None
                or days.center.version != version
                or self.openings.get(course.center_id) != openings
            ):
                # New to the run, edited since (hours, staffing, time zone, policy), or room
                # freed since its days were read (a cancellation, a move, a block lifted):
                # the run's copy of its days is read afresh. New bookings need not be: the
                # day is read again under its lock before each booking.
                center = await course_sessions.center_of(session, course)
                days = self.days[course.center_id] = CenterDays(center)
                self.openings[course.center_id] = openings
            through = course_sessions.today_at(days.center) + timedelta(
                days=days.center.booking_horizon_days
            )
            # A center that refuses bookings insurance would not pay for depends on cover,
            # which no version here tracks: its stuck courses are always tried again.
            key = (
                None
                if days.center.coverage_policy == "block"
                else stuck_key(
                    course, seen, version, patient_version, product_version, days.center.timezone
                )
            )
            result = await course_booking.book_through(
                session, course, through, None, days, key, write_at_end=write_at_end
            )
            counts["booked"] += len(result.appointments)
            self.booked.setdefault(course.center_id, set()).update(
                a.id for a in result.appointments
            )
            if result.appointments:  # nothing booked, nothing to recompute: re-runs stay cheap
                settle.mark(session, settle.COVER_LATER, course.patient_id)
                self.patients.add(course.patient_id)
            stuck = result.unbookable
            if stuck is None:
                settle.mark(session, settle.COURSE_BOOKED, course.id)
                return
            counts["unbookable"] += 1
            # Flagged in the booking's own transaction: what was booked and why not commit
            # together.
            problem = (
                f"{stuck.phase} session {stuck.sequence} ({stuck.window.target}): {stuck.reason}"
            )
            settle.mark(session, settle.COURSE_UNBOOKABLE, (course.id, problem))


async def _flag(db: Database, course_id: uuid.UUID, problem: str) -> None:
    async with db.unit_of_work() as session:
        settle.mark(session, settle.COURSE_UNBOOKABLE, (course_id, problem))


async def centers_due_for_booking(
    db: Database, booked_since: dict[uuid.UUID, datetime]
) -> dict[uuid.UUID, datetime]:
    """Centers whose nightly booking time has passed today (their local day) and that have not
    been booked since it did, each with that instant: a run started since is tonight's.
    `booked_since`: each center's last finished booking run.

    Busiest first (most active courses): schedulers sharing the night each take the next
    center nobody has, so the longest runs start first and no process is left booking a big
    center alone at the end."""
    async with db.unit_of_work(write=False) as session:
        rows = (
            await session.execute(select(Center.id, Center.timezone, Center.auto_book_at))
        ).all()
        due: dict[uuid.UUID, datetime] = {}
        for center_id, tz_name, at in rows:
            tz = zone(tz_name)
            now = clock.utcnow().astimezone(tz)
            if now.time() < at:
                continue
            since = lenient_instant(now.date(), at, tz)
            last = booked_since.get(center_id)
            if last is None or last < since:
                due[center_id] = since
        if len(due) < 2:
            return due
        counted = await session.execute(
            select(Course.center_id, func.count())
            .where(Course.status == "active", Course.center_id.in_(list(due)))
            .group_by(Course.center_id)
        )
        active: dict[uuid.UUID, int] = {center_id: n for center_id, n in counted}
    busiest = sorted(due, key=lambda c: (-active.get(c, 0), str(c)))
    return {center_id: due[center_id] for center_id in busiest}


# --- no-shows ----------------------------------------------------------------------------


async def _cutoffs(db: Database, now: datetime) -> dict[uuid.UUID, datetime]:
    """Per center, the instant before which a booked appointment was missed: today's closing
    time once it has passed, else the start of today (every earlier day has closed)."""
    cutoffs: dict[uuid.UUID, datetime] = {}
    async with db.unit_of_work(write=False) as session:
        for center in await session.scalars(select(Center)):
            tz = zone(center.timezone)
            today = now.astimezone(tz).date()
            facts = center_repository.CenterFacts.of(center)
            rules = day_rules(
                await center_repository.center_calendar(session, facts, today, today), today
            )
            closes = rules.closes_at
            cutoffs[center.id] = (
                closes if closes is not None and now >= closes else day_bounds(today, tz)[0]
            )
    return cutoffs


async def no_show_sweep(
    db: Database, progress: Callable[[int, int], None] | None = None
) -> dict[str, int]:
    """Mark missed appointments as no-shows, one transaction each (with its course's cascade and
    its patient's alerts). Running it twice marks nothing twice: only `booked` ones change."""
    now = utcnow()
    cutoffs = await _cutoffs(db, now)
    async with db.unit_of_work(write=False) as session:
        missed: list[uuid.UUID] = []
        for center_id, cutoff in cutoffs.items():
            missed += await session.scalars(
                select(Appointment.id)
                .where(
                    Appointment.center_id == center_id,
                    Appointment.status == "booked",
                    Appointment.start_at < cutoff,
                )
                .order_by(Appointment.start_at)
            )
    counts = {"missed": len(missed), "marked": 0, "skipped": 0, "failed": 0}
    for done, appointment_id in enumerate(missed, start=1):
        try:
            async with db.unit_of_work() as session:
                await session_changes.progress(session, appointment_id, "no-show", None, None)
            counts["marked"] += 1
        except Problem:
            counts["skipped"] += 1  # checked in (or cancelled) since the list was read
        except Exception as exc:  # one appointment's failure must not stop the others
            counts["failed"] += 1
            log.warning("no_show_sweep: an appointment failed", extra={"error": describe(exc)})
        if progress is not None:
            progress(done, len(missed))
    return counts


# --- reminders ---------------------------------------------------------------------------


async def send_reminders(db: Database, hours: float) -> dict[str, int]:
    """An `appointment.reminder` event for each booked appointment starting within the next
    `hours` (the `reminder_hours` setting, 48 by default): exactly once per appointment,
    however often this runs or however many schedulers run it (the outbox's unique dedupe
    key sees to it)."""
    now = utcnow()
    counts = {"due": 0, "reminded": 0}
    async with db.unit_of_work() as session:
        due = await session.scalars(
            select(Appointment).where(
                Appointment.status == "booked",
                Appointment.start_at > now,
                Appointment.start_at <= now + timedelta(hours=hours),
            )
        )
        for appt in due:
            counts["due"] += 1
            made = await events.emit_once(
                session,
                "appointment.reminder",
                # Moved after its reminder went out, an appointment is reminded again.
                f"reminder:{appt.id}:{appt.start_at.isoformat()}",
                appointment_id=appt.id,
                patient_id=appt.patient_id,
                center_id=appt.center_id,
                start=appt.start_at,
                end=appt.end_at,
            )
            counts["reminded"] += int(made)
    return counts
