"""Treatment courses: ordering one, booking its sessions, and its plan. Flushes; never commits.

A course session is placed by the same booking service as a manual booking, so every chair,
patient and nurse rule holds. An induction is booked in a savepoint: all its days or none.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.pagination import page
from app.patients.models import Patient, PatientMeasurement
from app.problems import BookingConflict, Conflict, IllegalTransition, Invalid, NotFound
from scheduling import availability, booking, products, regimens, repository
from scheduling.course_schemas import (
    CourseCreate,
    SessionRecordIn,
)
from scheduling.dose import MissingMeasurement, dose_grams, dosing_weight, round_to_vials
from scheduling.localtime import day_bounds, local_date, zone
from scheduling.models import (
    ACTIVE_STATUSES,
    Appointment,
    Center,
    Course,
    CourseChange,
    Product,
    SessionRecord,
)
from scheduling.recurrence import (
    InductionImpossible,
    Window,
    days_by_preference,
    induction_days,
    maintenance_window,
)
from scheduling.rules import day_rules
from scheduling.titration import ceiling_rate, chair_time, infusion_plan

COURSE_ACTIONS = {
    "hold": ({"active"}, "on_hold"),
    "resume": ({"on_hold"}, "active"),
    "discontinue": ({"active", "on_hold"}, "discontinued"),
}


def _check_dose(value: Decimal, what: str, product: Product, override: str | None) -> None:
    """An order outside the product's usual range needs a stated reason."""
    low, high = product.usual_dose_min_g_per_kg, product.usual_dose_max_g_per_kg
    if override or ((low is None or low <= value) and (high is None or value <= high)):
        return
    usual = f"{low or 0}-{high} g/kg" if high is not None else f"at least {low} g/kg"
    raise Invalid(
        f"the {what} of {value} g/kg is outside the usual {usual} for {product.name}; "
        "give dose_override_reason to order it anyway"
    )


async def create_course(
    session: AsyncSession, data: CourseCreate, actor_id: uuid.UUID | None
) -> Course:
    preset = regimens.phases(await regimens.find(session, data.diagnosis_code))
    induction = data.induction if "induction" in data.model_fields_set else preset[0]
    maintenance = data.maintenance if "maintenance" in data.model_fields_set else preset[1]
    if induction is None and maintenance is None:
        raise Invalid(
            "a course needs an induction, a maintenance phase or both "
            f"(there is no usual regimen for {data.diagnosis_code})"
        )
    product = await products.get_product(session, data.product_id)
    if not product.active:
        raise Invalid(f"{product.name} is no longer in use; order an active product")
    override = data.dose_override_reason
    if induction is not None:
        _check_dose(induction.total_dose_g_per_kg, "induction dose", product, override)
    if maintenance is not None:
        _check_dose(maintenance.dose_g_per_kg, "maintenance dose", product, override)
        if maintenance.end_date is not None and maintenance.end_date <= data.start_date:
            raise Invalid("the maintenance end_date must be after the start_date")
    patient = await session.get(Patient, data.patient_id)
    if patient is None:
        raise NotFound("no such patient")
    try:  # a dose per kilogram needs the measurements its dosing weight is taken from
        dosing_weight(
            float(patient.weight_kg) if patient.weight_kg is not None else None,
            float(patient.height_cm) if patient.height_cm is not None else None,
            patient.sex,
            data.weight_basis,
        )
    except MissingMeasurement as exc:
        raise Invalid(f"{exc}; record it on the patient first") from exc
    await repository.get_center(session, data.center_id)
    course = Course(
        id=uuid.uuid4(),
        patient_id=data.patient_id,
        center_id=data.center_id,
        product_id=data.product_id,
        diagnosis_code=data.diagnosis_code,
        status="active",
        induction_total_g_per_kg=induction.total_dose_g_per_kg if induction else None,
        induction_days=induction.days if induction else None,
        induction_skips_closures=induction.skip_closures if induction else False,
        maintenance_g_per_kg=maintenance.dose_g_per_kg if maintenance else None,
        interval_days=maintenance.interval_days if maintenance else None,
        window_min_days=maintenance.window_min_days if maintenance else None,
        window_max_days=maintenance.window_max_days if maintenance else None,
        cycles=maintenance.cycles if maintenance else None,
        end_date=maintenance.end_date if maintenance else None,
        start_date=data.start_date,
        preferred_weekdays=sorted(set(data.preferred_weekdays)),
        preferred_start_time=time.fromisoformat(data.preferred_start_time),
        chair_kind=data.chair_kind,
        weight_basis=data.weight_basis,
        vial_tolerance_pct=data.vial_tolerance_pct,
        renal_risk=data.renal_risk,
        thrombosis_risk=data.thrombosis_risk,
        tolerated_rate=data.tolerated_rate_mg_per_kg_min,
        dose_override_reason=data.dose_override_reason,
        created_by=actor_id,
    )
    session.add(course)
    session.add(CourseChange(course_id=course.id, actor_id=actor_id, to_status="active"))
    await session.flush()
    return course


