"""Payers, coverages, pre-authorizations, what each session draws on them, and billing alerts."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    Uuid,
    false,
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
    "payer_overdue",
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
    # Electronic prior authorization (Da Vinci PAS): where the payer takes requests and the
    # client credentials it gave us. The secret is write-only: no reply or log ever shows it.
    # The notification token is what the payer's rest-hook sends back to us, kept as a
    # SHA-256 hash (hex) only.
    pas_base_url: Mapped[str | None] = mapped_column(String(500))
    pas_token_url: Mapped[str | None] = mapped_column(String(500))
    pas_client_id: Mapped[str | None] = mapped_column(String(200))
    pas_client_secret: Mapped[str | None] = mapped_column(String(500))
    pas_notification_token_hash: Mapped[str | None] = mapped_column(String(64))
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
    # The last benefits check with the payer (CoverageEligibilityRequest), when it offers one.
    eligibility_checked_at: Mapped[datetime | None] = mapped_column(Instant)
    eligibility_in_force: Mapped[bool | None] = mapped_column(Boolean)
    eligibility_note: Mapped[str | None] = mapped_column(String(200))
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
    # What an electronic request names beside the course: who prescribed, and whether the
    # payer's expedited decision clock applies.
    prescriber_name: Mapped[str | None] = mapped_column(String(200))
    prescriber_npi: Mapped[str | None] = mapped_column(String(10))
    expedited: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
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


EXCHANGE_KINDS = ("submit", "inquire", "eligibility", "notification")


class PasRequest(Base):
    """An authorization's electronic request to its payer: the Claim identifier every attempt
    re-sends (the payer drops a repeat), when the payer first had it, and when to ask again
    about a pended one. `in_flight_since`: an exchange is under way (a second one waits)."""

    __tablename__ = "pas_requests"

    authorization_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("authorizations.id"), primary_key=True
    )
    payer_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("payers.id"))
    claim_identifier: Mapped[str] = mapped_column(String(64), unique=True)
    # When the Claim was first built: its `created`, the same on every attempt, so a retried
    # submission is byte-identical.
    created_at: Mapped[datetime] = mapped_column(Instant)
    submitted_at: Mapped[datetime | None] = mapped_column(Instant)
    in_flight_since: Mapped[datetime | None] = mapped_column(Instant)
    next_inquiry_at: Mapped[datetime | None] = mapped_column(Instant, index=True)
    inquiries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    decided_at: Mapped[datetime | None] = mapped_column(Instant)
    # The last exchange's failure, in words without patient data; None after a good answer.
    last_error: Mapped[str | None] = mapped_column(String(500))


class AuthorizationExchange(IdMixin, Base):
    """One HTTP exchange with a payer about an authorization (each attempt its own row): what
    was sent and received, how long it took and what came of it. The bodies carry patient
    data: only billing reads them, and they are never logged."""

    __tablename__ = "authorization_exchanges"

    authorization_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("authorizations.id")
    )
    coverage_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("coverages.id"))
    payer_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("payers.id"))
    kind: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id"))
    claim_identifier: Mapped[str | None] = mapped_column(String(64))
    operation: Mapped[str] = mapped_column(String(40))  # the path under pas_base_url
    attempt: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(Instant)
    finished_at: Mapped[datetime] = mapped_column(Instant)
    duration_ms: Mapped[int] = mapped_column(Integer)
    http_status: Mapped[int | None] = mapped_column(Integer)
    # A1..A4 for a decision read; else what went wrong: refused, garbled, timeout, network,
    # server_error, unauthorized, bad_request (ours did not validate), notified.
    outcome: Mapped[str] = mapped_column(String(40))
    request_bundle: Mapped[dict[str, object] | None] = mapped_column(JSON)
    response_body: Mapped[str | None] = mapped_column(Text)  # as received, cut at 64 kB
    error: Mapped[str | None] = mapped_column(String(500))

    __table_args__ = (
        CheckConstraint(_in("kind", EXCHANGE_KINDS), name="kind"),
        Index("ix_authorization_exchanges_authorization", "authorization_id", "started_at"),
        Index("ix_authorization_exchanges_coverage", "coverage_id", "started_at"),
    )


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
