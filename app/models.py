"""Every mapped table, imported in one place for Alembic and the drift check."""

from app.auth.models import AccessToken, IdempotencyRecord, User
from app.db import Base
from app.patients.models import Patient, PatientMeasurement
from scheduling.models import (
    Appointment,
    AppointmentChange,
    Center,
    Chair,
    ChairBlock,
    Closure,
    Course,
    CourseChange,
    OpeningHours,
    Product,
    Regimen,
    SessionRecord,
    StaffingBlock,
)

__all__ = [
    "AccessToken",
    "Appointment",
    "AppointmentChange",
    "Base",
    "Center",
    "Chair",
    "ChairBlock",
    "Closure",
    "Course",
    "CourseChange",
    "IdempotencyRecord",
    "OpeningHours",
    "Patient",
    "PatientMeasurement",
    "Product",
    "Regimen",
    "SessionRecord",
    "StaffingBlock",
    "User",
]
