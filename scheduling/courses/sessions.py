"""One course session as the planner sees it: its dose and chair time, the course's context
(center, product, patient, sessions so far), and why a session could not be booked."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import and_, bindparam, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core import clock
from core.clock import utcnow
from core.problems import Invalid
from patients.models import Patient
from scheduling.appointments import repository as appointment_repository
from scheduling.appointments.center_days import CenterDays, PatientSpans
from scheduling.appointments.models import ACTIVE_STATUSES, Appointment
from scheduling.catalog import products
from scheduling.catalog.dose import MissingMeasurement, dose_grams, dosing_weight, round_to_vials
from scheduling.catalog.models import Product
from scheduling.catalog.titration import ceiling_rate, chair_time, infusion_plan
from scheduling.centers import repository as center_repository
from scheduling.centers.models import Center
from scheduling.centers.rules import Span
from scheduling.courses.models import Course
from scheduling.courses.recurrence import (
    Window,
    maintenance_window,
)
from scheduling.courses.splits import Split, equal_parts, given_over, split_dose
from scheduling.localtime import zone

# --- dose and chair time of one session ------------------------------------------------------

# A split induction lasts at most two weeks of consecutive days (the planner's look-ahead).
MOST_INDUCTION_DAYS = 14
# A maintenance dose too long for one session is given over two days, as prescribers do.
MOST_MAINTENANCE_DAYS = 2


@dataclass(frozen=True)
class SessionFigures:
    dose_g: Decimal
    chair_minutes: int


def _dosing_weight(course: Course, patient: Patient) -> float:
    try:
        return dosing_weight(
            float(patient.weight_kg) if patient.weight_kg is not None else None,
            float(patient.height_cm) if patient.height_cm is not None else None,
            patient.sex,
            "adjusted" if course.weight_basis == "adjusted" else "actual",
        )
    except MissingMeasurement as exc:
        raise Invalid(str(exc)) from exc


def _phase_dose(course: Course, phase: str, weight: float) -> Decimal:
    """The phase's whole dose in grams: an induction's total, or one maintenance dose."""
    per_kg = (
        course.induction_total_g_per_kg
        if phase == "induction" and course.induction_total_g_per_kg is not None
        else course.maintenance_g_per_kg
    )
    assert per_kg is not None
    return Decimal(str(round(dose_grams(float(per_kg), weight), 2)))


def _figures(
    course: Course, product: Product, weight: float, dose: Decimal, first: bool
) -> SessionFigures:
    """The chair time of one session giving `dose` grams (rounded to vials first when the
    order allows it)."""
    grams = float(dose)
    if course.vial_tolerance_pct:
        grams = round_to_vials(grams, product.vial_sizes_g, float(course.vial_tolerance_pct))
    titration = products.titration_of(product)
    caps = (
        float(course.tolerated_rate) if course.tolerated_rate is not None else None,
        products.minimum_rate(product) if course.renal_risk or course.thrombosis_risk else None,
    )
    plan = infusion_plan(grams * 1000 / weight, titration, ceiling_rate(titration, caps))
    chair = chair_time(
        plan.minutes,
        premed=product.premed_minutes,
        observation=product.observation_minutes,
        first_dose_extra=product.first_dose_extra_observation_minutes,
        first_dose=first,
        # The chair's cleaning follows the visit (Appointment.turnover_minutes), not in it.
        turnover=0,
    )
    return SessionFigures(Decimal(str(round(grams, 2))), chair.total)


def induction_days_of(course: Course) -> int:
    """The days the induction is given over: as booked (a split), else as ordered; 0 for a
    course without one."""
    return course.induction_booked_days or course.induction_days or 0


def session_figures(
    course: Course,
    product: Product,
    patient: Patient,
    phase: str,
    first: bool,
    *,
    days: int | None = None,
    part: int = 1,
) -> SessionFigures:
    """Dose and chair time of one session. An induction's total is shared equally over its
    days (`days`, else the days it was booked over, else as ordered), the first session taking
    the centigrams left over; a maintenance dose over `days` (1 or 2), `part` being the day;
    `first`: the course's first session, watched for longer."""
    weight = _dosing_weight(course, patient)
    dose = _phase_dose(course, phase, weight)
    if phase == "induction" and course.induction_total_g_per_kg is not None:
        parts = equal_parts(dose, days or induction_days_of(course) or 1)
        dose = parts[0] if first else parts[-1]
    elif phase == "maintenance" and days and days > 1:
        dose = equal_parts(dose, days)[part - 1]
    return _figures(course, product, weight, dose, first)


