"""A course's plan: the whole course in order. Sessions given, with their record; sessions
lost (cancelled, missed), where they were; booked ones; and those still to book, where they
are due. Each with its window, dose and chair time, and over how many days a dose is split."""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from scheduling.appointments.models import ACTIVE_STATUSES, Appointment
from scheduling.centers.rules import day_rules
from scheduling.courses import sessions as course_sessions
from scheduling.courses.models import Course, SessionRecord
from scheduling.courses.recurrence import InductionImpossible, Window, induction_days
from scheduling.courses.sessions import Context, PhaseSplit
from scheduling.localtime import zone

LOST = ("cancelled", "no_show")


@dataclass(frozen=True)
class PlanEntry:
    phase: str
    # The session's own number: kept for good, never reused, the same on every board.
    sequence: int
    # Which dose of its phase this is, counting those given, booked and due (None: lost).
    dose_number: int | None
    window: Window
    appointment: Appointment | None
    record: SessionRecord | None
    dose_g: Decimal | None
    chair_minutes: int | None
    unbookable_reason: str | None
    part: int = 1  # the day of a maintenance dose given over two


@dataclass(frozen=True)
class Plan:
    entries: list[PlanEntry]
    splits: list[PhaseSplit]  # the phases whose dose is (or would need to be) split


async def plan(session: AsyncSession, course: Course, today: date, through: date) -> Plan:
    """The whole course: every session it has had, in order, then those due up to `through`
    (from `today`, as the booking would place them)."""
    ctx = await course_sessions.load_context(session, course)
    history = list(
        await session.scalars(
            select(Appointment)
            .where(Appointment.course_id == course.id)
            .order_by(Appointment.start_at)
        )
    )
    records = {
        r.appointment_id: r
        for r in await session.scalars(
            select(SessionRecord).where(SessionRecord.course_id == course.id)
        )
    }
    entries = _history(ctx, history, records)
    loading = upkeep = None
    going_on = course.status in ("active", "on_hold")  # a finished course splits nothing
    if going_on and course.induction_days and course.induction_total_g_per_kg is not None:
        loading = course_sessions.induction_split(ctx)
    if going_on and course.interval_days:
        first = not ctx.sessions and loading is None  # the course's first session
        upkeep = course_sessions.maintenance_split(ctx, first)
    if course.status == "active":
        entries += await _still_due(session, ctx, today, through, entries, loading, upkeep)
    splits = [
        s for s in (loading, upkeep) if s is not None and (s.days is None or s.split.is_split)
    ]
    return Plan(_numbered(entries, ctx.center.timezone), splits)


