"""Treatment courses, their history, and what happened at each session."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

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
    Time,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import utcnow
from core.db import Base, IdMixin, Instant, TimestampMixin
from scheduling.centers.models import CHAIR_KINDS, _in

COURSE_STATUSES = ("active", "on_hold", "completed", "discontinued")
PHASES = ("induction", "maintenance")


class Course(IdMixin, TimestampMixin, Base):
    """A treatment plan: an optional induction, then maintenance every interval."""

    __tablename__ = "courses"

    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"), index=True)
    center_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("centers.id"), index=True)
    product_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("products.id"))
    diagnosis_code: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(20), default="active")
    induction_total_g_per_kg: Mapped[Decimal | None] = mapped_column(Numeric(5, 3))
    induction_days: Mapped[int | None] = mapped_column(Integer)
    induction_skips_closures: Mapped[bool] = mapped_column(Boolean, default=False)
    # The days the induction was booked over: more than ordered when a session as ordered
    # would last too long (`scheduling/courses/splits.py`). Kept once booked, so a later
    # change (a lower tolerated rate, a center setting) cannot re-split a dose half given.
    # None until booked, and for courses booked before splits existed: as ordered.
    induction_booked_days: Mapped[int | None] = mapped_column(Integer)
    maintenance_g_per_kg: Mapped[Decimal | None] = mapped_column(Numeric(5, 3))
    interval_days: Mapped[int | None] = mapped_column(Integer)
    window_min_days: Mapped[int | None] = mapped_column(Integer)
    window_max_days: Mapped[int | None] = mapped_column(Integer)
    cycles: Mapped[int | None] = mapped_column(Integer)
    end_date: Mapped[date | None] = mapped_column(Date)
    start_date: Mapped[date] = mapped_column(Date)
    preferred_weekdays: Mapped[list[int]] = mapped_column(JSON)
    preferred_start_time: Mapped[time] = mapped_column(Time)
    chair_kind: Mapped[str] = mapped_column(String(20))
    weight_basis: Mapped[str] = mapped_column(String(10), default="actual")
    vial_tolerance_pct: Mapped[Decimal | None] = mapped_column(Numeric(4, 1))
    renal_risk: Mapped[bool] = mapped_column(Boolean, default=False)
    thrombosis_risk: Mapped[bool] = mapped_column(Boolean, default=False)
    # Lowered after an infusion reaction; caps the rate of every later session.
    tolerated_rate: Mapped[Decimal | None] = mapped_column(Numeric(8, 4))
    dose_override_reason: Mapped[str | None] = mapped_column(String(500))
    # The session the last booking run could not place, and why (shown on the plan).
    unbookable: Mapped[dict[str, str] | None] = mapped_column(JSON)
    # What the booking run planned with when it found the course stuck (see
    # `scheduling.jobs.stuck_key`): while it holds, nothing the course could use has changed
    # and a re-run skips it.
    unbookable_key: Mapped[str | None] = mapped_column(String(200))
    created_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id"))
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        CheckConstraint(_in("status", COURSE_STATUSES), name="status"),
        CheckConstraint(_in("chair_kind", CHAIR_KINDS), name="chair_kind"),
        CheckConstraint("weight_basis IN ('actual', 'adjusted')", name="weight_basis"),
        CheckConstraint(
            "induction_days IS NULL OR induction_days BETWEEN 1 AND 5", name="induction"
        ),
        CheckConstraint(
            "induction_booked_days IS NULL OR induction_booked_days BETWEEN 1 AND 14",
            name="induction_booked_days",
        ),
        CheckConstraint(
            "interval_days IS NULL OR "
            "(0 < window_min_days AND window_min_days <= interval_days "
            "AND interval_days <= window_max_days)",
            name="window",
        ),
        CheckConstraint(
            "induction_days IS NOT NULL OR interval_days IS NOT NULL", name="has_a_phase"
        ),
    )


class CourseChange(IdMixin, Base):
    """Every status change of a course: who, when, from, to and why."""

    __tablename__ = "course_changes"

    course_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("courses.id"), index=True)
    at: Mapped[datetime] = mapped_column(Instant, default=utcnow)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id"))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(String(500))


class CourseReplan(IdMixin, Base):
    """One re-plan that changed a course's sessions: when, who set it off and how (in words),
    and each session it moved, resized or added, from where to where, as it was then. Kept
    whole, as written, so the plan can say what the last one did without re-deriving it."""

    __tablename__ = "course_replans"

    course_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("courses.id"))
    at: Mapped[datetime] = mapped_column(Instant, default=utcnow)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id"))
    cause: Mapped[str] = mapped_column(String(300))
    # [{appointment_id, kind: moved|resized|added, phase, sequence, part, before, after}],
    # places as {chair_id, start, end, dose_g}; before is null for an added session.
    changes: Mapped[list[dict[str, Any]]] = mapped_column(JSON)

    __table_args__ = (Index("ix_course_replans_course_at", "course_id", "at"),)


# What a nurse records of each infusion reaction (API contract; CTCAE grades 1-5).
REACTION_KINDS = (
    "headache",
    "fever",
    "chills",
    "flushing",
    "rash",
    "nausea",
    "hypertension",
    "hypotension",
    "chest_tightness",
    "dyspnea",
    "anaphylaxis",
    "other",
)
REACTION_ACTIONS = ("none", "slowed", "paused", "stopped", "premedicated")
# A record's overall severity, as records kept before reactions had detail (revision 0014)
# said it; newer records derive it from their worst grade (`courses.service.severity`).
SEVERITIES = ("none", "mild", "moderate", "severe")


class SessionRecord(IdMixin, Base):
    """What happened at a completed session, course or not: measured weight, dose given,
    reactions, the rate tolerated, pre-infusion screening, scores."""

    __tablename__ = "session_records"

    appointment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("appointments.id"), unique=True)
    course_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("courses.id"), index=True)
    recorded_at: Mapped[datetime] = mapped_column(Instant, default=utcnow)
    recorded_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id"))
    weight_kg: Mapped[Decimal | None] = mapped_column(Numeric(5, 1))
    dose_given_g: Mapped[Decimal | None] = mapped_column(Numeric(7, 2))
    infusion_minutes: Mapped[int | None] = mapped_column(Integer)
    actual_start: Mapped[datetime | None] = mapped_column(Instant)
    actual_end: Mapped[datetime | None] = mapped_column(Instant)
    reaction: Mapped[str] = mapped_column(String(10), default="none")
    # Always mg/kg/min (what caps the course). A rate given in mL/h is kept as given, with
    # the weight it was converted with, so the conversion can be checked later.
    tolerated_rate: Mapped[Decimal | None] = mapped_column(Numeric(8, 4))
    tolerated_rate_ml_per_hour: Mapped[Decimal | None] = mapped_column(Numeric(6, 1))
    rate_weight_kg: Mapped[Decimal | None] = mapped_column(Numeric(5, 1))
    # Pre-infusion screening (renal function, hydration, thrombosis risk); None: not assessed.
    creatinine_mg_dl: Mapped[Decimal | None] = mapped_column(Numeric(4, 2))
    egfr_ml_min: Mapped[int | None] = mapped_column(Integer)
    hydrated: Mapped[bool | None] = mapped_column(Boolean)
    thrombosis_risk: Mapped[bool | None] = mapped_column(Boolean)
    notes: Mapped[str | None] = mapped_column(String(2000))
    incat: Mapped[int | None] = mapped_column(Integer)
    i_rods: Mapped[int | None] = mapped_column(Integer)
    mrc_sum: Mapped[int | None] = mapped_column(Integer)
    grip_strength_kg: Mapped[Decimal | None] = mapped_column(Numeric(5, 1))

    __table_args__ = (
        CheckConstraint(_in("reaction", SEVERITIES), name="reaction"),
        CheckConstraint("incat IS NULL OR incat BETWEEN 0 AND 10", name="incat"),
        CheckConstraint("i_rods IS NULL OR i_rods BETWEEN 0 AND 100", name="i_rods"),
        CheckConstraint("mrc_sum IS NULL OR mrc_sum BETWEEN 0 AND 60", name="mrc_sum"),
        CheckConstraint(
            "infusion_minutes IS NULL OR infusion_minutes BETWEEN 1 AND 1440",
            name="infusion_minutes",
        ),
        CheckConstraint(
            "tolerated_rate_ml_per_hour IS NULL OR tolerated_rate_ml_per_hour > 0",
            name="tolerated_rate_ml_per_hour",
        ),
        CheckConstraint(
            "creatinine_mg_dl IS NULL OR creatinine_mg_dl BETWEEN 0.1 AND 20",
            name="creatinine_mg_dl",
        ),
        CheckConstraint("egfr_ml_min IS NULL OR egfr_ml_min BETWEEN 1 AND 200", name="egfr"),
    )


class SessionReaction(IdMixin, Base):
    """One infusion reaction at a session: what it was, how bad (CTCAE), what the nurse did.
    Rows of their own, not a JSON list, so the database holds the vocabulary and the grades,
    and "every grade 3 or worse on this product" is a query."""

    __tablename__ = "session_reactions"

    record_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("session_records.id"))
    position: Mapped[int] = mapped_column(Integer)  # the order the nurse gave them in
    kind: Mapped[str] = mapped_column(String(20))
    grade: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(15))

    __table_args__ = (
        UniqueConstraint("record_id", "position"),
        CheckConstraint(_in("kind", REACTION_KINDS), name="kind"),
        CheckConstraint("grade BETWEEN 1 AND 5", name="grade"),
        CheckConstraint(_in("action", REACTION_ACTIONS), name="action"),
    )