# --- how long a session may last, and splitting what would last longer ---------------------


@dataclass(frozen=True)
class SessionLimit:
    setting: int  # the center's max_session_minutes
    longest_opening: int  # minutes of its longest opening day

    @property
    def minutes(self) -> int:
        return min(self.setting, self.longest_opening)


def session_limit(center: Center) -> SessionLimit:
    """The longest session the center can hold: its `max_session_minutes`, and no longer than
    its longest day of opening hours (center loaded with its week)."""
    opening = max(
        (
            (h.closes.hour * 60 + h.closes.minute) - (h.opens.hour * 60 + h.opens.minute)
            for h in center.opening_hours
        ),
        default=0,
    )
    return SessionLimit(center.max_session_minutes, opening)


@dataclass(frozen=True)
class PhaseSplit:
    """Over how many days a phase's dose is given, and why, for the plan and the booking."""

    phase: str
    split: Split
    limit: SessionLimit

    @property
    def days(self) -> int | None:
        return self.split.days

    def detail(self) -> str:
        """Why the dose is given over more days than ordered, or why it cannot be booked."""
        s, limit = self.split, self.limit
        as_ordered = (
            f"as ordered over {s.ordered_days} days a session would take up to "
            f"{s.minutes_as_ordered} min"
            if s.ordered_days > 1
            else f"in one session it would take {s.minutes_as_ordered} min"
        )
        if s.days is None:
            return (
                f"a session would still take {s.longest} min with the dose split over "
                f"{s.most_days} days ({as_ordered}); sessions here may last "
                f"{limit.setting} min (max_session_minutes) and the longest opening is "
                f"{limit.longest_opening} min: a faster rate, a smaller dose or more days is "
                "the prescriber's call"
            )
        if not s.is_split:
            return f"given as ordered over {s.ordered_days} day(s)"
        if limit.setting <= limit.longest_opening:
            longest = f"the {limit.setting} min a session may last here (max_session_minutes)"
        else:
            longest = f"the {limit.longest_opening} min of the center's longest opening"
        return f"split over {s.days} days: {as_ordered}, more than {longest}"

    def unbookable(self) -> str | None:
        """Why the planner cannot book the phase's dose, if it cannot."""
        if self.days is None:
            # All or nothing for an induction, as when one of its days cannot be placed.
            return (
                f"{self.detail()}; nothing booked" if self.phase == "induction" else self.detail()
            )
        return None


def induction_split(ctx: Context) -> PhaseSplit:
    """Over how many days the induction is given: as booked once it has been (a dose partly
    given is not split again), else the fewest from the days ordered over which every
    session fits the center. Its first day is the course's first session."""
    course, limit = ctx.course, session_limit(ctx.center)
    weight = _dosing_weight(course, ctx.patient)
    total = _phase_dose(course, "induction", weight)

    def minutes(day: int, dose: Decimal) -> int:
        return _figures(course, ctx.product, weight, dose, day == 0).chair_minutes

    ordered = course.induction_days or 1
    booked = course.induction_booked_days
    if booked is None:
        split = split_dose(total, ordered, MOST_INDUCTION_DAYS, limit.minutes, minutes)
    else:
        parts, kept = given_over(total, booked, minutes)
        as_ordered = max(given_over(total, ordered, minutes)[1])
        split = Split(ordered, booked, booked, limit.minutes, parts, kept, as_ordered)
    return PhaseSplit("induction", split, limit)


