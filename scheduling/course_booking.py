"""Booking a course's sessions: the dose and chair time of each, induction days all or none,
maintenance sessions inside their windows. Flushes; never commits.

A course session is placed by the same booking service as a manual booking, so every chair,
patient and nurse rule holds. An induction is booked in a savepoint: all its days or none.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import bindparam, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.patients.models import Patient
from app.problems import BookingConflict, Conflict, Invalid
from insurance import coverage
from scheduling import availability, booking, products, repository
from scheduling.center_days import CenterDays, Day, PatientSpans
from scheduling.dose import MissingMeasurement, dose_grams, dosing_weight, round_to_vials
from scheduling.localtime import day_bounds, zone
from scheduling.models import (
    ACTIVE_STATUSES,
    Appointment,
    Center,
    Course,
    Product,
)
from scheduling.recurrence import (
    InductionImpossible,
    Window,
    days_by_preference,
    induction_days,
    maintenance_window,
)
from scheduling.rules import Span, day_rules
from scheduling.titration import ceiling_rate, chair_time, infusion_plan

# --- dose and chair time of one session ------------------------------------------------------


@dataclass(frozen=True)
class SessionFigures:
    dose_g: Decimal
    chair_minutes: int


def session_figures(
    course: Course, product: Product, patient: Patient, turnover: int, phase: str, first: bool
) -> SessionFigures:
    per_kg = (
        course.induction_total_g_per_kg / (course.induction_days or 1)
        if phase == "induction" and course.induction_total_g_per_kg is not None
        else course.maintenance_g_per_kg
    )
    assert per_kg is not None
    try:
        weight = dosing_weight(
            float(patient.weight_kg) if patient.weight_kg is not None else None,
            float(patient.height_cm) if patient.height_cm is not None else None,
            patient.sex,
            "adjusted" if course.weight_basis == "adjusted" else "actual",
        )
    except MissingMeasurement as exc:
        raise Invalid(str(exc)) from exc
    dose = dose_grams(float(per_kg), weight)
    if course.vial_tolerance_pct:
        dose = round_to_vials(dose, product.vial_sizes_g, float(course.vial_tolerance_pct))
    titration = products.titration_of(product)
    caps = (
        float(course.tolerated_rate) if course.tolerated_rate is not None else None,
        products.minimum_rate(product) if course.renal_risk or course.thrombosis_risk else None,
    )
    plan = infusion_plan(dose * 1000 / weight, titration, ceiling_rate(titration, caps))
    chair = chair_time(
        plan.minutes,
        premed=product.premed_minutes,
        observation=product.observation_minutes,
        first_dose_extra=product.first_dose_extra_observation_minutes,
        first_dose=first,
        turnover=turnover,
    )
    return SessionFigures(Decimal(str(round(dose, 2))), chair.total)


# --- booking -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Unbookable:
    phase: str
    sequence: int
    window: Window
    reason: str

    def as_record(self) -> dict[str, str]:
        """As kept on the course, for its plan to show."""
        return {
            "phase": self.phase,
            "sequence": str(self.sequence),
            "target_date": self.window.target.isoformat(),
            "reason": self.reason,
        }


@dataclass
class Booked:
    appointments: list[Appointment]
    problems: list[Unbookable]  # the first is where the course is stuck

    @property
    def unbookable(self) -> Unbookable | None:
        return self.problems[0] if self.problems else None


@dataclass
class Context:
    course: Course
    center: Center
    product: Product
    patient: Patient
    sessions: list[Appointment]  # the course's active and completed sessions, in order
    days: CenterDays  # the center's days as the planner sees them
    _patient_spans: PatientSpans | None = None

    async def patient_spans(self, session: AsyncSession) -> PatientSpans:
        """The patient's active appointments from now on, read when first needed."""
        if self._patient_spans is None:
            now = utcnow()
            self._patient_spans = await PatientSpans.load(
                session, self.patient.id, now - timedelta(days=1), now + PATIENT_LOOKAHEAD
            )
        return self._patient_spans

    def withdraw(self, appointments: list[Appointment]) -> None:
        """Bookings that were rolled back: the planner's copies forget them."""
        for appt in appointments:
            self.days.unbooked(local_day(appt, self.center.timezone), appt.id)
            if self._patient_spans is not None:
                spans = self._patient_spans.spans
                spans[:] = [s for s in spans if s.id != appt.id]


