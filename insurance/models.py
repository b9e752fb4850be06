"""Payers, coverages, pre-authorizations, what each session draws on them, and billing alerts."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import utcnow
from core.db import Base, IdMixin, Instant, TimestampMixin
from insurance.rules import AUTH_STATUSES

UNITS_TYPES = ("visits", "billing_units")
ALERT_KINDS = (
    "auth_expiring",
    "auth_units_low",
    "session_uncovered",
    "auth_denied_with_bookings",
    "coverage_ended",
    "course_unbookable",
    "drug_shortfall",
)
ALERT_STATUSES = ("open", "acknowledged", "resolved")
# Alerts still on the work queue: at most one per kind and object, ever.
LIVE_ALERT = "status IN ('open', 'acknowledged')"


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Payer(IdMixin, TimestampMixin, Base):
    __tablename__ = "payers"

    name: Mapped[str] = mapped_column(String(200), unique=True)
    turnaround_days: Mapped[int] = mapped_column(Integer)
    expedited_turnaround_days: Mapped[int] = mapped_column(Integer)
    renewal_margin_days: Mapped[int] = mapped_column(Integer)
    default_units_type: Mapped[str] = mapped_column(String(20))
    max_auth_days: Mapped[int | None] = mapped_column(Integer)
    # How far ahead of renew-by the work queue starts asking for a renewal.
    alert_days: Mapped[int] = mapped_column(Integer, default=14, server_default="14")
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        CheckConstraint(
            "turnaround_days BETWEEN 0 AND 365 AND expedited_turnaround_days BETWEEN 0 AND 365 "
            "AND renewal_margin_days BETWEEN 0 AND 365 AND alert_days BETWEEN 0 AND 365",
            name="days",
        ),
        CheckConstraint(_in("default_units_type", UNITS_TYPES), name="units_type"),
        CheckConstraint("max_auth_days IS NULL OR max_auth_days > 0", name="max_auth_days"),
    )


class Coverage(IdMixin, TimestampMixin, Base):
    """A patient's insurance plan with one payer, primary or secondary, over a period."""

    __tablename__ = "coverages"

    patient_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("patients.id"), index=True)
    payer_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("payers.id"))
    member_id: Mapped[str] = mapped_column(String(64))
    group_number: Mapped[str | None] = mapped_column(String(64))
    priority: Mapped[str] = mapped_column(String(10))
    effective_from: Mapped[date] = mapped_column(Date)
    effective_to: Mapped[date | None] = mapped_column(Date)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        CheckConstraint("priority IN ('primary', 'secondary')", name="priority"),
        CheckConstraint(
            "effective_to IS NULL OR effective_to >= effective_from", name="effective_period"
        ),
    )


class Authorization(IdMixin, TimestampMixin, Base):
    """A payer's pre-authorization: so many visits or billing units of one service, between
    two local dates. `units_used` is what completed sessions drew; the database refuses to let
    it pass the approved quantity, however many completions race for the last unit."""

    __tablename__ = "authorizations"

    patient_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("patients.id"), index=True)
    coverage_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("coverages.id"))
    course_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("courses.id"))
    service_code: Mapped[str] = mapped_column(String(10))
    auth_number: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20))
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date] = mapped_column(Date)
    units_type: Mapped[str] = mapped_column(String(20))
    units_approved: Mapped[int] = mapped_column(Integer)
    units_used: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    requested_on: Mapped[date | None] = mapped_column(Date)
    decided_on: Mapped[date | None] = mapped_column(Date)
    notes: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        CheckConstraint(_in("status", AUTH_STATUSES), name="status"),
        CheckConstraint(_in("units_type", UNITS_TYPES), name="units_type"),
        CheckConstraint("valid_to >= valid_from", name="valid_period"),
        CheckConstraint(
            "units_approved >= 0 AND units_used >= 0 AND units_used <= units_approved",
            name="units",
        ),
    )


