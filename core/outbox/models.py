"""Webhook subscriptions, outbox events and their deliveries."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import wall_now
from core.db import Base, Instant

EVENT_TYPES = (
    "appointment.booked",
    "appointment.rescheduled",
    "appointment.cancelled",
    "appointment.reminder",
    "authorization.lapsing",
    "alert.opened",
    "waitlist.offer",
)
DELIVERY_STATUSES = ("pending", "delivered", "failed")


class WebhookSubscription(Base):
    __tablename__ = "webhook_subscriptions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    url: Mapped[str] = mapped_column(String(2000))
    # Signs every delivery (`signing`: whsec_ + base64 of the key); shown once, when made or
    # rotated in. Long enough for a secret from before the standard, converted (0032).
    secret: Mapped[str] = mapped_column(String(300))
    event_types: Mapped[list[str]] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(Instant, default=wall_now)
    version: Mapped[int] = mapped_column(Integer, default=1)
    # The secret the last rotation replaced: deliveries are signed with it too, after the
    # current one, until `previous_secret_expires_at` (the real time, as deliveries go by), so
    # receivers can switch over without losing one. A later rotation replaces it.
    previous_secret: Mapped[str | None] = mapped_column(String(300))
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(Instant)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        CheckConstraint(
            "(previous_secret IS NULL) = (previous_secret_expires_at IS NULL)",
            name="previous_secret",
        ),
    )


class OutboxEvent(Base):
    """Something other systems may want to hear about: ids and times only, never a name or a
    diagnosis. `dedupe_key` makes an event that must happen once (a reminder) happen once."""

    __tablename__ = "outbox_events"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    type: Mapped[str] = mapped_column(String(40))
    occurred_at: Mapped[datetime] = mapped_column(Instant, default=wall_now)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    dedupe_key: Mapped[str | None] = mapped_column(String(120), unique=True)
    # Deliveries are made for it (one per interested subscription) by the delivery job.
    fanned_out: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (Index("ix_outbox_events_fan_out", "fanned_out", "occurred_at"),)


class Delivery(Base):
    """One event to one subscriber: pending until the receiver answers 2xx, retried with
    exponential backoff meanwhile; never sent again once delivered."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    event_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("outbox_events.id"))
    subscription_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("webhook_subscriptions.id"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(Instant, default=wall_now)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(Instant, default=wall_now)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(200))
    delivered_at: Mapped[datetime | None] = mapped_column(Instant)

    __table_args__ = (
        CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status"),
        Index("uq_webhook_deliveries_pair", "event_id", "subscription_id", unique=True),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    )