PATIENT_LOOKAHEAD = timedelta(days=3 * 366)  # beyond any booking horizon


async def load_context(
    session: AsyncSession, course: Course, days: CenterDays | None = None
) -> Context:
    """`days`: the center's days kept by a booking run, if the caller has them."""
    if days is None or days.center.id != course.center_id:
        days = CenterDays(await repository.get_center(session, course.center_id))
    product = await products.get_product(session, course.product_id)
    patient = await session.get(Patient, course.patient_id)
    assert patient is not None
    sessions = list(await session.scalars(_SESSIONS, {"course_id": course.id}))
    return Context(course, days.center, product, patient, sessions, days)


_SESSIONS = (  # built once: a booking run loads one course after another
    select(Appointment)
    .where(
        Appointment.course_id == bindparam("course_id"),
        Appointment.status.in_([literal_column(f"'{s}'") for s in (*ACTIVE_STATUSES, "completed")]),
    )
    .order_by(Appointment.start_at)
)


async def last_sequence(session: AsyncSession, course_id: uuid.UUID, phase: str) -> int:
    highest = await session.scalar(
        select(func.max(Appointment.sequence)).where(
            Appointment.course_id == course_id, Appointment.phase == phase
        )
    )
    return int(highest or 0)


def local_day(appt: Appointment, tz_name: str) -> date:
    return appt.start_at.astimezone(zone(tz_name)).date()


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
        for b in await repository.patient_spans(session, ctx.patient.id, first, last)
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
    """The best slot of the day for a new session of the course (see `availability.best_slots`),
    in the future and leaving the patient free; or why there is none."""
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

    slots = availability.best_slots(
        day,
        chairs,
        timedelta(minutes=figures.chair_minutes),
        minutes_off=minutes_off,
        preferred_chair=preferred_chair,
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
    return reason


def _why_no_slot(tally: Counter[str]) -> str:
    if not tally:
        return "no time of the day is open long enough, or it has passed"
    if tally["nurses"] >= tally["chairs"]:
        return "no nurse capacity"
    return "no chair free"


def slot_rank(
    tz_name: str, wanted: time, preferred_chair: uuid.UUID | None
) -> Callable[[availability.OpenSlot], tuple[bool, int]]:
    """Best slot first: the chair the course used last, then closest to the preferred time."""
    tz = zone(tz_name)

    def rank(slot: availability.OpenSlot) -> tuple[bool, int]:
        local = slot.start.astimezone(tz)
        minutes = abs((local.hour * 60 + local.minute) - (wanted.hour * 60 + wanted.minute))
        return (slot.chair_id != preferred_chair, minutes)

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
) -> Appointment | str:
    """Book the session on `day` at the best open slot, or say why the day has none. The
    caller records the bookings it keeps (`booking.record_booked`)."""
    view = await ctx.days.day(session, day)
    if not view.is_open:
        return "center closed"
    if full := ctx.days.no_room(
        day, ctx.course.chair_kind, timedelta(minutes=figures.chair_minutes)
    ):
        return full
    chairs = await ctx.days.chairs(session, ctx.course.chair_kind)
    patient = await ctx.patient_spans(session)
    what = booking.CourseSession(ctx.course.id, phase, sequence, figures.dose_g)
    for _ in range(SLOTS_TRIED):
        if not view.is_open:  # closed since the run read the calendar
            return "center closed"
        slot = _best_slot(ctx, view, chairs, patient, figures, preferred_chair)
        if isinstance(slot, str):
            return slot
        try:
            # A refused slot leaves the transaction as it was; only a booking insurance would
            # not pay for, at a center that blocks those, needs a savepoint to take it back.
            blocking = ctx.center.coverage_policy == "block"
            async with session.begin_nested() if blocking else nullcontext():
                appt = await booking.book_planned(
                    session, ctx.days, slot.chair_id, patient, slot.start, slot.end, actor_id, what
                )
                if blocking:
                    # Cover depends on the date, not the slot: one check decides the day.
                    why = await coverage.uncovered_reason(session, ctx.patient.id, appt.id)
                    if why is not None:
                        raise _Uncovered(why)
        except BookingConflict:
            # Someone booked the day meanwhile: `book_planned` read it again; choose again.
            view = await ctx.days.day(session, day)
            continue
        except _Uncovered as uncovered:
            return f"insurance would not pay for it (the center blocks that): {uncovered.reason}"
        ctx.days.booked(day, Span(appt.id, appt.start_at, appt.end_at, appt.chair_id))
        patient.spans.append(Span(appt.id, appt.start_at, appt.end_at))
        return appt
    return "the day's bookings kept changing while it was being booked"