class AuthorizationChange(Base):
    """Every status change of an authorization: who, when, from, to, and why."""

    __tablename__ = "authorization_changes"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    authorization_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("authorizations.id"), index=True
    )
    at: Mapped[datetime] = mapped_column(Instant, default=utcnow)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id"))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(String(1000))


class SessionDraw(Base):
    """What a given course session drew from an authorization, or why nothing paid for it.
    Written once, when the session is completed (`consumed`); booked sessions' cover is
    derived from the authorizations whenever it is asked for, never stored."""

    __tablename__ = "session_covers"

    appointment_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("appointments.id"), primary_key=True
    )
    patient_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("patients.id"), index=True)
    authorization_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("authorizations.id"), index=True
    )
    units: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str | None] = mapped_column(String(40))
    consumed: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime] = mapped_column(Instant, default=utcnow, onupdate=utcnow)


# Whose work an alert is: a course nothing can book is the nurses' to solve (another day, chair
# or center, a call to the patient); every other alert is about who pays, billing's.
NURSING_KINDS = ("course_unbookable",)
# A booked dose the stock will not cover on its day is the pharmacy's (order, swap, plan).
PHARMACY_KINDS = ("drug_shortfall",)
# Everything else is about who pays: billing's.
NOT_BILLING_KINDS = NURSING_KINDS + PHARMACY_KINDS


class Alert(IdMixin, Base):
    """One item on billing's work queue. `subject_id` is the object it is about (an
    authorization, an appointment, a coverage or a course); the database keeps one live alert
    per kind and subject."""

    __tablename__ = "alerts"

    kind: Mapped[str] = mapped_column(String(40))
    subject_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    status: Mapped[str] = mapped_column(String(20), default="open")
    severity: Mapped[str] = mapped_column(String(10))
    due_date: Mapped[date] = mapped_column(Date)
    patient_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("patients.id"))
    payer_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("payers.id"))
    authorization_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("authorizations.id")
    )
    appointment_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("appointments.id"))
    course_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("courses.id"))
    amount_at_risk: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    detail: Mapped[str] = mapped_column(String(500))
    assigned_to: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id"))
    opened_at: Mapped[datetime] = mapped_column(Instant, default=utcnow)
    acknowledged_at: Mapped[datetime | None] = mapped_column(Instant)
    resolved_at: Mapped[datetime | None] = mapped_column(Instant)
    resolution: Mapped[str | None] = mapped_column(String(40))
    # What the biller last wrote on it (acknowledging, assigning or resolving): the call made,
    # the reference the payer gave.
    note: Mapped[str | None] = mapped_column(String(2000))
    version: Mapped[int] = mapped_column(Integer, default=1)

    @property
    def queue(self) -> str:
        if self.kind in NURSING_KINDS:
            return "nursing"
        return "pharmacy" if self.kind in PHARMACY_KINDS else "billing"

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        CheckConstraint(_in("kind", ALERT_KINDS), name="kind"),
        CheckConstraint(_in("status", ALERT_STATUSES), name="status"),
        CheckConstraint("severity IN ('info', 'warning', 'critical')", name="severity"),
        Index(
            "uq_alerts_live",
            "kind",
            "subject_id",
            unique=True,
            sqlite_where=text(LIVE_ALERT),
            postgresql_where=text(LIVE_ALERT),
        ),
        Index("ix_alerts_queue", "status", "due_date"),
        Index("ix_alerts_patient", "patient_id", "status"),
    )


class CoverageReview(Base):
    """When a patient's cover and alerts must next be looked at again although nothing about
    them changed: the next date on which time alone changes an answer (a session passes, a
    renew-by window opens, a due date nears). Every recompute sets it; the sweep recomputes only
    the patients whose date has come, so an hourly sweep does not redo everyone."""

    __tablename__ = "coverage_reviews"

    patient_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("patients.id"), primary_key=True)
    review_on: Mapped[date | None] = mapped_column(Date, index=True)
    reviewed_at: Mapped[datetime] = mapped_column(Instant, default=utcnow)
