"""The pharmacy's preparation queue for a center's day, and the steps a dose takes."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import date, datetime

from fastapi import APIRouter

from app.api.deps import Allowed, Audited, Session
from core.schemas import Output
from pharmacy import queue
from pharmacy.preparation import Step
from scheduling.centers import repository as center_repository
from scheduling.localtime import zone

router = APIRouter(prefix="/api/v1", tags=["pharmacy"])

# The URL's verbs for the steps, as the people who take them say it.
STEP_OF: dict[str, Step] = {
    "clear": "cleared",
    "prepare": "prepared",
    "dispense": "dispensed",
    "administer": "administered",
}
STEP_DOC: dict[str, str] = {
    "clear": "The nurse clears the patient for the dose (vitals and screening done).",
    "prepare": "The pharmacy has mixed the dose; a center that prepares on clearance waits for "
    "the nurse's clearance.",
    "dispense": "The prepared dose is at the chair (the patient cleared).",
    "administer": "The dose was given.",
}


class VialToPull(Output):
    vial_size_g: float
    count: int
    lot_id: uuid.UUID | None


class DoseOut(Output):
    appointment_id: uuid.UUID
    patient_id: uuid.UUID
    patient_name: str  # family, given: the bag's label
    mrn: str
    chair_id: uuid.UUID
    start: datetime
    product_id: uuid.UUID
    product_name: str
    dose_g: float
    prepare_by: datetime | None
    status: str
    vials: list[VialToPull]
    short_g: float
    cleared_at: datetime | None
    prepared_at: datetime | None
    dispensed_at: datetime | None
    administered_at: datetime | None
    drug_wait_minutes: int | None


class QueueOut(Output):
    center_id: uuid.UUID
    date: date
    items: list[DoseOut]


def dose_out(dose: queue.QueuedDose, tz_name: str) -> DoseOut:
    tz = zone(tz_name)

    def local(at: datetime | None) -> datetime | None:
        return None if at is None else at.astimezone(tz)

    a, p = dose.appointment, dose.progress
    return DoseOut(
        appointment_id=a.id,
        patient_id=a.patient_id,
        patient_name=f"{dose.patient.family_name}, {dose.patient.given_name}",
        mrn=dose.patient.mrn,
        chair_id=a.chair_id,
        start=a.start_at.astimezone(tz),
        product_id=dose.product.id,
        product_name=dose.product.name,
        dose_g=float(a.dose_g or 0),
        prepare_by=local(dose.prepare_by),
        status=dose.status,
        vials=[
            VialToPull(vial_size_g=v.vial_size_g, count=v.count, lot_id=v.lot_id)
            for v in dose.vials
        ],
        short_g=dose.short_g,
        cleared_at=local(p.cleared_at),
        prepared_at=local(p.prepared_at),
        dispensed_at=local(p.dispensed_at),
        administered_at=local(p.administered_at),
        drug_wait_minutes=dose.drug_wait_minutes,
    )


@router.get("/centers/{center_id}/preparation", response_model=QueueOut)
async def preparation_queue(
    center_id: uuid.UUID, date: date, session: Session, _: Allowed, trail: Audited
) -> QueueOut:
    """The day's doses in start order: when each must be ready, the vials and lots to pull
    (first expiry first out, allotted in start order), and how far each has come."""
    doses = await queue.day_queue(session, center_id, date)
    tz_name = await center_repository.timezone_of(session, center_id)
    # One event for the search of many patients' doses, as other lists of patients' visits
    # are recorded: one patient named would mislead the trail.
    trail.saw(None)
    return QueueOut(center_id=center_id, date=date, items=[dose_out(d, tz_name) for d in doses])


def _step_route(step: Step) -> Callable[..., Awaitable[DoseOut]]:
    async def take_step(
        appointment_id: uuid.UUID, session: Session, caller: Allowed, trail: Audited
    ) -> DoseOut:
        dose = await queue.take_step(session, appointment_id, step, caller.user_id)
        trail.saw(dose.appointment.patient_id, dose.appointment.id)
        tz_name = await center_repository.timezone_of(session, dose.appointment.center_id)
        return dose_out(dose, tz_name)

    return take_step


# One route per step, so the policy table says who takes which: a nurse clears the patient
# and records the dose administered; the pharmacy prepares and dispenses. 409 when a step
# is out of order for the center's policy, or taken already.
for verb, step in STEP_OF.items():
    router.add_api_route(
        f"/appointments/{{appointment_id}}/preparation/{verb}",
        _step_route(step),
        methods=["POST"],
        response_model=DoseOut,
        name=f"preparation_{verb}",
        summary=f"The dose is {step}",
        description=f"{STEP_DOC[verb]} 409 when the step is out of order for the center, or "
        "taken already.",
    )