class _Uncovered(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason


class _InductionFailed(Exception):
    def __init__(self, reason: str, day: date) -> None:
        self.reason, self.day = reason, day


async def book_through(
    session: AsyncSession,
    course: Course,
    through: date,
    actor_id: uuid.UUID | None,
    days: CenterDays | None = None,
) -> Booked:
    """Book the course's sessions due by `through`. `days`: the center's days kept by a
    booking run across its courses."""
    if course.status != "active":
        raise Conflict(f"a course that is {course.status} books nothing")
    await booking.lock_course_planning(session, [course.center_id])
    ctx = await load_context(session, course, days)
    booked: list[Appointment] = []
    turnover = ctx.center.turnover_minutes

    problems: list[Unbookable] = []
    induction_failed = False
    induction_due = course.induction_days and course.start_date <= through
    if induction_due and not any(a.phase == "induction" for a in ctx.sessions):
        stuck = await _book_induction(session, ctx, turnover, actor_id, booked)
        if stuck is not None:
            problems.append(stuck)
            induction_failed = True  # maintenance follows a loading course that is not booked
    elif induction_due:  # days lost earlier that could not be replaced then
        added, lost = await _replace_lost_days(session, ctx, actor_id)
        booked.extend(added)
        problems.extend(lost)  # maintenance still goes on: the lost dose is the doctor's call
    if course.interval_days and not induction_failed:
        stuck = await _book_maintenance(session, ctx, through, turnover, actor_id, booked)
        if stuck is not None:
            problems.append(stuck)

    course.unbookable = problems[0].as_record() if problems else None
    await booking.record_booked(session, booked, actor_id)
    await session.flush()
    return Booked(booked, problems)


async def _book_induction(
    session: AsyncSession,
    ctx: Context,
    turnover: int,
    actor_id: uuid.UUID | None,
    booked: list[Appointment],
) -> Unbookable | None:
    course = ctx.course
    count = course.induction_days or 1
    first_day = max(course.start_date, today_at(ctx.center))
    calendar = await ctx.days.calendar(session, first_day, first_day + timedelta(days=count + 14))

    def is_open(day: date) -> bool:
        return day_rules(calendar, day).opens_at is not None and day not in calendar.closures

    window = Window(course.start_date, course.start_date, course.start_date)
    try:
        days = induction_days(first_day, count, is_open, course.induction_skips_closures)
    except InductionImpossible as exc:
        return Unbookable("induction", 1, window, str(exc))
    chair: uuid.UUID | None = None
    placed: list[Appointment] = []
    try:
        async with session.begin_nested():  # all days or none
            for sequence, day in enumerate(days, start=1):
                figures = session_figures(
                    course, ctx.product, ctx.patient, turnover, "induction", sequence == 1
                )
                result = await book_day(
                    session, ctx, day, "induction", sequence, figures, chair, actor_id
                )
                if isinstance(result, str):
                    raise _InductionFailed(result, day)
                chair = result.chair_id
                placed.append(result)
    except _InductionFailed as failed:
        ctx.withdraw(placed)  # all days or none: those already placed were rolled back
        return Unbookable(
            "induction", 1, window, f"{failed.reason} on {failed.day.isoformat()}: nothing booked"
        )
    booked.extend(placed)
    ctx.sessions.extend(placed)
    return None


async def _book_maintenance(
    session: AsyncSession,
    ctx: Context,
    through: date,
    turnover: int,
    actor_id: uuid.UUID | None,
    booked: list[Appointment],
) -> Unbookable | None:
    course = ctx.course
    assert course.interval_days and course.window_min_days and course.window_max_days
    tz_name = ctx.center.timezone
    today = today_at(ctx.center)
    done = [a for a in ctx.sessions if a.phase == "maintenance"]
    # Sessions count towards the cycles; numbers are never reused (a cancelled one keeps its).
    count = len(done)
    sequence = await last_sequence(session, course.id, "maintenance")
    last = max(ctx.sessions, key=lambda a: a.start_at) if ctx.sessions else None
    previous = local_day(last, tz_name) if last else None
    chair = last.chair_id if last else None
    while course.cycles is None or count < course.cycles:
        window = window_after(course, previous)
        if window.target > through or (course.end_date and window.target > course.end_date):
            return None
        sequence += 1
        count += 1
        figures = session_figures(
            course, ctx.product, ctx.patient, turnover, "maintenance", not ctx.sessions
        )
        reasons: list[str] = []
        placed: Appointment | None = None
        for day in days_by_preference(window, course.preferred_weekdays):
            if day < today:
                reasons.append("the window has passed")
                continue
            result = await book_day(
                session, ctx, day, "maintenance", sequence, figures, chair, actor_id
            )
            if isinstance(result, Appointment):
                placed = result
                break
            reasons.append(result)
        if placed is None:
            reason = max(set(reasons), key=reasons.count) if reasons else "no open day"
            return Unbookable("maintenance", sequence, window, f"no slot in the window: {reason}")
        booked.append(placed)
        ctx.sessions.append(placed)
        previous, chair = local_day(placed, tz_name), placed.chair_id
    return None


async def center_of(session: AsyncSession, course: Course) -> Center:
    return await repository.get_center(session, course.center_id)


def today_at(center: Center) -> date:
    """Today's date in the center's time zone."""
    return datetime.now(zone(center.timezone)).date()


def window_after(course: Course, previous: date | None) -> Window:
    assert course.interval_days and course.window_min_days and course.window_max_days
    if previous is None:
        slack = timedelta(days=course.window_max_days - course.interval_days)
        return Window(course.start_date, course.start_date, course.start_date + slack)
    return maintenance_window(
        previous, course.interval_days, course.window_min_days, course.window_max_days
    )


async def replace_lost_induction_days(
    session: AsyncSession, ctx: Context, actor_id: uuid.UUID | None
) -> tuple[list[Appointment], list[Unbookable]]:
    """Book loading days lost earlier (see `_replace_lost_days`), with their history."""
    added, problems = await _replace_lost_days(session, ctx, actor_id)
    await booking.record_booked(session, added, actor_id)
    return added, problems


async def _replace_lost_days(
    session: AsyncSession, ctx: Context, actor_id: uuid.UUID | None
) -> tuple[list[Appointment], list[Unbookable]]:
    """A loading course delivers its total dose over its days: a cancelled or missed day is
    added after the last planned one (on the next open day when the regimen allows skipping),
    until maintenance begins; from then on it is the doctor's call."""
    course = ctx.course
    given = [a for a in ctx.sessions if a.phase == "induction"]
    missing = (course.induction_days or 0) - len(given)
    if not given or missing <= 0 or lost_days_are_final(ctx):
        return [], []  # not booked yet (a booking run books it whole), complete, or too late
    start = await next_loading_day(session, ctx)
    calendar = await ctx.days.calendar(session, start, start + timedelta(days=14))

    def is_open(day: date) -> bool:
        return day_rules(calendar, day).opens_at is not None and day not in calendar.closures

    window = Window(start, start, start)
    sequence = await last_sequence(session, course.id, "induction")
    if not is_open(start) and not course.induction_skips_closures:
        reason = (
            f"a lost induction day cannot follow on: the center is closed on {start}, "
            "and this regimen does not allow skipping a day"
        )
        return [], [Unbookable("induction", sequence + 1, window, reason)]
    try:
        days = induction_days(start, missing, is_open, course.induction_skips_closures)
    except InductionImpossible as exc:
        return [], [Unbookable("induction", sequence + 1, window, str(exc))]
    figures = session_figures(
        course, ctx.product, ctx.patient, ctx.center.turnover_minutes, "induction", False
    )
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


async def next_loading_day(session: AsyncSession, ctx: Context) -> date:
    """Where a lost loading day goes: after the last one planned (even if that one was lost
    too), and not before today."""
    last_planned = await session.scalar(
        select(func.max(Appointment.start_at)).where(
            Appointment.course_id == ctx.course.id, Appointment.phase == "induction"
        )
    )
    assert last_planned is not None
    after = last_planned.astimezone(zone(ctx.center.timezone)).date() + timedelta(days=1)
    return max(after, today_at(ctx.center))


def lost_days_are_final(ctx: Context) -> bool:
    """Once a maintenance session has been given, lost loading days are not made up."""
    return any(
        a.phase == "maintenance" and a.status not in ("booked", "cancelled", "no_show")
        for a in ctx.sessions
    )
