"""The window a booked course session must stay in when a nurse moves it.

A maintenance session's window runs from its predecessor (`window_after`). A loading day stays
between the loading days around it: a 5-day induction is given on consecutive (open) days, so
day 3 cannot go after day 4, and the last day no later than the first open day after the one
before it. Outside that window a move needs an `override_reason`.
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from scheduling.appointments.models import Appointment
from scheduling.courses.recurrence import Window
from scheduling.courses.sessions import Context, follows_its_first_day, local_day, window_after

NEXT_OPEN_DAY_SEARCH = 14  # days looked ahead for the next open one, as induction planning


def loading_day_window(
    own: date,
    course_start: date,
    before: date | None,
    after: date | None,
    next_open_after_before: date | None,
) -> Window:
    """Where a loading day may go: after the loading day before it (or from the course's
    start) and before the one after it; the last day no later than `next_open_after_before`
    (the first open day after the day before it). A lone loading day keeps its day."""
    earliest = before + timedelta(days=1) if before is not None else course_start
    if after is not None:
        latest = after - timedelta(days=1)
    elif before is not None and next_open_after_before is not None:
        latest = next_open_after_before
    else:
        latest = max(own, earliest)
    latest = max(latest, earliest)
    return Window(earliest, min(max(own, earliest), latest), latest)


def course_order(appt: Appointment) -> tuple[bool, int, int]:
    """Loading days first, then maintenance, by number, a dose's days in turn."""
    return (appt.phase != "induction", appt.sequence or 0, appt.part)


def in_course_order(sessions: list[Appointment]) -> list[Appointment]:
    return sorted(sessions, key=course_order)


async def session_window(session: AsyncSession, ctx: Context, appt: Appointment) -> Window:
    """The window of a booked session of `ctx.course`, from the sessions around it."""
    tz_name = ctx.center.timezone
    ordered = [a for a in in_course_order(ctx.sessions) if a.id != appt.id]
    earlier = [a for a in ordered if course_order(a) < course_order(appt)]
    before = local_day(earlier[-1], tz_name) if earlier else None
    own = local_day(appt, tz_name)
    if before is not None and follows_its_first_day(appt, earlier[-1]):
        second = before + timedelta(days=1)  # a dose's second day follows its first
        return Window(second, second, second)
    if appt.phase == "maintenance" and ctx.course.interval_days:
        return window_after(ctx.course, before)
    later = [
        a for a in ordered if a.phase == "induction" and (a.sequence or 0) > (appt.sequence or 0)
    ]
    after = local_day(later[0], tz_name) if later else None
    next_open = None
    if before is not None and after is None:
        next_open = await _next_open_day(session, ctx, before)
    return loading_day_window(own, ctx.course.start_date, before, after, next_open)


async def _next_open_day(session: AsyncSession, ctx: Context, after: date) -> date | None:
    for offset in range(1, NEXT_OPEN_DAY_SEARCH + 1):
        day = after + timedelta(days=offset)
        if (await ctx.days.day(session, day)).is_open:
            return day
        if not ctx.course.induction_skips_closures:
            return day  # closed, and this regimen gives its loading days back to back
    return None
