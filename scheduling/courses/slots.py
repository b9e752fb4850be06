"""Choosing and booking the best open slot of a day for a course session. Flushes; never
commits."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import nullcontext
from datetime import date, datetime, time, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from core.clock import utcnow
from core.problems import BookingConflict
from scheduling import cover
from scheduling.appointments import availability, placement
from scheduling.appointments import repository as appointment_repository
from scheduling.appointments.center_days import Day, PatientSpans
from scheduling.appointments.models import Appointment
from scheduling.centers.rules import Span
from scheduling.courses.sessions import Context, SessionFigures
from scheduling.localtime import day_bounds, zone

SLOTS_TRIED = 20  # open slots tried on one day before moving on (someone may race us)


async def usable_slots(
    session: AsyncSession,
    ctx: Context,
    day: date,
    duration: timedelta,
    moving: uuid.UUID | None = None,
) -> list[availability.OpenSlot] | str:
    """Open slots on `day` that start in the future and leave the patient free, or why none."""
    tally: Counter[str] = Counter()
    slots = await availability.open_slots(
        session, ctx.center, day, duration, ctx.course.chair_kind, moving, tally
    )
    now = utcnow()
    slots = [s for s in slots if s.start > now]
    if not slots:
        return _why_no_slot(tally)
    first, last = day_bounds(day, zone(ctx.center.timezone))
    busy = [
        b
        for b in await appointment_repository.patient_spans(session, ctx.patient.id, first, last)
        if b.id != moving
    ]
    free = [s for s in slots if not any(b.start < s.end and b.end > s.start for b in busy)]
    return free or "the patient has other appointments at every open time"


def _best_slot(
    ctx: Context,
    day: Day,
    chairs: list[uuid.UUID],
    patient: PatientSpans,
    figures: SessionFigures,
    preferred_chair: uuid.UUID | None,
) -> availability.OpenSlot | str:
    """The best slot of the day for a new session of the course, in the future and leaving the
    patient free; or why there is none. The start closest to the course's preferred time
    comes first, the chair it used last only next: a patient keeps their time of day across
    an induction's days whenever some chair has room then."""
    tz = zone(ctx.center.timezone)
    wanted = ctx.course.preferred_start_time
    now = utcnow()

    def minutes_off(start: datetime) -> int:
        local = start.astimezone(tz)
        return abs((local.hour * 60 + local.minute) - (wanted.hour * 60 + wanted.minute))

    tally: Counter[str] = Counter()
    refused: Counter[str] = Counter()

    def accept(slot: availability.OpenSlot) -> bool:
        if slot.start <= now:
            refused["past"] += 1
            return False
        if any(b.start < slot.end and b.end > slot.start for b in patient.spans):
            refused["patient"] += 1
            return False
        return True

    # Handed over without a preferred chair (which `best_slots` would put before any time),
    # the chairs in order of preference: at each start, the chair used last is tried first.
    ordered = sorted(chairs, key=lambda c: c != preferred_chair)
    slots = availability.best_slots(
        day,
        ordered,
        timedelta(minutes=figures.chair_minutes),
        minutes_off=minutes_off,
        preferred_chair=None,
        accept=accept,
        limit=1,
        tally=tally,
    )
    if slots:
        return slots[0]
    if refused["patient"]:
        return "the patient has other appointments at every open time"
    reason = _why_no_slot(tally)
    if not refused:  # nothing to do with this patient or the clock: the day is full
        duration = timedelta(minutes=figures.chair_minutes)
        ctx.days.full(day.rules.day, ctx.course.chair_kind, duration, reason)
    if not tally:  # the day is too short for it: say how long it is (not kept: longer ones ask)
        return _too_short(figures.chair_minutes, day)
    return reason


def _too_short(minutes: int, day: Day) -> str:
    opens, closes = day.rules.opens_at, day.rules.closes_at
    hours = (
        f" (open {int((closes - opens).total_seconds() // 60)} min that day)"
        if opens is not None and closes is not None
        else ""
    )
    return (
        f"no time of the day is open long enough for a {minutes}-min session{hours}, "
        "or it has passed"
    )


def _why_no_slot(tally: Counter[str]) -> str:
    if not tally:
        return "no time of the day is open long enough, or it has passed"
    if tally["nurses"] >= tally["chairs"]:
        return "no nurse capacity"
    return "no chair free"