async def list_courses(
    session: AsyncSession,
    patient_id: uuid.UUID | None,
    status: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[Course], str | None]:
    query = select(Course)
    if patient_id is not None:
        query = query.where(Course.patient_id == patient_id)
    if status is not None:
        query = query.where(Course.status == status)
    return await page(session, query, [Course.start_date, Course.id], limit, cursor)


async def get_course(
    session: AsyncSession, course_id: uuid.UUID, *, for_update: bool = False
) -> Course:
    """The course; `for_update` locks its row, so booking runs and cascades of one course
    queue up instead of placing the same session twice."""
    course = await session.get(Course, course_id, with_for_update=for_update)
    if course is None:
        raise NotFound("no such course")
    return course


async def act(
    session: AsyncSession,
    course: Course,
    action: str,
    actor_id: uuid.UUID | None,
    note: str | None,
) -> Course:
    sources, target = COURSE_ACTIONS[action]
    if course.status not in sources:
        raise IllegalTransition(f"cannot {action} a course that is {course.status}")
    before = course.status
    course.status = target
    if target == "discontinued":
        # A stopped course keeps no chairs: its booked sessions are cancelled.
        booked = await session.scalars(
            select(Appointment).where(
                Appointment.course_id == course.id, Appointment.status == "booked"
            )
        )
        for appt in booked:
            await booking.transition(session, appt, "cancel", actor_id)
    session.add(
        CourseChange(
            course_id=course.id,
            actor_id=actor_id,
            from_status=before,
            to_status=target,
            note=note,
        )
    )
    await session.flush()
    return course


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
    unbookable: Unbookable | None


@dataclass
class _Context:
    course: Course
    center: Center
    product: Product
    patient: Patient
    sessions: list[Appointment]  # the course's active and completed sessions, in order


async def _context(session: AsyncSession, course: Course) -> _Context:
    center = await repository.get_center(session, course.center_id)
    product = await products.get_product(session, course.product_id)
    patient = await session.get(Patient, course.patient_id)
    assert patient is not None
    sessions = list(
        await session.scalars(
            select(Appointment)
            .where(
                Appointment.course_id == course.id,
                Appointment.status.in_((*ACTIVE_STATUSES, "completed")),
            )
            .order_by(Appointment.start_at)
        )
    )
    return _Context(course, center, product, patient, sessions)


async def _last_sequence(session: AsyncSession, course_id: uuid.UUID, phase: str) -> int:
    highest = await session.scalar(
        select(func.max(Appointment.sequence)).where(
            Appointment.course_id == course_id, Appointment.phase == phase
        )
    )
    return int(highest or 0)


def _local_day(appt: Appointment, tz_name: str) -> date:
    return appt.start_at.astimezone(zone(tz_name)).date()


SLOTS_TRIED = 20  # open slots tried on one day before moving on (someone may race us)


