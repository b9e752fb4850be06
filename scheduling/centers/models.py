"""Centers: opening hours, nurse staffing, closures, chairs and chair blocks."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime, time

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Integer,
    String,
    Time,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.clock import utcnow
from core.db import Base, IdMixin, Instant, TimestampMixin

CHAIR_KINDS = ("chair", "bed", "isolation")
# In a shortage, whose doses are protected first: ICD-10 prefixes, highest priority first
# (acute GBS, then MMN, then CIDP maintenance), until a center sets its own.
DEFAULT_SHORTAGE_PRIORITY = ("G61.0", "G61.82", "G61.81")
SHORTAGE_PRIORITY_DEFAULT_SQL = f"'{json.dumps(list(DEFAULT_SHORTAGE_PRIORITY))}'"


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Center(IdMixin, TimestampMixin, Base):
    __tablename__ = "centers"

    name: Mapped[str] = mapped_column(String(200))
    # Where patients go: the portal and calendar feeds show it.
    address: Mapped[str | None] = mapped_column(String(300))
    timezone: Mapped[str] = mapped_column(String(64))
    patients_per_nurse: Mapped[int] = mapped_column(Integer)
    # Cleaning and resetting a chair after each patient: nobody else is booked into it then.
    turnover_minutes: Mapped[int] = mapped_column(Integer, default=15, server_default="15")
    # Check-in opens this long before a visit's start (and never before its local day).
    checkin_opens_minutes: Mapped[int] = mapped_column(Integer, default=120, server_default="120")
    # A longer session is split over more days (see the course planner).
    max_session_minutes: Mapped[int] = mapped_column(Integer, default=480, server_default="480")
    # A course session no authorization covers: booked with a flag for billing ("warn") or
    # refused ("block").
    coverage_policy: Mapped[str] = mapped_column(String(10), default="warn", server_default="warn")
    # When the pharmacy mixes a dose: ahead of the start, or once the nurse has cleared the
    # patient (nothing mixed for a patient unfit to receive it).
    prepare_policy: Mapped[str] = mapped_column(String(12), default="ahead", server_default="ahead")
    # The nightly booking run books each active course this many days ahead, at this local time.
    booking_horizon_days: Mapped[int] = mapped_column(Integer, default=56, server_default="56")
    auto_book_at: Mapped[time] = mapped_column(
        Time, default=time(2, 0), server_default=text("'02:00:00'")
    )
    # The shortage plan's priority order of indications (`pharmacy/shortage.py`).
    shortage_priority: Mapped[list[str]] = mapped_column(
        JSON,
        default=lambda: list(DEFAULT_SHORTAGE_PRIORITY),
        server_default=text(SHORTAGE_PRIORITY_DEFAULT_SQL),
    )
    # The optimiser leaves sessions this close (in days from today) where they are: patients
    # and the pharmacy have planned around them.
    no_move_days: Mapped[int] = mapped_column(Integer, default=2, server_default="2")
    # The nightly booking run re-places what it booked with the optimiser (first fit stays
    # where the solver finds nothing better in its time).
    optimise_nightly: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # How long a waitlist offer holds an opening: a slot days away can wait for an answer, one
    # the same day cannot.
    offer_hold_minutes: Mapped[int] = mapped_column(Integer, default=720, server_default="720")
    offer_hold_same_day_minutes: Mapped[int] = mapped_column(
        Integer, default=30, server_default="30"
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
        CheckConstraint("prepare_policy IN ('ahead', 'on_clearance')", name="prepare_policy"),
        CheckConstraint("booking_horizon_days BETWEEN 1 AND 366", name="booking_horizon"),
        CheckConstraint("no_move_days BETWEEN 0 AND 60", name="no_move_days"),
        CheckConstraint("offer_hold_minutes BETWEEN 5 AND 10080", name="offer_hold"),
        CheckConstraint(
            "offer_hold_same_day_minutes BETWEEN 5 AND 1440", name="offer_hold_same_day"
        ),
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


class CenterOpenings(Base):
    """A center's openings version: bumped by every write that could free room (database
    triggers, migration 0035), never by a new booking, which only takes room."""

    __tablename__ = "center_openings"

    center_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
