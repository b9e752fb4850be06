"""Re-planning a course after one of its sessions changed, or the patient did. Flushes; never
commits: the change and its cascade are one transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core import locks
from core.clock import utcnow
from core.problems import BookingConflict
from scheduling.appointments import booking
from scheduling.appointments.models import Appointment
from scheduling.centers import repository as center_repository
from scheduling.courses import replans
from scheduling.courses.booking import replace_lost_induction_days
from scheduling.courses.models import Course
from scheduling.courses.recurrence import Window, days_by_preference
from scheduling.courses.service import get_course
from scheduling.courses.sessions import (
    Context,
    SessionFigures,
    Unbookable,
    dose_days,
    follows_its_first_day,
    load_context,
    local_day,
    session_figures,
    today_at,
    window_after,
)
from scheduling.courses.slots import SLOTS_TRIED, slot_rank, usable_slots
from scheduling.courses.windows import in_course_order
from scheduling.localtime import local_date, zone

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
    *,
    cause: str,
) -> CascadeResult:
    """Re-plan a course's booked sessions after one moved, was cancelled or missed, or after
    the patient's weight or tolerated rate changed. In course order, each later booked session
    gets the dose and chair time it now needs (the first session given carries the first-dose
    observation) and, in maintenance, a day inside its window after its predecessor (its
    actual date when it happened). An induction day that was lost is replaced after the last
    one. A session that cannot be given what it needs stays where it is and is reported: it
    keeps the patient's place, and the rest of the course still follows it. `keep` is the
    session a nurse just moved: it stays as they put it. Runs in the caller's transaction, so
    the change and its cascade are one. What it changed is kept (`replans`), with `cause`:
    what set it off, in words."""
    result = CascadeResult()
    course = await get_course(session, course_id, for_update=True)
    if course.status not in ("active", "on_hold"):
        return result
    await locks.course_planning(session, [course.center_id])
    ctx = await load_context(session, course)
    stood = replans.places(ctx.sessions)
    said = replans.history_reason(cause)  # on each move's row of the visit's history
    added, problems = await replace_lost_induction_days(session, ctx, actor_id)
    result.added.extend(added)
    result.problems.extend(problems)
    fresh = {a.id for a in added}  # booked just now, with today's figures
    tz_name, now = ctx.center.timezone, utcnow()
    previous: date | None = None
    first = True
    # Days of each maintenance dose as booked: a dose given over two stays so, even when one
    # of its days was lost (the other keeps its half).
    days_of = await dose_days(session, course.id)
    before: Appointment | None = None
    # In course order: a session a nurse moved past the next one must not swap places with it.
    for appt in in_course_order(ctx.sessions):
        day = local_day(appt, tz_name)
        phase = appt.phase or "maintenance"
        movable = appt.status == "booked" and appt.start_at > now
        days = days_of.get(appt.sequence or 0) if phase == "maintenance" else None
        figures = session_figures(
            course, ctx.product, ctx.patient, phase, first, days=days, part=appt.part
        )
        # A dose's second day goes where its first goes, pinned or not: the two are one dose.
        second_day = follows_its_first_day(appt, before)
        if movable and appt.pinned and appt.id != keep and not second_day:
            # A nurse placed it: it stays; only its dose follows, and a misfit is reported.
            _keep_pinned(appt, figures, day, result)
        elif movable and appt.id != keep and appt.id not in fresh:
            if second_day and previous is not None:
                after = previous + timedelta(days=1)  # the dose's next day, straight after
                window = Window(after, after, after)
            elif phase == "maintenance" and course.interval_days:
                window = window_after(course, previous)
            else:
                window = Window(day, day, day)  # an induction day stays on its day
            day = local_day(
                await _fit(session, ctx, appt, window, figures, actor_id, result, said), tz_name
            )
        previous, first, before = day, False, appt
    if result.problems:
        course.unbookable = result.problems[0].as_record()
    await session.flush()
    changed = [*result.moved, *result.resized, *result.added]
    await replans.record(session, course.id, stood, changed, cause, actor_id)
    return result


def _keep_pinned(
    appt: Appointment, figures: SessionFigures, day: date, result: CascadeResult
) -> None:
    if appt.dose_g is not None and appt.dose_g != figures.dose_g:
        appt.dose_g = figures.dose_g
        result.resized.append(appt)
    booked = _minutes(appt)
    if figures.chair_minutes > booked:
        result.problems.append(
            Unbookable(
                appt.phase or "maintenance",
                appt.sequence or 0,
                Window(day, day, day),
                f"placed by a nurse, so not moved: needs {figures.chair_minutes} chair minutes "
                f"and is booked for {booked}",
            )
        )


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
    reason: str,
) -> Appointment:
    """Give one booked session the chair time it needs inside its window, or report why not.
    A move's history row carries `reason`."""
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
    # Read before moving: the move changes these, and a failed attempt expires `appt`.
    start, chair_id = appt.start_at, appt.chair_id
    phase, sequence = appt.phase or "maintenance", appt.sequence or 0
    duration = timedelta(minutes=minutes)
    outcome = await _move_into(session, ctx, appt, window, duration, actor_id, reason)
    if isinstance(outcome, Appointment):
        outcome.dose_g = figures.dose_g
        same_place = outcome.start_at == start and outcome.chair_id == chair_id
        (result.resized if same_place else result.moved).append(outcome)
        return outcome
    if day not in window:
        why = f"kept outside its window ({window.earliest} to {window.latest}): {outcome}"
    else:
        why = f"needs {minutes} chair minutes and is booked for {booked}: {outcome}"
    result.problems.append(Unbookable(phase, sequence, window, why))
    return appt