async def _usable_slots(
    session: AsyncSession,
    ctx: _Context,
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


def _why_no_slot(tally: Counter[str]) -> str:
    if not tally:
        return "no time of the day is open long enough, or it has passed"
    if tally["nurses"] >= tally["chairs"]:
        return "no nurse capacity"
    return "no chair free"


def _slot_rank(
    tz_name: str, wanted: time, preferred_chair: uuid.UUID | None
) -> Callable[[availability.OpenSlot], tuple[bool, int]]:
    """Best slot first: the chair the course used last, then closest to the preferred time."""
    tz = zone(tz_name)

    def rank(slot: availability.OpenSlot) -> tuple[bool, int]:
        local = slot.start.astimezone(tz)
        minutes = abs((local.hour * 60 + local.minute) - (wanted.hour * 60 + wanted.minute))
        return (slot.chair_id != preferred_chair, minutes)

    return rank


async def _book_day(
    session: AsyncSession,
    ctx: _Context,
    day: date,
    phase: str,
    sequence: int,
    figures: SessionFigures,
    preferred_chair: uuid.UUID | None,
    actor_id: uuid.UUID | None,
) -> Appointment | str:
    """Book the session on `day` at the best open slot, or say why the day has none."""
    center = ctx.center
    rules = day_rules(
        await repository.center_calendar(session, repository.CenterFacts.of(center), day, day),
        day,
    )
    if rules.closed_reason is not None or rules.opens_at is None:
        return "center closed"
    slots = await _usable_slots(session, ctx, day, timedelta(minutes=figures.chair_minutes))
    if isinstance(slots, str):
        return slots
    rank = _slot_rank(center.timezone, ctx.course.preferred_start_time, preferred_chair)
    for slot in sorted(slots, key=rank)[:SLOTS_TRIED]:
        try:
            async with session.begin_nested():
                place = await repository.chair_at_center(session, slot.chair_id)
                placed = await booking.book_span(
                    session,
                    place,
                    ctx.patient.id,
                    slot.start,
                    slot.end,
                    actor_id,
                    booking.CourseSession(ctx.course.id, phase, sequence, figures.dose_g),
                )
            return placed.appointment
        except BookingConflict:
            continue  # the patient is busy then, or someone took the slot meanwhile
    return "the patient has other appointments at every open time"


class _InductionFailed(Exception):
    def __init__(self, reason: str, day: date) -> None:
        self.reason, self.day = reason, day


async def book_through(
    session: AsyncSession, course: Course, through: date, actor_id: uuid.UUID | None
) -> Booked:
    if course.status != "active":
        raise Conflict(f"a course that is {course.status} books nothing")
    await booking.lock_course_planning(session, course.center_id)
    ctx = await _context(session, course)
    booked: list[Appointment] = []
    turnover = ctx.center.turnover_minutes
    unbookable: Unbookable | None = None
    lost: Unbookable | None = None

    induction_due = course.induction_days and course.start_date <= through
    if induction_due and not any(a.phase == "induction" for a in ctx.sessions):
        unbookable = await _book_induction(session, ctx, turnover, actor_id, booked)
    elif induction_due:  # days lost earlier that could not be replaced then
        replaced = CascadeResult()
        await _replace_lost_induction_days(session, ctx, actor_id, replaced)
        booked.extend(replaced.added)
        # Maintenance still goes on: whether to give the lost dose later is the doctor's call.
        lost = replaced.problems[0] if replaced.problems else None
    if unbookable is None and course.interval_days:
        unbookable = await _book_maintenance(session, ctx, through, turnover, actor_id, booked)
    unbookable = lost or unbookable

    course.unbookable = None if unbookable is None else unbookable.as_record()
    await session.flush()
    return Booked(booked, unbookable)


async def _book_induction(
    session: AsyncSession,
    ctx: _Context,
    turnover: int,
    actor_id: uuid.UUID | None,
    booked: list[Appointment],
) -> Unbookable | None:
    course = ctx.course
    count = course.induction_days or 1
    first_day = max(course.start_date, today_at(ctx.center))
    calendar = await repository.center_calendar(
        session,
        repository.CenterFacts.of(ctx.center),
        first_day,
        first_day + timedelta(days=count + 14),
    )

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
                result = await _book_day(
                    session, ctx, day, "induction", sequence, figures, chair, actor_id
                )
                if isinstance(result, str):
                    raise _InductionFailed(result, day)
                chair = result.chair_id
                placed.append(result)
    except _InductionFailed as failed:
        return Unbookable(
            "induction", 1, window, f"{failed.reason} on {failed.day.isoformat()}: nothing booked"
        )
    booked.extend(placed)
    ctx.sessions.extend(placed)
    return None


async def _book_maintenance(
    session: AsyncSession,
    ctx: _Context,
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
    sequence = await _last_sequence(session, course.id, "maintenance")
    last = ctx.sessions[-1] if ctx.sessions else None
    previous = _local_day(last, tz_name) if last else None
    chair = last.chair_id if last else None
    while course.cycles is None or count < course.cycles:
        window = _window_after(course, previous)
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
            result = await _book_day(
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
        previous, chair = _local_day(placed, tz_name), placed.chair_id
    return None


# --- the plan ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanEntry:
    phase: str
    sequence: int
    window: Window
    appointment: Appointment | None
    dose_g: Decimal | None
    chair_minutes: int | None
    unbookable_reason: str | None


def _window_after(course: Course, previous: date | None) -> Window:
    assert course.interval_days and course.window_min_days and course.window_max_days
    if previous is None:
        slack = timedelta(days=course.window_max_days - course.interval_days)
        return Window(course.start_date, course.start_date, course.start_date + slack)
    return maintenance_window(
        previous, course.interval_days, course.window_min_days, course.window_max_days
    )


async def plan(
    session: AsyncSession, course: Course, today: date, through: date
) -> list[PlanEntry]:
    """Every upcoming session up to `through`: booked ones with their appointment, the rest
    where they are due, each with its window (from its predecessor), dose and chair time."""
    ctx = await _context(session, course)
    tz_name = ctx.center.timezone
    turnover = ctx.center.turnover_minutes
    stuck = course.unbookable or {}
    entries: list[PlanEntry] = []
    previous: date | None = None
    for appt in ctx.sessions:
        day = _local_day(appt, tz_name)
        if appt.phase == "induction" or course.interval_days is None:
            window = Window(day, day, day)
        else:
            window = _window_after(course, previous)
        if day >= today and appt.status in ACTIVE_STATUSES:
            minutes = int((appt.end_at - appt.start_at).total_seconds() // 60)
            entries.append(
                PlanEntry(
                    appt.phase or "", appt.sequence or 0, window, appt, appt.dose_g, minutes, None
                )
            )
        previous = day

    reported: set[str] = set()

    def reason(phase: str) -> str | None:
        """Why the last booking run could not place this phase's next session: shown on the
        first unbooked session of the phase (numbers of cancelled sessions are not reused)."""
        if stuck.get("phase") != phase or phase in reported:
            return None
        reported.add(phase)
        return stuck.get("reason")

    if course.status != "active":
        return entries
    loading = [a for a in ctx.sessions if a.phase == "induction"]
    missing = (course.induction_days or 0) - len(loading)
    if missing > 0:
        # Not booked yet (all days from the start), or days lost (added after the last one).
        if loading:
            first_day = _local_day(loading[-1], tz_name) + timedelta(days=1)
            sequence = await _last_sequence(session, course.id, "induction")
        else:
            first_day, sequence = course.start_date, 0
        for offset in range(missing):
            day = first_day + timedelta(days=offset)
            first = not loading and offset == 0
            figures = session_figures(
                course, ctx.product, ctx.patient, turnover, "induction", first
            )
            entries.append(
                PlanEntry(
                    "induction",
                    sequence + offset + 1,
                    Window(day, day, day),
                    None,
                    figures.dose_g,
                    figures.chair_minutes,
                    reason("induction"),
                )
            )
            previous = day
    if course.interval_days:
        # Kept sessions count towards the cycles; numbers continue after the highest used.
        count = sum(1 for a in ctx.sessions if a.phase == "maintenance")
        sequence = await _last_sequence(session, course.id, "maintenance")
        figures = session_figures(
            course, ctx.product, ctx.patient, turnover, "maintenance", previous is None
        )
        while course.cycles is None or count < course.cycles:
            window = _window_after(course, previous)
            if window.target > through or (course.end_date and window.target > course.end_date):
                break
            sequence += 1
            count += 1
            entries.append(
                PlanEntry(
                    "maintenance",
                    sequence,
                    window,
                    None,
                    figures.dose_g,
                    figures.chair_minutes,
                    reason("maintenance"),
                )
            )
            previous = window.target
    return entries


async def center_of(session: AsyncSession, course: Course) -> Center:
    return await repository.get_center(session, course.center_id)


def today_at(center: Center) -> date:
    """Today's date in the center's time zone."""
    return datetime.now(zone(center.timezone)).date()


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
    ctx = await _context(session, course)
    await _replace_lost_induction_days(session, ctx, actor_id, result)
    tz_name, now = ctx.center.timezone, utcnow()
    previous: date | None = None
    first = True
    # In course order: a session a nurse moved past the next one must not swap places with it.
    for appt in sorted(ctx.sessions, key=lambda a: (a.phase != "induction", a.sequence or 0)):
        day = _local_day(appt, tz_name)
        phase = appt.phase or "maintenance"
        movable = appt.status == "booked" and appt.id != keep and appt.start_at > now
        if movable:
            window = (
                _window_after(course, previous)
                if phase == "maintenance" and course.interval_days
                else Window(day, day, day)  # an induction day stays on its day
            )
            figures = session_figures(
                course, ctx.product, ctx.patient, ctx.center.turnover_minutes, phase, first
            )
            placed = await _fit(session, ctx, appt, window, figures, actor_id, result)
            if placed is None:
                continue  # cancelled: the next session is placed after the one before it
            day = _local_day(placed, tz_name)
        previous, first = day, False
    course.unbookable = result.problems[0].as_record() if result.problems else course.unbookable
    await session.flush()
    return result


def _minutes(appt: Appointment) -> int:
    return int((appt.end_at - appt.start_at).total_seconds() // 60)


async def _fit(
    session: AsyncSession,
    ctx: _Context,
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
    day = _local_day(appt, ctx.center.timezone)
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
    ctx: _Context,
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
    rank = _slot_rank(ctx.center.timezone, ctx.course.preferred_start_time, chair_id)
    reasons: list[str] = []
    today = today_at(ctx.center)
    for day in days_by_preference(window, ctx.course.preferred_weekdays):
        if day < today:
            continue
        slots = await _usable_slots(session, ctx, day, duration, moving=appt_id)
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


async def _replace_lost_induction_days(
    session: AsyncSession, ctx: _Context, actor_id: uuid.UUID | None, result: CascadeResult
) -> None:
    """A loading course delivers its total dose over its days: a cancelled or missed day is
    added after the last one (on the next open day when the regimen allows skipping)."""
    course = ctx.course
    given = [a for a in ctx.sessions if a.phase == "induction"]
    missing = (course.induction_days or 0) - len(given)
    if not given or missing <= 0:
        return  # not booked yet (a booking run books it whole), or complete
    last = max(_local_day(a, ctx.center.timezone) for a in given)
    start = last + timedelta(days=1)
    calendar = await repository.center_calendar(
        session, repository.CenterFacts.of(ctx.center), start, start + timedelta(days=14)
    )

    def is_open(day: date) -> bool:
        return day_rules(calendar, day).opens_at is not None and day not in calendar.closures

    window = Window(start, start, start)
    sequence = await _last_sequence(session, course.id, "induction")
    if not is_open(start) and not course.induction_skips_closures:
        result.problems.append(
            Unbookable(
                "induction",
                sequence + 1,
                window,
                f"a lost induction day cannot follow on: the center is closed on {start}, "
                "and this regimen does not allow skipping a day",
            )
        )
        return
    try:
        days = induction_days(start, missing, is_open, course.induction_skips_closures)
    except InductionImpossible as exc:
        result.problems.append(Unbookable("induction", sequence + 1, window, str(exc)))
        return
    figures = session_figures(
        course, ctx.product, ctx.patient, ctx.center.turnover_minutes, "induction", False
    )
    chair = given[-1].chair_id
    for day in days:
        sequence += 1
        placed = await _book_day(session, ctx, day, "induction", sequence, figures, chair, actor_id)
        if isinstance(placed, str):
            result.problems.append(Unbookable("induction", sequence, Window(day, day, day), placed))
            return
        result.added.append(placed)
        ctx.sessions.append(placed)


# --- session records -----------------------------------------------------------------------


async def record_session(
    session: AsyncSession, appt: Appointment, data: SessionRecordIn, actor_id: uuid.UUID | None
) -> SessionRecord:
    """Keep what happened at a completed session. A measured weight becomes the patient's
    current weight (future doses follow it); a tolerated rate caps the course's later
    sessions."""
    record = SessionRecord(
        appointment_id=appt.id,
        course_id=appt.course_id,
        recorded_by=actor_id,
        weight_kg=data.weight_kg,
        dose_given_g=data.dose_given_g,
        actual_start=data.actual_start,
        actual_end=data.actual_end,
        reaction=data.reaction,
        tolerated_rate=data.tolerated_rate_mg_per_kg_min,
        incat=data.incat,
        i_rods=data.i_rods,
        mrc_sum=data.mrc_sum,
        grip_strength_kg=data.grip_strength_kg,
    )
    session.add(record)
    if data.weight_kg is not None:
        patient = await session.get(Patient, appt.patient_id)
        assert patient is not None
        patient.weight_kg = data.weight_kg
        session.add(
            PatientMeasurement(
                patient_id=patient.id, weight_kg=data.weight_kg, recorded_by=actor_id
            )
        )
    tolerated = data.tolerated_rate_mg_per_kg_min
    if appt.course_id is not None and tolerated is not None:
        course = await get_course(session, appt.course_id)
        if course.tolerated_rate is None or tolerated < course.tolerated_rate:
            course.tolerated_rate = tolerated
    await session.flush()
    return record


async def lock_patient_courses(session: AsyncSession, patient_id: uuid.UUID) -> None:
    """Lock the patient's courses before the patient: the order every re-plan takes."""
    await session.execute(
        select(Course.id)
        .where(Course.patient_id == patient_id)
        .order_by(Course.id)
        .with_for_update()
    )


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


async def outcomes(
    session: AsyncSession, course: Course
) -> list[tuple[SessionRecord, Appointment]]:
    """The course's session records, oldest first: billing's proof of benefit."""
    rows = await session.execute(
        select(SessionRecord, Appointment)
        .join(Appointment, Appointment.id == SessionRecord.appointment_id)
        .where(SessionRecord.course_id == course.id)
        .order_by(Appointment.start_at)
    )
    return [(record, appt) for record, appt in rows]