def maintenance_split(ctx: Context, first: bool) -> PhaseSplit:
    """Whether one maintenance dose fits one session, or would need two days."""
    course, limit = ctx.course, session_limit(ctx.center)
    weight = _dosing_weight(course, ctx.patient)
    dose = _phase_dose(course, "maintenance", weight)

    def minutes(day: int, part: Decimal) -> int:
        return _figures(course, ctx.product, weight, part, first and day == 0).chair_minutes

    split = split_dose(dose, 1, MOST_MAINTENANCE_DAYS, limit.minutes, minutes)
    return PhaseSplit("maintenance", split, limit)


# --- booking -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Unbookable:
    phase: str
    sequence: int
    window: Window
    reason: str

    def summary(self) -> str:
        """As the work queue shows it."""
        return f"{self.phase} session {self.sequence} ({self.window.target}): {self.reason}"

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


PlanKey = tuple[date, str, int, int, int]  # day, phase, number, part, chair minutes


@dataclass
class Context:
    course: Course
    center: Center
    product: Product
    patient: Patient
    sessions: list[Appointment]  # the course's active and completed sessions, in order
    days: CenterDays  # the center's days as the planner sees them
    _patient_spans: PatientSpans | None = None
    # A rehearsal plans against the copies kept and writes nothing, to learn which days the
    # booking will use: those are locked and read again together before it books (see
    # `booking.book_through`). What it placed is `pencilled`.
    rehearsing: bool = False
    pencilled: list[Appointment] = field(default_factory=list)
    locked_days: set[date] = field(
        default_factory=set
    )  # locked, and read since, in this transaction
    # Where the rehearsal placed each session, kept when the days it placed them on read the
    # same under their locks as it saw them: the booking then takes those slots without
    # searching again (the search would find them: same day, same patient, same order).
    plan: dict[PlanKey, tuple[uuid.UUID, datetime, datetime]] = field(default_factory=dict)
    # Bookings checked one by one under their days' locks and written together at the end
    # (`placement.write_booked`): one INSERT a course, and no savepoint for sessions booked
    # all or none, since nothing is written until all are placed.
    writes_at_end: bool = False
    _last_sequences: dict[str, int] | None = None
    # A maintenance dose as booked (see `booking._dose`), for the first session and the next.
    doses: dict[bool, tuple[PhaseSplit, list[SessionFigures]]] = field(default_factory=dict)

    async def patient_spans(self, session: AsyncSession) -> PatientSpans:
        """The patient's active appointments from now on, read when first needed."""
        if self._patient_spans is None:
            now = utcnow()
            self._patient_spans = await PatientSpans.load(
                session, self.patient.id, now - timedelta(days=1), now + PATIENT_LOOKAHEAD
            )
        return self._patient_spans

    def rehearsed(self, sessions: list[Appointment]) -> list[date]:
        """End a rehearsal: the copies forget what it placed, the course's sessions are
        `sessions` again; the days it kept a session on, in order."""
        kept = {a.id for a in self.pencilled}
        if self._patient_spans is not None:
            spans = self._patient_spans.spans
            spans[:] = [s for s in spans if s.id not in kept]
        days = sorted({local_day(a, self.center.timezone) for a in self.pencilled})
        for appt in self.pencilled:
            self.days.unbooked(local_day(appt, self.center.timezone), appt.id)
        self.sessions[:] = sessions
        self.pencilled = []
        self.rehearsing = False
        return days

    async def last_sequence(self, session: AsyncSession, phase: str) -> int:
        """The highest number the course's sessions of the phase have had (cancelled ones
        too), as read with them (see `load_context`)."""
        if self._last_sequences is None:
            rows = await session.execute(_LAST_SEQUENCES, {"course_id": self.course.id})
            self._last_sequences = {p: int(n or 0) for p, n in rows if p is not None}
        return self._last_sequences.get(phase, 0)

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
        days = CenterDays(await center_repository.get_center(session, course.center_id))
    product = await products.get_product(session, course.product_id)
    patient = await session.get(Patient, course.patient_id)
    assert patient is not None
    # In one statement: every session of the course, cancelled ones too (their numbers are
    # never reused), and the patient's active appointments anywhere from now on (the times
    # the patient is busy).
    now = utcnow()
    busy = PatientSpans(patient.id, now - timedelta(days=1), now + PATIENT_LOOKAHEAD)
    params = {"course_id": course.id, "patient_id": patient.id, "start": busy.first}
    rows = list(await session.scalars(_SESSIONS, {**params, "end": busy.last}))
    every = [a for a in rows if a.course_id == course.id]
    sessions = [a for a in every if a.status in _COUNTED]
    last: dict[str, int] = {}
    for a in every:
        if a.phase is not None and a.sequence is not None:
            last[a.phase] = max(last.get(a.phase, 0), a.sequence)
    busy.spans = [
        Span(a.id, a.start_at, a.end_at)
        for a in rows
        if a.status in ACTIVE_STATUSES and a.start_at < busy.last and a.end_at > busy.first
    ]
    return Context(
        course,
        days.center,
        product,
        patient,
        sessions,
        days,
        _patient_spans=busy,
        _last_sequences=last,
    )