def slot_rank(
    tz_name: str, wanted: time, preferred_chair: uuid.UUID | None
) -> Callable[[availability.OpenSlot], tuple[int, bool, datetime]]:
    """Best slot first, as a new session is placed (`_best_slot`): closest to the preferred
    time, then the chair the course used last, then the earlier start."""
    tz = zone(tz_name)

    def rank(slot: availability.OpenSlot) -> tuple[int, bool, datetime]:
        local = slot.start.astimezone(tz)
        minutes = abs((local.hour * 60 + local.minute) - (wanted.hour * 60 + wanted.minute))
        return (minutes, slot.chair_id != preferred_chair, slot.start)

    return rank


async def book_day(
    session: AsyncSession,
    ctx: Context,
    day: date,
    phase: str,
    sequence: int,
    figures: SessionFigures,
    preferred_chair: uuid.UUID | None,
    actor_id: uuid.UUID | None,
    part: int = 1,
) -> Appointment | str:
    """Book the session on `day` at the best open slot, or say why the day has none. The
    caller records the bookings it keeps (`placement.record_booked`)."""
    view = await ctx.days.day(session, day)
    if not view.is_open:
        return "center closed"
    if full := ctx.days.no_room(
        day, ctx.course.chair_kind, timedelta(minutes=figures.chair_minutes)
    ):
        return full
    chairs = await ctx.days.chairs(session, ctx.course.chair_kind)
    patient = await ctx.patient_spans(session)
    what = placement.CourseSession(ctx.course.id, phase, sequence, figures.dose_g, part)
    planned = ctx.plan.pop((day, phase, sequence, part, figures.chair_minutes), None)
    for _ in range(SLOTS_TRIED):
        if not view.is_open:  # closed since the run read the calendar
            return "center closed"
        if planned is not None and planned[1] > utcnow():
            slot: availability.OpenSlot | str = availability.OpenSlot(*planned)
        else:
            if planned is not None:  # its start passed meanwhile: the plan no longer holds
                ctx.plan.clear()
            slot = _best_slot(ctx, view, chairs, patient, figures, preferred_chair)
        planned = None
        if isinstance(slot, str):
            return slot
        if ctx.rehearsing:
            return _pencilled(ctx, day, slot, what)
        try:
            # A refused slot leaves the transaction as it was; only a booking insurance would
            # not pay for, at a center that blocks those, needs a savepoint to take it back.
            blocking = ctx.center.coverage_policy == "block"
            async with session.begin_nested() if blocking else nullcontext():
                appt = await placement.book_planned(
                    session,
                    ctx.days,
                    slot.chair_id,
                    patient,
                    slot.start,
                    slot.end,
                    actor_id,
                    what,
                    read_under_lock=day in ctx.locked_days,
                    write=not ctx.writes_at_end,
                )
                if blocking:
                    # Cover depends on the date, not the slot: one check decides the day.
                    why = await cover.check().why_uncovered(session, ctx.patient.id, appt.id)
                    if why is not None:
                        raise _Uncovered(why)
        except BookingConflict:
            # Someone booked the day meanwhile: `book_planned` read it again; choose again,
            # and from now on choose every session afresh (the rehearsal's plan is stale).
            ctx.plan.clear()
            view = await ctx.days.day(session, day)
            continue
        except _Uncovered as uncovered:
            return f"insurance would not pay for it (the center blocks that): {uncovered.reason}"
        turnover = timedelta(minutes=appt.turnover_minutes)
        ctx.days.booked(day, Span(appt.id, appt.start_at, appt.end_at, appt.chair_id, turnover))
        patient.spans.append(Span(appt.id, appt.start_at, appt.end_at))
        return appt
    return "the day's bookings kept changing while it was being booked"


def _pencilled(
    ctx: Context, day: date, slot: availability.OpenSlot, what: placement.CourseSession
) -> Appointment:
    """The session as a rehearsal places it: in the planner's copies only (the day's, the
    patient's), never written; the rehearsal takes it back (`Context.rehearsed`)."""
    turnover = ctx.center.turnover_minutes
    appt = Appointment(
        id=uuid.uuid4(),
        center_id=ctx.center.id,
        chair_id=slot.chair_id,
        patient_id=ctx.patient.id,
        start_at=slot.start,
        end_at=slot.end,
        status="booked",
        course_id=what.course_id,
        phase=what.phase,
        sequence=what.sequence,
        dose_g=what.dose_g,
        part=what.part,
        turnover_minutes=turnover,
    )
    ctx.days.booked(
        day, Span(appt.id, slot.start, slot.end, slot.chair_id, timedelta(minutes=turnover))
    )
    ctx.pencilled.append(appt)
    return appt


class _Uncovered(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason
