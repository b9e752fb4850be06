"""Appointments and their history."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Uuid,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import utcnow
from core.db import Base, IdMixin, Instant, TimestampMixin
from scheduling.centers.models import _in

APPOINTMENT_STATUSES = ("booked", "checked_in", "in_progress", "completed", "cancelled", "no_show")
# Statuses that hold a chair, a patient and a nurse's attention.
ACTIVE_STATUSES = ("booked", "checked_in", "in_progress")
# Statuses whose chair is taken for [start, end + turnover): a visit given still needs its
# chair cleaned after it.
CHAIR_HOLDING_STATUSES = (*ACTIVE_STATUSES, "completed")


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
    # Which day of its dose a course session is: 2 for the second of a maintenance dose given
    # over two consecutive days (too long for one session); else 1.
    part: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # The chair's cleaning after this visit, fixed when it was booked: the chair guards keep
    # [start, end + turnover) to this visit alone.
    turnover_minutes: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # A course session a nurse placed outside its window on purpose (`override_reason`).
    outside_window: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Placed by a person: re-plans never move it.
    pinned: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

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
            "part",
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
    # Why, when a person said: a visit recorded after the fact, a window overridden, a cancel.
    reason: Mapped[str | None] = mapped_column(String(500))
