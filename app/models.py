"""Every mapped table, imported in one place for Alembic and the drift check."""

from app.audit.models import AuditEvent, CalendarFeed
from app.auth.models import AccessToken, IdempotencyRecord, SignInFailure
from app.jobs.models import JobRun, SchedulerLease
from app.smart.models import SmartApp, SmartAuthorizationCode, SmartRefreshToken, SmartSigningKey
from core.db import Base
from core.outbox.models import Delivery, OutboxEvent, WebhookSubscription
from core.users import User
from insurance.models import (
    Alert,
    Authorization,
    AuthorizationChange,
    AuthorizationExchange,
    Coverage,
    CoverageReview,
    PasRequest,
    Payer,
    SessionDraw,
)
from patients.models import Patient, PatientMeasurement
from pharmacy.models import DrugLot, DrugOrder, LotUse, Preparation
from scheduling.appointments.models import Appointment, AppointmentChange
from scheduling.catalog.models import Product, Regimen
from scheduling.centers.models import (
    Center,
    Chair,
    ChairBlock,
    Closure,
    OpeningHours,
    StaffingBlock,
)
from scheduling.courses.models import Course, CourseChange, SessionReaction, SessionRecord
from scheduling.levelling.models import Optimisation
from scheduling.waitlist.models import WaitlistEntry, WaitlistOffer, WaitlistOpening

__all__ = [
    "AccessToken",
    "Alert",
    "Appointment",
    "AppointmentChange",
    "AuditEvent",
    "Authorization",
    "AuthorizationChange",
    "AuthorizationExchange",
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
    "DrugLot",
    "DrugOrder",
    "IdempotencyRecord",
    "JobRun",
    "LotUse",
    "OpeningHours",
    "Optimisation",
    "OutboxEvent",
    "PasRequest",
    "Patient",
    "PatientMeasurement",
    "Payer",
    "Preparation",
    "Product",
    "Regimen",
    "SchedulerLease",
    "SessionDraw",
    "SessionReaction",
    "SessionRecord",
    "SignInFailure",
    "SmartApp",
    "SmartAuthorizationCode",
    "SmartRefreshToken",
    "SmartSigningKey",
    "StaffingBlock",
    "User",
    "WaitlistEntry",
    "WaitlistOffer",
    "WaitlistOpening",
    "WebhookSubscription",
]
