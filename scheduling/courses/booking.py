"""Booking a course's sessions: induction days all or none, maintenance sessions inside their
windows. Flushes; never commits."""

from __future__ import annotations

import uuid
from contextlib import AbstractAsyncContextManager, nullcontext
from datetime import date, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core import locks, settle
from core.problems import Conflict, Invalid
from scheduling.appointments import placement
from scheduling.appointments.center_days import CenterDays
from scheduling.appointments.models import Appointment
from scheduling.centers.models import Center
from scheduling.centers.rules import day_rules
from scheduling.courses import service as courses
from scheduling.courses.models import Course
from scheduling.courses.recurrence import (
    InductionImpossible,
    Window,
    days_by_preference,
    induction_days,
)
from scheduling.courses.schemas import CourseCreate
from scheduling.courses.sessions import (
    MOST_INDUCTION_DAYS,
    Booked,
    Context,
    PhaseSplit,
    SessionFigures,
    Unbookable,
    center_of,
    induction_days_of,
    induction_split,
    load_context,
    local_day,
    lost_days_are_final,
    maintenance_split,
    next_loading_day,
    session_figures,
    today_at,
    window_after,
)
from scheduling.courses.slots import book_day


class _InductionFailed(Exception):
    def __init__(self, reason: str, day: date) -> None:
        self.reason, self.day = reason, day


MAX_BOOKING_AHEAD = timedelta(days=366)


@settle.use_case
async def book_course(
    session: AsyncSession,
    course_id: uuid.UUID,
    through: date | None,
    actor_id: uuid.UUID | None,
) -> tuple[Course, Center, Booked]:
    """Book the course's sessions due by `through`, as a nurse asks (at most a year ahead);
    None: through the center's booking horizon, as the nightly run does."""
    course = await courses.get_course(session, course_id, for_update=True)
    center = await center_of(session, course)
    today = today_at(center)
    if through is None:
        through = today + timedelta(days=center.booking_horizon_days)
    if through > today + MAX_BOOKING_AHEAD:
        raise Invalid("book at most a year ahead")
    result = await book_through(session, course, through, actor_id)
    settle.mark(session, settle.COVER, course.patient_id)
    # The nurse booking it hears at once that the course is stuck; the nightly run would
    # only find it again hours later.
    if (stuck := result.unbookable) is None:
        settle.mark(session, settle.COURSE_BOOKED, course.id)
    else:
        settle.mark(session, settle.COURSE_UNBOOKABLE, (course.id, stuck.summary()))
    return course, center, result


@settle.use_case
@settle.use_case
async def order(session: AsyncSession, data: CourseCreate, actor_id: uuid.UUID | None) -> Course:
    """Order a course. One whose sessions no booking could ever place (too long for the
    center even split over the most days) is on the nurses' queue at once, not at night."""
    course = await courses.create_course(session, data, actor_id)
    await flag_if_too_long(session, course)
    return course


async def flag_if_too_long(session: AsyncSession, course: Course) -> Unbookable | None:
    """A course that no booking can place whatever the calendar (a session too long for the
    center even split over the most days, or a maintenance dose that would need two), put on
    the nurses' queue as soon as it is ordered; None when its sessions fit."""
    ctx = await load_context(session, course)
    window = Window(course.start_date, course.start_date, course.start_date)
    stuck: Unbookable | None = None
    loading = bool(course.induction_days and course.induction_total_g_per_kg is not None)
    if loading and (why := induction_split(ctx).unbookable()) is not None:
        stuck = Unbookable("induction", 1, window, why)
    # After an induction the first maintenance dose is not the course's first session.
    elif (
        course.interval_days
        and (why := maintenance_split(ctx, first=not loading).unbookable()) is not None
    ):
        stuck = Unbookable("maintenance", 1, window_after(course, None), why)
    if stuck is not None:
        settle.mark(session, settle.COURSE_UNBOOKABLE, (course.id, stuck.summary()))
    return stuck


