"""Treatment courses: ordering one, holding, resuming and stopping it, and what happened at
its sessions. Flushes; never commits."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import time
from decimal import ROUND_DOWN, Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core import locks, settle
from core.pagination import page
from core.problems import IllegalTransition, Invalid, NotFound
from core.repository import get_or_404
from patients.models import Patient, PatientMeasurement
from scheduling.appointments import booking
from scheduling.appointments.models import Appointment
from scheduling.catalog import products, regimens, titration
from scheduling.catalog.dose import MissingMeasurement, dosing_weight
from scheduling.catalog.models import Product
from scheduling.centers import repository as center_repository
from scheduling.courses.models import (
    SEVERITIES,
    Course,
    CourseChange,
    SessionReaction,
    SessionRecord,
)
from scheduling.courses.schemas import CourseCreate, SessionRecordIn

RATE_QUANTUM = Decimal("0.0001")  # as tolerated rates are kept (Numeric(8, 4))
MAX_RATE = Decimal(50)  # mg/kg/min, as schemas.Rate allows, however the rate was given

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


@settle.use_case
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
    await center_repository.get_center(session, data.center_id)
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
    settle.mark(session, settle.COVER, course.patient_id)  # a new need for cover
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
    if not for_update:
        return await get_or_404(session, Course, course_id, "course")
    locked = await locks.courses(session, Course, [course_id])
    if not locked:
        raise NotFound("no such course")
    return locked[0]


@settle.use_case
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
    settle.mark(session, settle.COVER, course.patient_id)
    return course


# --- session records -----------------------------------------------------------------------


def severity(grades: Iterable[int]) -> str:
    """A record's overall severity, in the words records used before reactions had detail:
    the worst CTCAE grade, 1 mild, 2 moderate, 3 and over severe."""
    worst = max(grades, default=0)
    return SEVERITIES[min(worst, 3)]


async def _tolerated_rate(
    session: AsyncSession, appt: Appointment, data: SessionRecordIn
) -> tuple[Decimal | None, Decimal | None]:
    """The tolerated rate in mg/kg/min, and the weight a rate given in mL/h was converted
    with. The weight is the one measured at this session, else the patient's current one:
    the body weight a pump rate is given per, as product labels give their rates."""
    if data.tolerated_rate_ml_per_hour is None:
        return data.tolerated_rate_mg_per_kg_min, None
    if appt.course_id is None:
        raise Invalid(
            "a rate in mL/h is converted with the course product's concentration, and this "
            "appointment belongs to no course: give tolerated_rate_mg_per_kg_min"
        )
    course = await get_course(session, appt.course_id)
    product = await products.get_product(session, course.product_id)
    weight = data.weight_kg
    if weight is None:
        patient = await session.get(Patient, appt.patient_id)
        weight = patient.weight_kg if patient is not None else None
    if weight is None:
        raise Invalid("converting a rate in mL/h needs the patient's weight: give weight_kg")
    rate = titration.rate_from_ml_per_hour(
        float(data.tolerated_rate_ml_per_hour),
        titration.concentration_mg_per_ml(float(product.concentration_pct)),
        float(weight),
    )
    # Rounded down: a cap never rises above what the patient actually tolerated.
    capped = Decimal(repr(rate)).quantize(RATE_QUANTUM, rounding=ROUND_DOWN)
    if not 0 < capped <= MAX_RATE:
        # No figure in the message: with the pump rate it would give the weight away.
        raise Invalid(
            f"the tolerated rate in mL/h comes to 0 or more than {MAX_RATE} mg/kg/min at the "
            "patient's weight and the product's concentration: check the rate and the weight"
        )
    return capped, weight


async def record_session(
    session: AsyncSession, appt: Appointment, data: SessionRecordIn, actor_id: uuid.UUID | None
) -> SessionRecord:
    """Keep what happened at a completed session, course or not. A measured weight becomes
    the patient's current weight (future doses follow it); a tolerated rate, given in either
    unit, caps the course's later sessions."""
    tolerated, rate_weight = await _tolerated_rate(session, appt, data)
    reactions = data.reactions or []
    record = SessionRecord(
        id=uuid.uuid4(),
        appointment_id=appt.id,
        course_id=appt.course_id,
        recorded_by=actor_id,
        weight_kg=data.weight_kg,
        dose_given_g=data.dose_given_g,
        infusion_minutes=data.infusion_minutes,
        actual_start=data.actual_start,
        actual_end=data.actual_end,
        reaction=data.reaction or severity(r.grade for r in reactions),
        tolerated_rate=tolerated,
        tolerated_rate_ml_per_hour=data.tolerated_rate_ml_per_hour,
        rate_weight_kg=rate_weight,
        creatinine_mg_dl=data.creatinine_mg_dl,
        egfr_ml_min=data.egfr_ml_min,
        hydrated=data.hydrated,
        thrombosis_risk=data.thrombosis_risk,
        notes=data.notes,
        incat=data.incat,
        i_rods=data.i_rods,
        mrc_sum=data.mrc_sum,
        grip_strength_kg=data.grip_strength_kg,
    )
    session.add(record)
    await session.flush()  # the reactions point at it
    session.add_all(
        SessionReaction(
            record_id=record.id, position=i, kind=r.kind, grade=r.grade, action=r.action
        )
        for i, r in enumerate(reactions)
    )
    if data.weight_kg is not None:
        patient = await session.get(Patient, appt.patient_id)
        assert patient is not None
        patient.weight_kg = data.weight_kg
        session.add(
            PatientMeasurement(
                patient_id=patient.id, weight_kg=data.weight_kg, recorded_by=actor_id
            )
        )
    if appt.course_id is not None and tolerated is not None:
        course = await get_course(session, appt.course_id)
        if course.tolerated_rate is None or tolerated < course.tolerated_rate:
            course.tolerated_rate = tolerated
    await session.flush()
    return record


async def get_record(
    session: AsyncSession, appointment_id: uuid.UUID
) -> tuple[SessionRecord, list[SessionReaction]]:
    """An appointment's session record and its reactions in the order given; 404 without one."""
    record = await session.scalar(
        select(SessionRecord).where(SessionRecord.appointment_id == appointment_id)
    )
    if record is None:
        raise NotFound("this appointment has no session record")
    reactions = await session.scalars(
        select(SessionReaction)
        .where(SessionReaction.record_id == record.id)
        .order_by(SessionReaction.position)
    )
    return record, list(reactions)


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
