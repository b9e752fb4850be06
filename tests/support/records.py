"""Factories for the in-process tier: centers, chairs, patients and courses made through the
same use cases the API calls, in the caller's transaction."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from patients.models import Patient
from patients.schemas import PatientCreate
from patients.service import create_patient
from scheduling.catalog.models import Product
from scheduling.centers import service as centers
from scheduling.centers.models import Center, Chair
from scheduling.centers.schemas import CenterCreate, ChairCreate
from scheduling.courses import service as courses
from scheduling.courses.models import Course
from scheduling.courses.schemas import CourseCreate

WEEKDAYS = range(5)


async def a_center(session: AsyncSession, **overrides: Any) -> Center:
    body: dict[str, Any] = {
        "name": f"Center {uuid.uuid4().hex[:6]}",
        "timezone": "America/New_York",
        "patients_per_nurse": 4,
        "opening_hours": [{"weekday": d, "opens": "07:00", "closes": "19:00"} for d in WEEKDAYS],
        "staffing": [
            {"weekday": d, "start": "07:00", "end": "19:00", "nurses": 4} for d in WEEKDAYS
        ],
        **overrides,
    }
    return await centers.create_center(session, CenterCreate.model_validate(body))


async def a_chair(session: AsyncSession, center: Center, kind: str = "chair") -> Chair:
    label = f"{kind[0].upper()}-{uuid.uuid4().hex[:6]}"
    return await centers.create_chair(
        session, center, ChairCreate.model_validate({"label": label, "kind": kind})
    )


async def a_patient(session: AsyncSession) -> Patient:
    data = PatientCreate.model_validate(
        {
            "mrn": f"T{uuid.uuid4().hex[:12]}",
            "given_name": "Test",
            "family_name": "Patient",
            "birth_date": "1961-04-12",
            "sex": "female",
            "weight_kg": 70,
            "height_cm": 165,
        }
    )
    return await create_patient(session, data, None)


async def a_course(
    session: AsyncSession, center: Center, patient: Patient, start: date, **overrides: Any
) -> Course:
    """A CIDP maintenance course on the seeded 10 % IVIG J1561, Mondays at 09:00."""
    product = await session.scalar(select(Product.id).where(Product.hcpcs_code == "J1561"))
    body: dict[str, Any] = {
        "patient_id": patient.id,
        "center_id": center.id,
        "product_id": product,
        "diagnosis_code": "G61.81",
        "start_date": start.isoformat(),
        "preferred_weekdays": [0],
        "preferred_start_time": "09:00",
        **overrides,
    }
    return await courses.create_course(session, CourseCreate.model_validate(body), None)
