"""Waitlist entries."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, Integer, String, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import utcnow
from core.db import Base, IdMixin, Instant
from scheduling.centers.models import CHAIR_KINDS, _in

WAITLIST_STATUSES = ("waiting", "booked", "removed")


class WaitlistEntry(IdMixin, Base):
    """A patient waiting for an opening at a center: any day from `earliest` to `latest`, for
    `duration_minutes` in a `chair_kind`, `priority` 1 (most urgent) to 5. `waiting` until an
    opening books it (`booked`) or staff take it off (`removed`); either is final. A course has
    at most one waiting entry, which the database keeps however many requests race."""

    __tablename__ = "waitlist_entries"

    center_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("centers.id"))
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"))
    course_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("courses.id"))
    earliest: Mapped[date] = mapped_column(Date)
    latest: Mapped[date] = mapped_column(Date)
    duration_minutes: Mapped[int] = mapped_column(Integer)
    chair_kind: Mapped[str] = mapped_column(String(20))
    priority: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default="waiting")
    note: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(Instant, default=utcnow)
    created_by: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"))
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        CheckConstraint("earliest <= latest", name="window"),
        CheckConstraint("duration_minutes BETWEEN 15 AND 720", name="duration"),
        CheckConstraint("priority BETWEEN 1 AND 5", name="priority"),
        CheckConstraint(_in("status", WAITLIST_STATUSES), name="status"),
        CheckConstraint(_in("chair_kind", CHAIR_KINDS), name="chair_kind"),
        # One live entry per course: a second is a 409, not a second offer to the patient.
        Index(
            "uq_waitlist_entries_course_waiting",
            "course_id",
            unique=True,
            postgresql_where=text("status = 'waiting'"),
            sqlite_where=text("status = 'waiting'"),
        ),
        Index("ix_waitlist_entries_open", "center_id", "status", "latest"),
        Index("ix_waitlist_entries_patient_id", "patient_id"),
    )
