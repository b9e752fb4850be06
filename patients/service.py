"""Patients: registration, search, and weight/height kept as a history."""

from __future__ import annotations

import uuid

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.pagination import page
from core.problems import Duplicate, ensure_version
from core.repository import get_or_404
from patients.models import Patient, PatientMeasurement
from patients.schemas import PatientCreate, PatientUpdate


async def create_patient(
    session: AsyncSession, data: PatientCreate, actor_id: uuid.UUID | None
) -> Patient:
    patient = Patient(id=uuid.uuid4(), **data.model_dump())
    session.add(patient)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise Duplicate("a patient with this MRN already exists") from exc
    if data.weight_kg is not None or data.height_cm is not None:
        session.add(
            PatientMeasurement(
                patient_id=patient.id,
                weight_kg=data.weight_kg,
                height_cm=data.height_cm,
                recorded_by=actor_id,
            )
        )
        await session.flush()
    return patient


async def get_patient(session: AsyncSession, patient_id: uuid.UUID) -> Patient:
    return await get_or_404(session, Patient, patient_id, "patient")


async def update_patient(
    session: AsyncSession,
    patient: Patient,
    expected_version: int,
    data: PatientUpdate,
    actor_id: uuid.UUID | None,
) -> Patient:
    ensure_version(patient.version, expected_version, "patient")
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    for name, value in changes.items():
        setattr(patient, name, value)
    if "weight_kg" in changes or "height_cm" in changes:
        session.add(
            PatientMeasurement(
                patient_id=patient.id,
                weight_kg=changes.get("weight_kg"),
                height_cm=changes.get("height_cm"),
                recorded_by=actor_id,
            )
        )
    await session.flush()
    return patient


async def search_patients(
    session: AsyncSession, q: str | None, limit: int, cursor: str | None
) -> tuple[list[Patient], str | None]:
    query = select(Patient)
    if q:
        like = "%" + q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(
            or_(
                Patient.mrn.ilike(like, escape="\\"),
                Patient.family_name.ilike(like, escape="\\"),
                Patient.given_name.ilike(like, escape="\\"),
            )
        )
    return await page(
        session,
        query,
        [Patient.family_name, Patient.given_name, Patient.id],
        limit,
        cursor,
    )