async def book_through(
    session: AsyncSession,
    course: Course,
    through: date,
    actor_id: uuid.UUID | None,
    days: CenterDays | None = None,
    stuck_key: str | None = None,
    *,
    write_at_end: bool = False,
) -> Booked:
    """Book the course's sessions due by `through`. `days`: the center's days kept by a
    booking run across its courses; `stuck_key`: what the run planned with, kept on the
    course if it is stuck (a re-run skips it while that holds). `write_at_end`: write its
    bookings in one statement once all are placed; if the database refuses one, this raises
    `placement.BatchRefused` and the transaction is lost (the nightly run books the course
    again without it)."""
    if course.status != "active":
        raise Conflict(f"a course that is {course.status} books nothing")
    await locks.course_planning(session, [course.center_id])
    ctx = await load_context(session, course, days)
    # A center that asks insurance after each session it places books as it goes.
    if ctx.center.coverage_policy != "block":
        await _lock_the_days_it_will_use(session, ctx, through, actor_id)
        ctx.writes_at_end = write_at_end
    booked, problems = await _book_sessions(session, ctx, through, actor_id)
    if ctx.writes_at_end:
        await placement.write_booked(session, booked)
    course.unbookable = problems[0].as_record() if problems else None
    course.unbookable_key = stuck_key if problems else None
    await placement.record_booked(session, booked, actor_id)
    await session.flush()
    return Booked(booked, problems)


async def _lock_the_days_it_will_use(
    session: AsyncSession, ctx: Context, through: date, actor_id: uuid.UUID | None
) -> None:
    """Rehearse the booking against the days kept (writing nothing), then lock the days it
    placed sessions on and read them again, each in one statement: the booking that follows
    decides on the truth without a lock and a read per session. A day it turns to that the
    rehearsal did not (the truth differed) is locked and read on its own, as ever. When every
    day reads as the rehearsal saw it, the booking takes the rehearsal's slots (`ctx.plan`)."""
    before = list(ctx.sessions)
    ctx.rehearsing = True
    try:
        await _book_sessions(session, ctx, through, actor_id)
    finally:
        tz_name = ctx.center.timezone
        plan = {
            (local_day(a, tz_name), a.phase or "", a.sequence or 0, a.part, _minutes(a)): (
                a.chair_id,
                a.start_at,
                a.end_at,
            )
            for a in ctx.pencilled
        }
        planned = ctx.rehearsed(before)
    if planned:
        seen = [ctx.days.seen(day) for day in planned]
        await locks.center_days(session, ctx.center.id, planned)
        # After the lock statement, not in it: a read sees what committed before it began.
        await ctx.days.refresh_all(session, planned)
        ctx.locked_days.update(planned)
        if seen == [ctx.days.seen(day) for day in planned]:
            ctx.plan = plan


