"""Centers, chairs, staffing and appointments."""

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
    Index,
    Integer,
    Numeric,
    String,
    Time,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, IdMixin, Instant, TimestampMixin, utcnow

CHAIR_KINDS = ("chair", "bed", "isolation")
APPOINTMENT_STATUSES = ("booked", "checked_in", "in_progress", "completed", "cancelled", "no_show")
# Statuses that hold a chair, a patient and a nurse's attention.
ACTIVE_STATUSES = ("booked", "checked_in", "in_progress")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Center(IdMixin, TimestampMixin, Base):
    __tablename__ = "centers"

    name: Mapped[str] = mapped_column(String(200))
    # Where patients go: the portal and calendar feeds show it.
    address: Mapped[str | None] = mapped_column(String(300))
    timezone: Mapped[str] = mapped_column(String(64))
    patients_per_nurse: Mapped[int] = mapped_column(Integer)
    # Cleaning and resetting a chair between patients; part of every session's chair time.
    turnover_minutes: Mapped[int] = mapped_column(Integer, default=15, server_default="15")
    # A course session no authorization covers: booked with a flag for billing ("warn") or
    # refused ("block").
    coverage_policy: Mapped[str] = mapped_column(String(10), default="warn", server_default="warn")
    # The nightly booking run books each active course this many days ahead, at this local time.
    booking_horizon_days: Mapped[int] = mapped_column(Integer, default=56, server_default="56")
    auto_book_at: Mapped[time] = mapped_column(
        Time, default=time(2, 0), server_default=text("'02:00:00'")
    )
    version: Mapped[int] = mapped_column(Integer, default=1)

    opening_hours: Mapped[list[OpeningHours]] = relationship(
        lazy="raise", cascade="all, delete-orphan", order_by="OpeningHours.weekday"
    )
    staffing: Mapped[list[StaffingBlock]] = relationship(
        lazy="raise",
        cascade="all, delete-orphan",
        order_by="(StaffingBlock.weekday, StaffingBlock.start)",
    )

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        CheckConstraint("patients_per_nurse BETWEEN 1 AND 20", name="ppn_range"),
        CheckConstraint("turnover_minutes BETWEEN 0 AND 120", name="turnover_range"),
        CheckConstraint("coverage_policy IN ('warn', 'block')", name="coverage_policy"),
        CheckConstraint("booking_horizon_days BETWEEN 1 AND 366", name="booking_horizon"),
    )


class OpeningHours(Base):
    __tablename__ = "opening_hours"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    center_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("centers.id", ondelete="CASCADE"))
    weekday: Mapped[int] = mapped_column(Integer)
    opens: Mapped[time] = mapped_column(Time)
    closes: Mapped[time] = mapped_column(Time)

    __table_args__ = (
        UniqueConstraint("center_id", "weekday"),
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday_range"),
        CheckConstraint("opens < closes", name="opens_before_closes"),
    )


class StaffingBlock(Base):
    """Nurses on duty during a weekly block; overlapping blocks add up."""

    __tablename__ = "staffing_blocks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    center_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("centers.id", ondelete="CASCADE"), index=True
    )
    weekday: Mapped[int] = mapped_column(Integer)
    start: Mapped[time] = mapped_column(Time)
    end: Mapped[time] = mapped_column(Time)
    nurses: Mapped[int] = mapped_column(Integer)

    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday_range"),
        CheckConstraint('start < "end"', name="start_before_end"),
        CheckConstraint("nurses BETWEEN 0 AND 100", name="nurses_range"),
    )


class Closure(IdMixin, Base):
    __tablename__ = "closures"

    center_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("centers.id", ondelete="CASCADE"))
    date: Mapped[date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(Instant, default=utcnow)

    __table_args__ = (UniqueConstraint("center_id", "date"),)


class Chair(IdMixin, TimestampMixin, Base):
    __tablename__ = "chairs"

    center_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("centers.id"), index=True)
    label: Mapped[str] = mapped_column(String(50))
    kind: Mapped[str] = mapped_column(String(20))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        UniqueConstraint("center_id", "label"),
        CheckConstraint(_in("kind", CHAIR_KINDS), name="kind"),
    )


class ChairBlock(IdMixin, Base):
    """A chair out of service (repair, deep cleaning) for a span of time."""

    __tablename__ = "chair_blocks"

    chair_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("chairs.id"), index=True)
    start_at: Mapped[datetime] = mapped_column(Instant)
    end_at: Mapped[datetime] = mapped_column(Instant)
    reason: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(Instant, default=utcnow)

    __table_args__ = (CheckConstraint("start_at < end_at", name="start_before_end"),)


