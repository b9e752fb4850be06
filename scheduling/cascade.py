"""Re-planning a course after one of its sessions changed, or the patient did. Flushes; never
commits: the change and its cascade are one transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.problems import BookingConflict
from scheduling import booking, repository
from scheduling.course_booking import (
    SLOTS_TRIED,
    Context,
    SessionFigures,
    Unbookable,
    load_context,
    local_day,
    replace_lost_induction_days,
    session_figures,
    slot_rank,
    today_at,
    usable_slots,
    window_after,
)
from scheduling.courses import get_course
from scheduling.localtime import local_date, zone
from scheduling.models import (
    Appointment,
    Course,
)
from scheduling.recurrence import (
    Window,
    days_by_preference,
)

# --- the cascade ---------------------------------------------------------------------------


@dataclass
class CascadeResult:
    """What re-planning a course changed, for the nurse who caused it to see."""

    moved: list[Appointment] = field(default_factory=list)  # to another day, time or chair
    resized: list[Appointment] = field(default_factory=list)  # same place, new dose or length
    added: list[Appointment] = field(default_factory=list)  # induction days replacing lost ones
    problems: list[Unbookable] = field(default_factory=list)


async def cascade(
    session: AsyncSession,
    course_id: uuid.UUID,
    actor_id: uuid.UUID | None,
    keep: uuid.UUID | None = None,
) -> CascadeResult:
    """Re-plan a course's booked sessions after one moved, was cancelled or missed, or after
    the patient's weight or tolerated rate changed. In course order, each later booked session
    gets the dose and chair time it now needs (the first session given carries the first-dose
    observation) and, in maintenance, a day inside its window after its predecessor (its
    actual date when it happened). An induction day that was lost is replaced after the last
    one. A maintenance session that no longer fits its window is cancelled and reported, never
    left outside it. `keep` is the session a nurse just moved: it stays as they put it. Runs in
    the caller's transaction, so the change and its cascade are one."""
    result = CascadeResult()
    course = await get_course(session, course_id, for_update=True)
    if course.status not in ("active", "on_hold"):
        return result
    await booking.lock_course_planning(session, course.center_id)
    ctx = await load_context(session, course)
    added, problems = await replace_lost_induction_days(session, ctx, actor_id)
    result.added.extend(added)
    result.problems.extend(problems)
    tz_name, now = ctx.center.timezone, utcnow()
    previous: date | None = None
    first = True
    # In course order: a session a nurse moved past the next one must not swap places with it.
    for appt in sorted(ctx.sessions, key=lambda a: (a.phase != "induction", a.sequence or 0)):
        day = local_day(appt, tz_name)
        phase = appt.phase or "maintenance"
        movable = appt.status == "booked" and appt.id != keep and appt.start_at > now
        if movable:
            window = (
                window_after(course, previous)
                if phase == "maintenance" and course.interval_days
                else Window(day, day, day)  # an induction day stays on its day
            )
            figures = session_figures(
                course, ctx.product, ctx.patient, ctx.center.turnover_minutes, phase, first
            )
            placed = await _fit(session, ctx, appt, window, figures, actor_id, result)
            if placed is None:
                continue  # cancelled: the next session is placed after the one before it
            day = local_day(placed, tz_name)
        previous, first = day, False
    course.unbookable = result.problems[0].as_record() if result.problems else course.unbookable
    await session.flush()
    return result


def _minutes(appt: Appointment) -> int:
    return int((appt.end_at - appt.start_at).total_seconds() // 60)


async def _fit(
    session: AsyncSession,
    ctx: Context,
    appt: Appointment,
    window: Window,
    figures: SessionFigures,
    actor_id: uuid.UUID | None,
    result: CascadeResult,
) -> Appointment | None:
    """Give one booked session the chair time it needs inside its window; None if cancelled."""
    booked = _minutes(appt)
    dose_changed = appt.dose_g is not None and appt.dose_g != figures.dose_g
    # A nurse may have lengthened a session on purpose: it is shortened only for a new dose.
    minutes = figures.chair_minutes if dose_changed else max(figures.chair_minutes, booked)
    day = local_day(appt, ctx.center.timezone)
    if day in window and minutes == booked:
        if dose_changed:
            appt.dose_g = figures.dose_g
            result.resized.append(appt)
        return appt
    phase, sequence = appt.phase or "maintenance", appt.sequence or 0
    outcome = await _move_into(session, ctx, appt, window, timedelta(minutes=minutes), actor_id)
    if isinstance(outcome, Appointment):
        outcome.dose_g = figures.dose_g
        same_place = outcome.start_at == appt.start_at and outcome.chair_id == appt.chair_id
        (result.resized if same_place else result.moved).append(outcome)
        return outcome
    if phase == "induction":
        # Cancelling a loading day is for the nurse to decide: keep it and say what it needs.
        result.problems.append(
            Unbookable(
                phase,
                sequence,
                window,
                f"needs {minutes} chair minutes, booked for {booked}: {outcome}",
            )
        )
        return appt
    await booking.transition(session, appt, "cancel", actor_id)
    result.problems.append(Unbookable(phase, sequence, window, f"cancelled: {outcome}"))
    return None


async def _move_into(
    session: AsyncSession,
    ctx: Context,
    appt: Appointment,
    window: Window,
    duration: timedelta,
    actor_id: uuid.UUID | None,
) -> Appointment | str:
    """Move a booked session to the best open slot of `duration` in the window: where it is
    now when that still fits, else the course's preferences; or say why nothing fits."""
    # Read before any attempt: a failed attempt's savepoint rollback expires `appt`.
    start, chair_id, appt_id = appt.start_at, appt.chair_id, appt.id
    tz = zone(ctx.center.timezone)
    rank = slot_rank(ctx.center.timezone, ctx.course.preferred_start_time, chair_id)
    reasons: list[str] = []
    today = today_at(ctx.center)
    for day in days_by_preference(window, ctx.course.preferred_weekdays):
        if day < today:
            continue
        slots = await usable_slots(session, ctx, day, duration, moving=appt_id)
        if isinstance(slots, str):
            reasons.append(slots)
            continue
        here = [s for s in slots if s.start == start and s.chair_id == chair_id]
        if local_date(start, tz) == day and here:
            slots = here  # no need to move what still fits
        for slot in sorted(slots, key=rank)[:SLOTS_TRIED]:
            try:
                async with session.begin_nested():
                    place = await repository.chair_at_center(session, slot.chair_id)
                    placed = await booking.move_span(
                        session, appt, place, slot.start, slot.end, actor_id
                    )
                return placed.appointment
            except BookingConflict:
                await session.refresh(appt)
                continue
        reasons.append("every open slot was taken meanwhile")
    reason = max(set(reasons), key=reasons.count) if reasons else "no open day"
    return f"no slot in the window after the change: {reason}"


async def replan_patient(
    session: AsyncSession, patient_id: uuid.UUID, actor_id: uuid.UUID | None
) -> dict[uuid.UUID, CascadeResult]:
    """After the patient's weight, height or tolerated rate changed: every course of theirs
    re-sizes its booked sessions (dose and chair time), moving those that no longer fit."""
    course_ids = await session.scalars(
        select(Course.id)
        .where(Course.patient_id == patient_id, Course.status.in_(("active", "on_hold")))
        .order_by(Course.id)  # one lock order for every re-plan of this patient
    )
    return {cid: await cascade(session, cid, actor_id) for cid in list(course_ids)}