def _minutes(appt: Appointment) -> int:
    return int((appt.end_at - appt.start_at).total_seconds() // 60)


async def _book_sessions(
    session: AsyncSession, ctx: Context, through: date, actor_id: uuid.UUID | None
) -> tuple[list[Appointment], list[Unbookable]]:
    """What is due by `through`: what it booked, and where it is stuck."""
    course = ctx.course
    booked: list[Appointment] = []
    problems: list[Unbookable] = []
    induction_failed = False
    induction_due = course.induction_days and course.start_date <= through
    if induction_due and not any(a.phase == "induction" for a in ctx.sessions):
        stuck = await _book_induction(session, ctx, actor_id, booked)
        if stuck is not None:
            problems.append(stuck)
            induction_failed = True  # maintenance follows a loading course that is not booked
    elif induction_due:  # days lost earlier that could not be replaced then
        added, lost = await _replace_lost_days(session, ctx, actor_id)
        booked.extend(added)
        problems.extend(lost)  # maintenance still goes on: the lost dose is the doctor's call
    if course.interval_days and not induction_failed:
        stuck = await _book_maintenance(session, ctx, through, actor_id, booked)
        if stuck is not None:
            problems.append(stuck)
    return booked, problems


async def _book_induction(
    session: AsyncSession,
    ctx: Context,
    actor_id: uuid.UUID | None,
    booked: list[Appointment],
) -> Unbookable | None:
    course = ctx.course
    # Numbers are never reused: an induction booked again after every day was lost goes on.
    sequence = await ctx.last_sequence(session, "induction")
    window = Window(course.start_date, course.start_date, course.start_date)
    split = induction_split(ctx)
    if split.days is None:  # no number of days makes each session short enough
        return Unbookable("induction", sequence + 1, window, split.unbookable() or split.detail())
    count = split.days
    first_day = max(course.start_date, today_at(ctx.center))
    calendar = await ctx.days.calendar(session, first_day, first_day + timedelta(days=count + 14))

    def is_open(day: date) -> bool:
        return day_rules(calendar, day).opens_at is not None and day not in calendar.closures

    try:
        days = induction_days(
            first_day, count, is_open, course.induction_skips_closures, most=MOST_INDUCTION_DAYS
        )
    except InductionImpossible as exc:
        return Unbookable("induction", sequence + 1, window, str(exc))
    chair: uuid.UUID | None = None
    placed: list[Appointment] = []
    try:
        async with _all_or_none(session, ctx):
            for index, day in enumerate(days):
                figures = session_figures(
                    course, ctx.product, ctx.patient, "induction", index == 0, days=count
                )
                result = await book_day(
                    session, ctx, day, "induction", sequence + index + 1, figures, chair, actor_id
                )
                if isinstance(result, str):
                    raise _InductionFailed(result, day)
                chair = result.chair_id
                placed.append(result)
    except _InductionFailed as failed:
        ctx.withdraw(placed)  # all days or none: those already placed were rolled back
        return Unbookable(
            "induction",
            sequence + 1,
            window,
            f"{failed.reason} on {failed.day.isoformat()}: nothing booked",
        )
    if not ctx.rehearsing:
        # Kept: the plan, a re-plan and lost days share the dose over these days from now on.
        course.induction_booked_days = count
    booked.extend(placed)
    ctx.sessions.extend(placed)
    return None


async def _book_maintenance(
    session: AsyncSession,
    ctx: Context,
    through: date,
    actor_id: uuid.UUID | None,
    booked: list[Appointment],
) -> Unbookable | None:
    course = ctx.course
    assert course.interval_days and course.window_min_days and course.window_max_days
    tz_name = ctx.center.timezone
    today = today_at(ctx.center)
    done = [a for a in ctx.sessions if a.phase == "maintenance"]
    # Doses count towards the cycles (a dose over two days is one); numbers are never reused
    # (a cancelled one keeps its).
    count = len({a.sequence for a in done})
    sequence = await ctx.last_sequence(session, "maintenance")
    last = max(ctx.sessions, key=lambda a: a.start_at) if ctx.sessions else None
    previous = local_day(last, tz_name) if last else None
    chair = last.chair_id if last else None
    while course.cycles is None or count < course.cycles:
        window = window_after(course, previous)
        if window.target > through or (course.end_date and window.target > course.end_date):
            return None
        sequence += 1
        count += 1
        split, parts = _dose(ctx, first=not ctx.sessions)
        if (too_long := split.unbookable()) is not None:
            return Unbookable("maintenance", sequence, window, too_long)
        reasons: list[str] = []
        placed: list[Appointment] = []
        for day in days_by_preference(window, course.preferred_weekdays):
            if day < today:
                reasons.append("the window has passed")
                continue
            result = await _book_dose(session, ctx, day, sequence, parts, chair, actor_id)
            if isinstance(result, list):
                placed = result
                break
            reasons.append(result)
        earliest = max(window.earliest, today)
        if not placed:
            reason = max(set(reasons), key=reasons.count) if reasons else "no open day"
            # The course waits for an opening in the window (the waitlist settles it), for a
            # visit as long as the dose's, if one visit gives it.
            minutes = parts[0].chair_minutes if len(parts) == 1 else None
            if not ctx.rehearsing:
                wanted = (course.id, None, earliest, window.latest, minutes)
                settle.mark(session, settle.WAITLIST_WANTED, wanted)
            return Unbookable("maintenance", sequence, window, f"no slot in the window: {reason}")
        late = len(placed) == 1 and local_day(placed[0], tz_name) > window.target
        if late and not ctx.rehearsing:
            # Booked later than its target: it waits for an opening sooner in its window.
            minutes = int((placed[0].end_at - placed[0].start_at).total_seconds() // 60)
            late_one = (course.id, placed[0].id, earliest, window.target, minutes)
            settle.mark(session, settle.WAITLIST_WANTED, late_one)
        booked.extend(placed)
        ctx.sessions.extend(placed)
        previous, chair = local_day(placed[-1], tz_name), placed[-1].chair_id
    return None


def _dose(ctx: Context, first: bool) -> tuple[PhaseSplit, list[SessionFigures]]:
    """How one maintenance dose is given (over one day or two) and each of its sessions'
    figures, worked out once per booking: every cycle, and the rehearsal, ask alike."""
    if first not in ctx.doses:
        course = ctx.course
        split = maintenance_split(ctx, first)
        parts = (
            []
            if split.unbookable() is not None
            else [
                session_figures(
                    course,
                    ctx.product,
                    ctx.patient,
                    "maintenance",
                    first and part == 1,
                    days=split.days,
                    part=part,
                )
                for part in range(1, (split.days or 1) + 1)
            ]
        )
        ctx.doses[first] = (split, parts)
    return ctx.doses[first]


async def _book_dose(
    session: AsyncSession,
    ctx: Context,
    day: date,
    sequence: int,
    parts: list[SessionFigures],
    chair: uuid.UUID | None,
    actor_id: uuid.UUID | None,
) -> list[Appointment] | str:
    """One maintenance dose from `day`: a session, or (a dose too long for one) its parts on
    consecutive days, all or none; else why not."""
    if len(parts) == 1:
        result = await book_day(
            session, ctx, day, "maintenance", sequence, parts[0], chair, actor_id
        )
        return [result] if isinstance(result, Appointment) else result
    placed: list[Appointment] = []
    try:
        async with _all_or_none(session, ctx):
            for offset, figures in enumerate(parts):
                result = await book_day(
                    session,
                    ctx,
                    day + timedelta(days=offset),
                    "maintenance",
                    sequence,
                    figures,
                    chair,
                    actor_id,
                    part=offset + 1,
                )
                if isinstance(result, str):
                    raise _DoseFailed(f"{result} on day {offset + 1} of the dose")
                chair = result.chair_id
                placed.append(result)
    except _DoseFailed as failed:
        ctx.withdraw(placed)  # rolled back with the savepoint
        return failed.reason
    return placed


def _all_or_none(session: AsyncSession, ctx: Context) -> AbstractAsyncContextManager[Any]:
    """A savepoint for sessions booked together (a rehearsal writes nothing to take back,
    nor does a booking that writes at the end)."""
    return nullcontext() if ctx.rehearsing or ctx.writes_at_end else session.begin_nested()


class _DoseFailed(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason


async def replace_lost_induction_days(
    session: AsyncSession, ctx: Context, actor_id: uuid.UUID | None
) -> tuple[list[Appointment], list[Unbookable]]:
    """Book loading days lost earlier (see `_replace_lost_days`), with their history."""
    added, problems = await _replace_lost_days(session, ctx, actor_id)
    await placement.record_booked(session, added, actor_id)
    return added, problems


async def _replace_lost_days(
    session: AsyncSession, ctx: Context, actor_id: uuid.UUID | None
) -> tuple[list[Appointment], list[Unbookable]]:
    """A loading course delivers its total dose over its days: a cancelled or missed day is
    added after the last planned one (on the next open day when the regimen allows skipping),
    until maintenance begins; from then on it is the doctor's call."""
    course = ctx.course
    given = [a for a in ctx.sessions if a.phase == "induction"]
    missing = induction_days_of(course) - len(given)
    if not given or missing <= 0 or lost_days_are_final(ctx):
        return [], []  # not booked yet (a booking run books it whole), complete, or too late
    start = await next_loading_day(session, ctx)
    calendar = await ctx.days.calendar(session, start, start + timedelta(days=14))

    def is_open(day: date) -> bool:
        return day_rules(calendar, day).opens_at is not None and day not in calendar.closures

    window = Window(start, start, start)
    sequence = await ctx.last_sequence(session, "induction")
    if not is_open(start) and not course.induction_skips_closures:
        reason = (
            f"a lost induction day cannot follow on: the center is closed on {start}, "
            "and this regimen does not allow skipping a day"
        )
        return [], [Unbookable("induction", sequence + 1, window, reason)]
    try:
        days = induction_days(
            start, missing, is_open, course.induction_skips_closures, most=MOST_INDUCTION_DAYS
        )
    except InductionImpossible as exc:
        return [], [Unbookable("induction", sequence + 1, window, str(exc))]
    figures = session_figures(course, ctx.product, ctx.patient, "induction", False)
    chair = given[-1].chair_id
    added: list[Appointment] = []
    for day in days:
        sequence += 1
        placed = await book_day(session, ctx, day, "induction", sequence, figures, chair, actor_id)
        if isinstance(placed, str):
            return added, [Unbookable("induction", sequence, Window(day, day, day), placed)]
        added.append(placed)
        ctx.sessions.append(placed)
        ctx.sessions.sort(key=lambda a: a.start_at)
    return added, []
