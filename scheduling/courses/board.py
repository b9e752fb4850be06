"""What the day board shows staff of each appointment beyond the appointment itself (which
has its dose, phase and number): the patient's name and MRN and, for a course session, the
product. Reads only."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from patients.models import Patient
from scheduling.appointments.models import Appointment
from scheduling.catalog.models import Product
from scheduling.courses.models import Course


@dataclass(frozen=True)
class Seat:
    patient_name: str
    mrn: str
    product: str | None


async def seats(session: AsyncSession, appointment_ids: list[uuid.UUID]) -> dict[uuid.UUID, Seat]:
    """One statement for the whole board, however many appointments it has."""
    if not appointment_ids:
        return {}
    rows = await session.execute(
        select(
            Appointment.id,
            Patient.family_name,
            Patient.given_name,
            Patient.mrn,
            Product.name,
        )
        .join(Patient, Patient.id == Appointment.patient_id)
        .outerjoin(Course, Course.id == Appointment.course_id)
        .outerjoin(Product, Product.id == Course.product_id)
        .where(Appointment.id.in_(appointment_ids))
    )
    return {
        appt_id: Seat(f"{family}, {given}", mrn, product)
        for appt_id, family, given, mrn, product in rows
    }
