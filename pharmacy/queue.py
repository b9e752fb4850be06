"""The pharmacy's day at a center: every dose in start order, when it must be ready, the
vials and lots to pull, and how far it has come (`pharmacy.preparation` has the rules).

Vials are allotted to the day's doses in start order, first expiry first out, from the lots
usable that day, so two doses never count on the same vial; a dose already given has drawn
its vials from the stock (its session record says which), so it is shown, not allotted.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core import locks, settle
from core.clock import utcnow
from core.problems import Conflict, NotFound
from patients.models import Patient
from pharmacy import rules
from pharmacy.models import DrugLot, Preparation
from pharmacy.preparation import PreparePolicy, Progress, Step, StepRefused, drug_wait, take
from pharmacy.preparation import prepare_by as ready_by
from pharmacy.preparation import status as status_of
from pharmacy.service import facts
from scheduling.appointments.models import Appointment
from scheduling.catalog.models import Product
from scheduling.catalog.vials import NO_ROUNDING, Stock, VialPick, plan_vials
from scheduling.centers.models import Center
from scheduling.courses.models import Course
from scheduling.localtime import day_bounds, local_date, zone

# The day's doses: cancelled and missed visits need none.
QUEUED_STATUSES = ("booked", "checked_in", "in_progress", "completed")
DEFAULT_PREPARATION_MINUTES = 30


@dataclass(frozen=True)
class QueuedDose:
    appointment: Appointment
    patient: Patient  # the bag is labelled for the patient: name and MRN
    product: Product
    progress: Progress
    prepare_by: datetime | None
    vials: tuple[VialPick, ...]
    short_g: float

    @property
    def status(self) -> str:
        return (
            "administered" if self.appointment.status == "completed" else status_of(self.progress)
        )

    @property
    def drug_wait_minutes(self) -> int | None:
        wait = drug_wait(self.progress)
        return None if wait is None else round(wait.total_seconds() / 60)


def _progress(row: Preparation | None) -> Progress:
    if row is None:
        return Progress()
    return Progress(row.cleared_at, row.prepared_at, row.dispensed_at, row.administered_at)


def _lead(product: Product) -> timedelta:
    minutes = getattr(product, "preparation_minutes", None)
    return timedelta(minutes=DEFAULT_PREPARATION_MINUTES if minutes is None else minutes)


async def day_queue(session: AsyncSession, center_id: uuid.UUID, day: date) -> list[QueuedDose]:
    center = await session.get(Center, center_id)
    if center is None:
        raise NotFound("no such center")
    start, end = day_bounds(day, zone(center.timezone))
    rows = (
        await session.execute(
            select(Appointment, Patient, Product, Preparation)
            .join(Patient, Appointment.patient_id == Patient.id)
            .join(Course, Appointment.course_id == Course.id)
            .join(Product, Course.product_id == Product.id)
            .outerjoin(Preparation, Preparation.appointment_id == Appointment.id)
            .where(
                Appointment.center_id == center_id,
                Appointment.start_at >= start,
                Appointment.start_at < end,
                Appointment.status.in_(QUEUED_STATUSES),
                Appointment.dose_g.is_not(None),
            )
            .order_by(Appointment.start_at, Appointment.id)
        )
    ).all()
    lots = await session.scalars(
        select(DrugLot).where(
            DrugLot.center_id == center_id, DrugLot.product_id.in_({p.id for _, _, p, _ in rows})
        )
    )
    left: dict[uuid.UUID, list[DrugLot]] = defaultdict(list)
    for lot in sorted(lots, key=lambda lot: (lot.expires_on, lot.lot_number)):  # rules.fefo
        if rules.usable(facts(lot), day):
            left[lot.product_id].append(lot)
    on_hand = {lot.id: lot.vials_on_hand for product_lots in left.values() for lot in product_lots}
    policy: PreparePolicy = center.prepare_policy  # type: ignore[assignment]
    queue = []
    for appointment, patient, product, row in rows:
        progress = _progress(row)
        vials: tuple[VialPick, ...] = ()
        short = 0.0
        if appointment.status != "completed" and appointment.dose_g is not None:
            stock = [
                Stock(float(lot.vial_size_g), on_hand[lot.id], lot.id, lot.expires_on)
                for lot in left[product.id]
                if on_hand[lot.id] > 0
            ]
            plan = (
                plan_vials(
                    float(appointment.dose_g),
                    stock,
                    NO_ROUNDING,
                    billing_unit_mg=product.billing_unit_mg,
                )
                if stock
                else None
            )
            if plan is None:
                short = float(appointment.dose_g)
            else:
                vials, short = plan.vials, plan.short_g
                for pick in plan.vials:
                    if pick.lot_id is not None:
                        on_hand[pick.lot_id] -= pick.count
        queue.append(
            QueuedDose(
                appointment,
                patient,
                product,
                progress,
                ready_by(appointment.start_at, _lead(product), policy, progress.cleared_at),
                vials,
                short,
            )
        )
    return queue


@settle.use_case
async def take_step(
    session: AsyncSession, appointment_id: uuid.UUID, step: Step, by: uuid.UUID | None
) -> QueuedDose:
    """Clear, prepare, dispense or administer one dose, now; the dose as the queue shows it
    after. 409 when the step is out of order for the center's policy, or taken already."""
    appointment = await locks.appointment(session, Appointment, appointment_id)
    if appointment is None or appointment.course_id is None or appointment.dose_g is None:
        raise NotFound("no such dose: a course session with a planned dose")
    if appointment.status not in QUEUED_STATUSES:
        raise Conflict(f"the visit is {appointment.status}: its dose is not prepared")
    center = await session.get(Center, appointment.center_id)
    assert center is not None
    row = await session.scalar(
        select(Preparation).where(Preparation.appointment_id == appointment_id)
    )
    if row is None:
        row = Preparation(appointment_id=appointment_id)
        session.add(row)
    now = utcnow()  # a clinical step, like a check-in: the test clock may move it
    try:
        take(_progress(row), step, now, center.prepare_policy)  # type: ignore[arg-type]
    except StepRefused as exc:
        raise Conflict(str(exc)) from None
    setattr(row, f"{step}_at", now)
    setattr(row, f"{step}_by", by)
    await session.flush()
    day = local_date(appointment.start_at, zone(center.timezone))
    for dose in await day_queue(session, center.id, day):
        if dose.appointment.id == appointment_id:
            return dose
    raise AssertionError("a dose just stepped is on its day's queue")