async def _move_into(
    session: AsyncSession,
    ctx: Context,
    appt: Appointment,
    window: Window,
    duration: timedelta,
    actor_id: uuid.UUID | None,
    reason: str,
) -> Appointment | str:
    """Move a booked session to the best open slot of `duration` in the window, or say why
    nothing fits. Its own day comes first, and its own chair and time first on that day: the
    patient already knows that date."""
    # Read before any attempt: a failed attempt's savepoint rollback expires `appt`.
    start, chair_id, appt_id = appt.start_at, appt.chair_id, appt.id
    own_day = local_date(start, zone(ctx.center.timezone))
    rank = slot_rank(ctx.center.timezone, ctx.course.preferred_start_time, chair_id)
    reasons: list[str] = []
    today = today_at(ctx.center)
    days = days_by_preference(window, ctx.course.preferred_weekdays)
    if own_day in window:
        days = [own_day, *(d for d in days if d != own_day)]
    for day in days:
        if day < today:
            continue
        slots = await usable_slots(session, ctx, day, duration, moving=appt_id)
        if isinstance(slots, str):
            reasons.append(slots)
            continue
        ranked = sorted(slots, key=lambda s: (s.start != start or s.chair_id != chair_id, *rank(s)))
        for slot in ranked[:SLOTS_TRIED]:
            try:
                async with session.begin_nested():
                    place = await center_repository.chair_at_center(session, slot.chair_id)
                    placed = await booking.move_span(
                        session, appt, place, slot.start, slot.end, actor_id, reason
                    )
                return placed.appointment
            except BookingConflict:
                await session.refresh(appt)
                continue
        reasons.append("every open slot was taken meanwhile")
    if not reasons:
        return "the window has passed"
    return max(set(reasons), key=reasons.count)


async def lock_patient_courses(session: AsyncSession, patient_id: uuid.UUID) -> list[uuid.UUID]:
    """Lock the patient's courses, then their centers' planning, in the order every planner
    takes them; before the patient row changes. Returns the courses to re-plan."""
    ids = await session.scalars(select(Course.id).where(Course.patient_id == patient_id))
    rows = await locks.courses(session, Course, ids)
    await locks.course_planning(session, [c.center_id for c in rows])
    return [c.id for c in rows if c.status in ("active", "on_hold")]


async def replan_patient(
    session: AsyncSession, patient_id: uuid.UUID, actor_id: uuid.UUID | None
) -> dict[uuid.UUID, CascadeResult]:
    """After the patient's weight, height or tolerated rate changed: every course of theirs
    re-sizes its booked sessions (dose and chair time), moving those that no longer fit."""
    return {
        cid: await cascade(session, cid, actor_id, cause=replans.PATIENT_CHANGED)
        for cid in await lock_patient_courses(session, patient_id)
    }
