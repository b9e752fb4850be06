"""A session's record: what happened at a completed appointment, course or not."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import cast

from fastapi import APIRouter

from app.api.deps import Allowed, Audited, Session
from scheduling.appointments import booking
from scheduling.centers import repository as center_repository
from scheduling.courses import service as courses
from scheduling.courses.models import SessionReaction, SessionRecord
from scheduling.courses.schemas import ReactionOut, SessionRecordOut, Severity
from scheduling.localtime import zone

router = APIRouter(prefix="/api/v1", tags=["appointments"])


def _num(value: Decimal | None) -> float | None:
    return float(value) if value is not None else None


def record_out(
    record: SessionRecord, reactions: list[SessionReaction], tz_name: str
) -> SessionRecordOut:
    tz = zone(tz_name)
    return SessionRecordOut(
        appointment_id=record.appointment_id,
        course_id=record.course_id,
        recorded_at=record.recorded_at.astimezone(tz),
        recorded_by=record.recorded_by,
        weight_kg=_num(record.weight_kg),
        dose_given_g=_num(record.dose_given_g),
        infusion_minutes=record.infusion_minutes,
        actual_start=record.actual_start.astimezone(tz) if record.actual_start else None,
        actual_end=record.actual_end.astimezone(tz) if record.actual_end else None,
        reaction=cast(Severity, record.reaction),  # the column's check holds it to these
        reactions=[ReactionOut.model_validate(r) for r in reactions],
        tolerated_rate_mg_per_kg_min=_num(record.tolerated_rate),
        tolerated_rate_ml_per_hour=_num(record.tolerated_rate_ml_per_hour),
        rate_weight_kg=_num(record.rate_weight_kg),
        creatinine_mg_dl=_num(record.creatinine_mg_dl),
        egfr_ml_min=record.egfr_ml_min,
        hydrated=record.hydrated,
        thrombosis_risk=record.thrombosis_risk,
        notes=record.notes,
        incat=record.incat,
        i_rods=record.i_rods,
        mrc_sum=record.mrc_sum,
        grip_strength_kg=_num(record.grip_strength_kg),
    )


@router.get(
    "/appointments/{appointment_id}/record",
    response_model=SessionRecordOut,
    responses={404: {"description": "No such appointment, or it has no session record"}},
)
async def get_record(
    appointment_id: uuid.UUID, session: Session, _: Allowed, trail: Audited
) -> SessionRecordOut:
    """What was recorded when the appointment was completed: weight, dose given, reactions,
    the tolerated rate, pre-infusion screening, notes and scores."""
    appt = await booking.get_appointment(session, appointment_id)
    # Asking after a patient's record is on their trail whether or not there is one.
    trail.saw(appt.patient_id)
    record, reactions = await courses.get_record(session, appt.id)
    trail.saw(appt.patient_id, record.id)
    tz_name = await center_repository.timezone_of(session, appt.center_id)
    return record_out(record, reactions, tz_name)
