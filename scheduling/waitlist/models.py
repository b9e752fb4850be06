"""Waitlist entries, the openings a freed chair makes, and the offers of an opening."""

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
    # The course session the patient wants brought forward: an accepted offer moves it.
    appointment_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("appointments.id"))
    earliest: Mapped[date] = mapped_column(Date)
    latest: Mapped[date] = mapped_column(Date)
    duration_minutes: Mapped[int] = mapped_column(Integer)
    chair_kind: Mapped[str] = mapped_column(String(20))
    priority: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default="waiting")
    note: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(Instant, default=utcnow)
    # None: put on by the booking run (a session booked late, a course it could not book).
    created_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id"))
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


OPENING_STATUSES = ("open", "filled", "lapsed")
OPENING_CAUSES = ("cancelled", "no_show", "moved")
OFFER_STATUSES = ("open", "accepted", "declined", "expired", "withdrawn")


class WaitlistOpening(IdMixin, Base):
    """What a freed chair left free: [start_at, end_at) on the chair, as it was when the
    change that freed it settled (what other moves filled again is not in it). `open` while
    it is offered, one entry at a time; `filled` once an offer of it is accepted; `lapsed`
    when its start passed unfilled."""

    __tablename__ = "waitlist_openings"

    center_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("centers.id"))
    chair_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("chairs.id"))
    start_at: Mapped[datetime] = mapped_column(Instant)
    end_at: Mapped[datetime] = mapped_column(Instant)
    cause: Mapped[str] = mapped_column(String(20))
    freed_appointment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("appointments.id"))
    status: Mapped[str] = mapped_column(String(20), default="open")
    created_at: Mapped[datetime] = mapped_column(Instant, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(Instant)

    __table_args__ = (
        CheckConstraint("start_at < end_at", name="start_before_end"),
        CheckConstraint(_in("status", OPENING_STATUSES), name="status"),
        CheckConstraint(_in("cause", OPENING_CAUSES), name="cause"),
        Index("ix_waitlist_openings_status_start", "status", "start_at"),
        Index("ix_waitlist_openings_center_created", "center_id", "created_at"),
        Index("ix_waitlist_openings_chair_start", "chair_id", "start_at"),
    )


class WaitlistOffer(IdMixin, Base):
    """An opening offered to one waiting entry: [start_at, end_at) on the opening's chair,
    held for the patient until `hold_until`. `open` until accepted (booked), declined, expired
    (the hold passed) or withdrawn (the entry was removed). The database keeps one open offer
    per opening and per entry, and one accepted offer per opening."""

    __tablename__ = "waitlist_offers"

    opening_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("waitlist_openings.id"))
    entry_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("waitlist_entries.id"))
    start_at: Mapped[datetime] = mapped_column(Instant)
    end_at: Mapped[datetime] = mapped_column(Instant)
    status: Mapped[str] = mapped_column(String(20), default="open")
    offered_at: Mapped[datetime] = mapped_column(Instant, default=utcnow)
    hold_until: Mapped[datetime] = mapped_column(Instant)
    answered_at: Mapped[datetime | None] = mapped_column(Instant)
    answered_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id"))
    # What accepting it booked or moved there.
    appointment_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("appointments.id"))
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        CheckConstraint("start_at < end_at", name="start_before_end"),
        CheckConstraint("offered_at <= hold_until", name="hold"),
        CheckConstraint(_in("status", OFFER_STATUSES), name="status"),
        # One at a time: an opening is offered to one entry, an entry holds one opening.
        Index(
            "uq_waitlist_offers_opening_open",
            "opening_id",
            unique=True,
            postgresql_where=text("status = 'open'"),
            sqlite_where=text("status = 'open'"),
        ),
        Index(
            "uq_waitlist_offers_entry_open",
            "entry_id",
            unique=True,
            postgresql_where=text("status = 'open'"),
            sqlite_where=text("status = 'open'"),
        ),
        # An opening is filled once, however many accepts race.
        Index(
            "uq_waitlist_offers_opening_accepted",
            "opening_id",
            unique=True,
            postgresql_where=text("status = 'accepted'"),
            sqlite_where=text("status = 'accepted'"),
        ),
        Index("ix_waitlist_offers_status_hold", "status", "hold_until"),
        Index("ix_waitlist_offers_entry_id", "entry_id"),
    )