def _history(
    ctx: Context, history: list[Appointment], records: dict[uuid.UUID, SessionRecord]
) -> list[PlanEntry]:
    """Every session the course has had: its window counts from the last one kept before it."""
    course, tz_name = ctx.course, ctx.center.timezone
    stuck = course.unbookable or {}
    entries: list[PlanEntry] = []
    previous: date | None = None
    kept: Appointment | None = None  # the last session kept before this one
    for appt in history:
        day = course_sessions.local_day(appt, tz_name)
        if appt.phase == "induction" or course.interval_days is None:
            window = Window(day, day, day)
        elif previous is not None and course_sessions.follows_its_first_day(appt, kept):
            # a dose's second day, straight after its first
            second = previous + timedelta(days=1)
            window = Window(second, second, second)
        else:
            window = course_sessions.window_after(course, previous)
        problem = None
        if appt.status in ACTIVE_STATUSES and day not in window and not appt.outside_window:
            # Kept where it was when a re-plan could not place it in its window.
            recorded = stuck.get("phase") == appt.phase and stuck.get("sequence") == str(
                appt.sequence
            )
            problem = stuck.get("reason") if recorded else "booked outside its window"
        entries.append(
            PlanEntry(
                appt.phase or "",
                appt.sequence or 0,
                None,
                window,
                appt,
                records.get(appt.id),
                appt.dose_g,
                int((appt.end_at - appt.start_at).total_seconds() // 60),
                problem,
                appt.part,
            )
        )
        if appt.status not in LOST:
            previous, kept = day, appt
    return entries


async def _still_due(
    session: AsyncSession,
    ctx: Context,
    today: date,
    through: date,
    shown: list[PlanEntry],
    loading: PhaseSplit | None,
    upkeep: PhaseSplit | None,
) -> list[PlanEntry]:
    """Sessions not booked yet, where the booking would put them."""
    course = ctx.course
    stuck = course.unbookable or {}
    # A phase whose recorded problem a booked session already shows.
    reported = {
        e.phase
        for e in shown
        if e.unbookable_reason is not None and e.unbookable_reason == stuck.get("reason")
    }

    def reason(phase: str, own: str | None = None) -> str | None:
        """Why this phase's next session cannot be booked: on its first unbooked session."""
        if phase in reported:
            return None
        why = own or (stuck.get("reason") if stuck.get("phase") == phase else None)
        if why is not None:
            reported.add(phase)
        return why

    entries: list[PlanEntry] = []
    kept = [a for a in ctx.sessions if a.phase == "induction"]
    maintained = any(a.phase == "maintenance" for a in ctx.sessions)
    last = ctx.sessions[-1] if ctx.sessions else None
    previous = course_sessions.local_day(last, ctx.center.timezone) if last else None
    if loading is not None:
        sequence = await course_sessions.last_sequence(session, course.id, "induction")
        if not kept:  # not booked yet: every day, from the start
            count = loading.days or loading.split.ordered_days
            days = await _loading_days(session, ctx, max(course.start_date, today), count)
            own = loading.unbookable()
            for index, day in enumerate(days):
                figures = course_sessions.session_figures(
                    course, ctx.product, ctx.patient, "induction", index == 0, days=count
                )
                entries.append(
                    _due(
                        "induction",
                        sequence + index + 1,
                        Window(day, day, day),
                        figures,
                        reason("induction", own) if index == 0 else None,
                    )
                )
            if days and not maintained:
                previous = days[-1]
        elif not course_sessions.lost_days_are_final(ctx):
            missing = course_sessions.induction_days_of(course) - len(kept)
            if missing > 0:  # lost days, made up after the last one planned
                first_day = await course_sessions.next_loading_day(session, ctx)
                figures = course_sessions.session_figures(
                    course, ctx.product, ctx.patient, "induction", False
                )
                for offset in range(missing):
                    day = first_day + timedelta(days=offset)
                    entries.append(
                        _due(
                            "induction",
                            sequence + offset + 1,
                            Window(day, day, day),
                            figures,
                            reason("induction"),
                        )
                    )
                    if not maintained:  # else maintenance goes on from its own last session
                        previous = day
    if upkeep is not None:
        first = previous is None
        own = upkeep.unbookable()
        # Kept doses count towards the cycles; numbers continue after the highest used.
        count = len({a.sequence for a in ctx.sessions if a.phase == "maintenance"})
        sequence = await course_sessions.last_sequence(session, course.id, "maintenance")
        dose_days = upkeep.days or 1  # a dose too long for one session: over two days
        parts = [
            course_sessions.session_figures(
                course,
                ctx.product,
                ctx.patient,
                "maintenance",
                first and part == 1,
                days=dose_days,
                part=part,
            )
            for part in range(1, dose_days + 1)
        ]
        while course.cycles is None or count < course.cycles:
            window = course_sessions.window_after(course, previous)
            if window.target > through or (course.end_date and window.target > course.end_date):
                break
            sequence += 1
            count += 1
            entries.append(
                _due("maintenance", sequence, window, parts[0], reason("maintenance", own))
            )
            for offset, later in enumerate(parts[1:], start=1):
                day = window.target + timedelta(days=offset)
                entries.append(
                    _due("maintenance", sequence, Window(day, day, day), later, None, offset + 1)
                )
            previous = window.target + timedelta(days=dose_days - 1)
    return entries


def _due(
    phase: str,
    sequence: int,
    window: Window,
    figures: course_sessions.SessionFigures,
    unbookable_reason: str | None,
    part: int = 1,
) -> PlanEntry:
    return PlanEntry(
        phase,
        sequence,
        None,
        window,
        None,
        None,
        figures.dose_g,
        figures.chair_minutes,
        unbookable_reason,
        part,
    )


async def _loading_days(session: AsyncSession, ctx: Context, start: date, count: int) -> list[date]:
    """The days an induction not booked yet would be booked on: `count` open days from
    `start` (closed ones skipped when the order allows it); consecutive days when the center
    cannot give it, as the booking will then say."""
    calendar = await ctx.days.calendar(session, start, start + timedelta(days=count + 14))

    def is_open(day: date) -> bool:
        return day_rules(calendar, day).opens_at is not None and day not in calendar.closures

    try:
        return induction_days(
            start,
            count,
            is_open,
            ctx.course.induction_skips_closures,
            most=course_sessions.MOST_INDUCTION_DAYS,
        )
    except InductionImpossible:
        return [start + timedelta(days=i) for i in range(count)]


def _numbered(entries: list[PlanEntry], tz_name: str) -> list[PlanEntry]:
    """In course order (by local date; on a shared day an induction first, then by number),
    each dose kept counted in its phase."""
    tz = zone(tz_name)

    def order(e: PlanEntry) -> tuple[date, bool, int, int]:
        day = e.appointment.start_at.astimezone(tz).date() if e.appointment else e.window.target
        return (day, e.phase != "induction", e.sequence, e.part)

    counts: Counter[str] = Counter()
    counted: set[tuple[str, int]] = set()
    numbered: list[PlanEntry] = []
    for e in sorted(entries, key=order):
        if e.appointment is not None and e.appointment.status in LOST:
            numbered.append(e)
            continue
        # A dose counts once, on the first of its days that was kept.
        if (e.phase, e.sequence) not in counted:
            counted.add((e.phase, e.sequence))
            counts[e.phase] += 1
        numbered.append(replace(e, dose_number=counts[e.phase]))
    return numbered
