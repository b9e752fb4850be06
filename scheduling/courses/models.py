"""Treatment courses, their history, and what happened at each session."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time
from decimal import Decimal

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Integer,
    Numeric,
    String,
    Time,
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


class SessionRecord(IdMixin, Base):
    """What happened at a completed session: measured weight, dose given, reaction, scores."""

    __tablename__ = "session_records"

    appointment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("appointments.id"), unique=True)
    course_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("courses.id"), index=True)
    recorded_at: Mapped[datetime] = mapped_column(Instant, default=utcnow)
    recorded_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id"))
    weight_kg: Mapped[Decimal | None] = mapped_column(Numeric(5, 1))
    dose_given_g: Mapped[Decimal | None] = mapped_column(Numeric(7, 2))
    actual_start: Mapped[datetime | None] = mapped_column(Instant)
    actual_end: Mapped[datetime | None] = mapped_column(Instant)
    reaction: Mapped[str] = mapped_column(String(10), default="none")
    tolerated_rate: Mapped[Decimal | None] = mapped_column(Numeric(8, 4))
    incat: Mapped[int | None] = mapped_column(Integer)
    i_rods: Mapped[int | None] = mapped_column(Integer)
    mrc_sum: Mapped[int | None] = mapped_column(Integer)
    grip_strength_kg: Mapped[Decimal | None] = mapped_column(Numeric(5, 1))

    __table_args__ = (
        CheckConstraint("reaction IN ('none', 'mild', 'moderate', 'severe')", name="reaction"),
        CheckConstraint("incat IS NULL OR incat BETWEEN 0 AND 10", name="incat"),
        CheckConstraint("i_rods IS NULL OR i_rods BETWEEN 0 AND 100", name="i_rods"),
        CheckConstraint("mrc_sum IS NULL OR mrc_sum BETWEEN 0 AND 60", name="mrc_sum"),
    )