_COUNTED = frozenset((*ACTIVE_STATUSES, "completed"))
_SESSIONS = (  # built once: a booking run loads one course after another
    select(Appointment)
    .where(
        or_(
            Appointment.course_id == bindparam("course_id"),
            and_(
                Appointment.patient_id == bindparam("patient_id"),
                appointment_repository.IS_ACTIVE,
                Appointment.start_at < bindparam("end"),
                Appointment.end_at > bindparam("start"),
            ),
        )
    )
    .order_by(Appointment.start_at)
)


_LAST_SEQUENCES = (
    select(Appointment.phase, func.max(Appointment.sequence))
    .where(Appointment.course_id == bindparam("course_id"))
    .group_by(Appointment.phase)
)


async def last_sequence(session: AsyncSession, course_id: uuid.UUID, phase: str) -> int:
    highest = await session.scalar(
        select(func.max(Appointment.sequence)).where(
            Appointment.course_id == course_id, Appointment.phase == phase
        )
    )
    return int(highest or 0)


async def dose_days(session: AsyncSession, course_id: uuid.UUID) -> dict[int, int]:
    """Over how many days each maintenance dose was booked (by its number), lost days
    included: half a dose left when its other day was cancelled is still half a dose."""
    rows = await session.execute(
        select(Appointment.sequence, func.max(Appointment.part))
        .where(Appointment.course_id == course_id, Appointment.phase == "maintenance")
        .group_by(Appointment.sequence)
    )
    return {int(sequence): int(days) for sequence, days in rows if sequence is not None}


def follows_its_first_day(appt: Appointment, before: Appointment | None) -> bool:
    """A dose's second day right after its first, both kept: it goes where the first goes."""
    return (
        appt.phase == "maintenance"
        and appt.part > 1
        and before is not None
        and before.phase == "maintenance"
        and before.sequence == appt.sequence
        and before.part == appt.part - 1
    )


def local_day(appt: Appointment, tz_name: str) -> date:
    return appt.start_at.astimezone(zone(tz_name)).date()


async def center_of(session: AsyncSession, course: Course) -> Center:
    return await center_repository.get_center(session, course.center_id)


def today_at(center: Center) -> date:
    """Today's date in the center's time zone."""
    return clock.today(zone(center.timezone))


def window_after(course: Course, previous: date | None) -> Window:
    assert course.interval_days and course.window_min_days and course.window_max_days
    if previous is None:
        slack = timedelta(days=course.window_max_days - course.interval_days)
        return Window(course.start_date, course.start_date, course.start_date + slack)
    return maintenance_window(
        previous, course.interval_days, course.window_min_days, course.window_max_days
    )


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
