"""Every mapped table, imported in one place for Alembic and the drift check."""

from app.audit.models import AuditEvent, CalendarFeed
from app.auth.models import AccessToken, IdempotencyRecord, SignInFailure, User
from app.db import Base
from app.jobs.models import JobRun, SchedulerLease
from app.outbox.models import Delivery, OutboxEvent, WebhookSubscription
from app.patients.models import Patient, PatientMeasurement
from insurance.models import (
    Alert,
    Authorization,
    AuthorizationChange,
    Coverage,
    CoverageReview,
    Payer,
    SessionCover,
)
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
    "Alert",
    "Appointment",
    "AppointmentChange",
    "AuditEvent",
    "Authorization",
    "AuthorizationChange",
    "Base",
    "CalendarFeed",
    "Center",
    "Chair",
    "ChairBlock",
    "Closure",
    "Course",
    "CourseChange",
    "Coverage",
    "CoverageReview",
    "Delivery",
    "IdempotencyRecord",
    "JobRun",
    "OpeningHours",
    "OutboxEvent",
    "Patient",
    "PatientMeasurement",
    "Payer",
    "Product",
    "Regimen",
    "SchedulerLease",
    "SessionCover",
    "SessionRecord",
    "SignInFailure",
    "StaffingBlock",
    "User",
    "WebhookSubscription",
]
