"""The audit trail (append-only), the tally of refusals of those not signed in, and patients'
calendar feeds."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import wall_now
from core.db import Base, Instant

OUTCOMES = ("success", "denied", "error")


class AuditEvent(Base):
    """One touch of patient data, or one refused attempt: who, what, whose, how it ended.

    Ids and names of things only; never a clinical value. Rows are never changed or removed:
    the database refuses UPDATE and DELETE on this table (see migration 0010).
    """

    __tablename__ = "audit_events"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    at: Mapped[datetime] = mapped_column(Instant, default=wall_now)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)  # no FK: the trail outlives users
    role: Mapped[str] = mapped_column(String(20))  # "anonymous" when no one signed in
    action: Mapped[str] = mapped_column(String(20))
    patient_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    resource_type: Mapped[str] = mapped_column(String(40))
    resource_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    outcome: Mapped[str] = mapped_column(String(10))
    request_id: Mapped[str] = mapped_column(String(40))
    client: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        CheckConstraint("outcome IN ('success', 'denied', 'error')", name="outcome"),
        Index("ix_audit_events_at", "at"),
        Index("ix_audit_events_patient", "patient_id", "at"),
        Index("ix_audit_events_actor", "actor_id", "at"),
        # The trail filtered by what was done to what (a rare one: unlock, job runs).
        Index("ix_audit_events_resource", "resource_type", "action", "at"),
    )


class RefusalTally(Base):
    """How many requests from one client address failed authentication (no credential, or a
    bad, expired or revoked one) in one minute: the audit trail's count of them, one row per
    address and minute however many came, instead of an event each.

    The first of the minute made the row (`first_request_id`); the first few of the minute
    on audited routes are also audit events of their own (`events` of them; a setting, one by
    default). Counts only grow: the database refuses to lower one, move it, or remove a row
    (migration 0022).
    """

    __tablename__ = "refusal_tallies"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    client: Mapped[str] = mapped_column(String(64))  # "unknown" when the server was not told
    minute: Mapped[datetime] = mapped_column(Instant)  # its start, UTC
    count: Mapped[int] = mapped_column(Integer)
    events: Mapped[int] = mapped_column(Integer)  # how many of them are on the trail as well
    first_request_id: Mapped[str] = mapped_column(String(40))
    last_at: Mapped[datetime] = mapped_column(Instant)

    __table_args__ = (
        # What each refusal's upsert lands on.
        UniqueConstraint("client", "minute"),
        CheckConstraint("count >= 1", name="count"),
        CheckConstraint("events >= 0 AND events <= count", name="events"),
        Index("ix_refusal_tallies_minute", "minute"),
    )


class CalendarFeed(Base):
    """A patient's calendar feed. Its URL's secret is derived from the id with the server's
    key, never stored; revoking the feed kills the URL, and the next one gets a new id."""

    __tablename__ = "calendar_feeds"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("patients.id"))
    created_at: Mapped[datetime] = mapped_column(Instant, default=wall_now)
    revoked_at: Mapped[datetime | None] = mapped_column(Instant)

    __table_args__ = (
        # One live feed per patient.
        Index(
            "uq_calendar_feeds_live",
            "patient_id",
            unique=True,
            sqlite_where=text("revoked_at IS NULL"),
            postgresql_where=text("revoked_at IS NULL"),
        ),
    )