class Appointment(IdMixin, TimestampMixin, Base):
    """A patient in a chair for a span of time.

    Overlaps are refused by the database, not only by the booking service: an exclusion
    constraint on PostgreSQL and triggers on SQLite (see the migrations) cover the chair and
    the patient for every active status.
    """

    __tablename__ = "appointments"

    center_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("centers.id"))
    chair_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("chairs.id"))
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"))
    start_at: Mapped[datetime] = mapped_column(Instant)
    end_at: Mapped[datetime] = mapped_column(Instant)
    status: Mapped[str] = mapped_column(String(20), default="booked")
    version: Mapped[int] = mapped_column(Integer, default=1)
    booked_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id"))
    status_changed_at: Mapped[datetime] = mapped_column(Instant, default=utcnow)
    # A course session knows its place in the course and what it was planned with.
    course_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("courses.id"))
    phase: Mapped[str | None] = mapped_column(String(12))
    sequence: Mapped[int | None] = mapped_column(Integer)
    dose_g: Mapped[Decimal | None] = mapped_column(Numeric(7, 2))

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        CheckConstraint("start_at < end_at", name="start_before_end"),
        CheckConstraint(_in("status", APPOINTMENT_STATUSES), name="status"),
        CheckConstraint(
            "(course_id IS NULL) = (phase IS NULL) AND (phase IS NULL) = (sequence IS NULL)",
            name="course_session",
        ),
        Index("ix_appointments_course_start", "course_id", "start_at"),
        # A course session is booked at most once, however many schedulers run.
        Index(
            "uq_appointments_course_session",
            "course_id",
            "phase",
            "sequence",
            unique=True,
            postgresql_where=text(_in("status", ACTIVE_STATUSES)),
            sqlite_where=text(_in("status", ACTIVE_STATUSES)),
        ),
        Index("ix_appointments_center_start", "center_id", "start_at"),
        Index("ix_appointments_chair_start", "chair_id", "start_at"),
        Index("ix_appointments_patient_start", "patient_id", "start_at"),
    )


class AppointmentChange(IdMixin, Base):
    """Every booking, move and status change, kept so nothing is ever lost."""

    __tablename__ = "appointment_changes"

    appointment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("appointments.id"), index=True)
    at: Mapped[datetime] = mapped_column(Instant, default=utcnow)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(30))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    chair_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    start_at: Mapped[datetime] = mapped_column(Instant)
    end_at: Mapped[datetime] = mapped_column(Instant)


class Product(IdMixin, TimestampMixin, Base):
    """A drug in the center's catalog, with the label values that set its chair time.

    Label figures are data a center edits; sessions keep the dose and chair time they were
    planned with, so editing a product never rewrites the past.
    """

    __tablename__ = "products"

    name: Mapped[str] = mapped_column(String(120), unique=True)
    hcpcs_code: Mapped[str] = mapped_column(String(10))
    billing_unit_mg: Mapped[int] = mapped_column(Integer)
    concentration_pct: Mapped[Decimal] = mapped_column(Numeric(5, 2))
    initial_rate: Mapped[Decimal] = mapped_column(Numeric(8, 4))
    rate_step: Mapped[Decimal] = mapped_column(Numeric(8, 4))
    step_interval_minutes: Mapped[int] = mapped_column(Integer)
    max_rate: Mapped[Decimal] = mapped_column(Numeric(8, 4))
    min_practicable_rate: Mapped[Decimal | None] = mapped_column(Numeric(8, 4))
    premed_minutes: Mapped[int] = mapped_column(Integer)
    observation_minutes: Mapped[int] = mapped_column(Integer)
    first_dose_extra_observation_minutes: Mapped[int] = mapped_column(Integer)
    vial_sizes_g: Mapped[list[float]] = mapped_column(JSON)
    price_per_unit: Mapped[Decimal | None] = mapped_column(Numeric(10, 2))
    # The dose range an order may ask for without a stated reason (g/kg per session).
    usual_dose_min_g_per_kg: Mapped[Decimal | None] = mapped_column(Numeric(7, 4))
    usual_dose_max_g_per_kg: Mapped[Decimal | None] = mapped_column(Numeric(7, 4))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        CheckConstraint("billing_unit_mg > 0", name="billing_unit_positive"),
        CheckConstraint(
            "usual_dose_min_g_per_kg IS NULL OR usual_dose_max_g_per_kg IS NULL "
            "OR (0 < usual_dose_min_g_per_kg "
            "AND usual_dose_min_g_per_kg <= usual_dose_max_g_per_kg)",
            name="usual_dose",
        ),
        CheckConstraint("initial_rate > 0 AND initial_rate <= max_rate", name="rates"),
        CheckConstraint("rate_step >= 0 AND step_interval_minutes > 0", name="steps"),
        CheckConstraint(
            "min_practicable_rate IS NULL OR "
            "(min_practicable_rate > 0 AND min_practicable_rate <= max_rate)",
            name="min_practicable_rate",
        ),
    )


class Regimen(IdMixin, TimestampMixin, Base):
    """The usual regimen for a diagnosis: what an order leaves out is taken from here."""

    __tablename__ = "regimens"

    diagnosis_code: Mapped[str] = mapped_column(String(10), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    induction_total_g_per_kg: Mapped[Decimal | None] = mapped_column(Numeric(5, 3))
    induction_days: Mapped[int | None] = mapped_column(Integer)
    induction_skips_closures: Mapped[bool] = mapped_column(Boolean, default=False)
    maintenance_g_per_kg: Mapped[Decimal | None] = mapped_column(Numeric(5, 3))
    interval_days: Mapped[int | None] = mapped_column(Integer)
    window_min_days: Mapped[int | None] = mapped_column(Integer)
    window_max_days: Mapped[int | None] = mapped_column(Integer)
    cycles: Mapped[int | None] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        CheckConstraint(
            "induction_days IS NULL OR induction_days BETWEEN 1 AND 5", name="induction"
        ),
        CheckConstraint(
            "interval_days IS NULL OR "
            "(0 < window_min_days AND window_min_days <= interval_days "
            "AND interval_days <= window_max_days AND cycles > 0)",
            name="window",
        ),
    )


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
