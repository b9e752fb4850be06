"""One course session as the planner sees it: its dose and chair time, the course's context
(center, product, patient, sessions so far), and why a session could not be booked."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import bindparam, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession

from core import clock
from core.clock import utcnow
from core.problems import Invalid
from patients.models import Patient
from scheduling.appointments.center_days import CenterDays, PatientSpans
from scheduling.appointments.models import ACTIVE_STATUSES, Appointment
from scheduling.catalog import products
from scheduling.catalog.dose import MissingMeasurement, dose_grams, dosing_weight, round_to_vials
from scheduling.catalog.models import Product
from scheduling.catalog.titration import ceiling_rate, chair_time, infusion_plan
from scheduling.centers import repository as center_repository
from scheduling.centers.models import Center
from scheduling.courses.models import Course
from scheduling.courses.recurrence import (
    Window,
    maintenance_window,
)
from scheduling.localtime import zone

# --- dose and chair time of one session ------------------------------------------------------


@dataclass(frozen=True)
class SessionFigures:
    dose_g: Decimal
    chair_minutes: int


def session_figures(
    course: Course, product: Product, patient: Patient, phase: str, first: bool
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
        # The chair's cleaning follows the visit (Appointment.turnover_minutes), not in it.
        turnover=0,
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
        days = CenterDays(await center_repository.get_center(session, course.center_id))
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
