"""Drug stock by lot at each center, and the administrations that drew from it."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.clock import utcnow
from core.db import Base, IdMixin, Instant, TimestampMixin

STORAGES = ("refrigerated", "room_temperature")
LOT_STATUSES = ("available", "quarantined", "recalled")


class DrugLot(IdMixin, TimestampMixin, Base):
    """Vials of one size from one manufacturer's lot, received at a center.

    `expires_on` is the last day a vial may be used: the label's expiry, shortened when the
    lot is moved to room temperature (the new date is written on the pack). A vial never
    goes back to the fridge, so `room_temperature_since` is set once and never cleared.
    """

    __tablename__ = "drug_lots"

    center_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("centers.id"))
    product_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("products.id"))
    lot_number: Mapped[str] = mapped_column(String(40))
    vial_size_g: Mapped[Decimal] = mapped_column(Numeric(7, 2))
    vials_received: Mapped[int] = mapped_column(Integer)
    vials_on_hand: Mapped[int] = mapped_column(Integer)
    expires_on: Mapped[date] = mapped_column(Date)
    storage: Mapped[str] = mapped_column(String(20), default="refrigerated")
    room_temperature_since: Mapped[datetime | None] = mapped_column(Instant)
    status: Mapped[str] = mapped_column(String(20), default="available")
    location: Mapped[str | None] = mapped_column(String(200))
    received_at: Mapped[datetime] = mapped_column(Instant, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        CheckConstraint(
            "vials_received > 0 AND vials_on_hand BETWEEN 0 AND vials_received", name="vials"
        ),
        CheckConstraint("vial_size_g > 0", name="vial_size"),
        CheckConstraint("storage IN ('refrigerated', 'room_temperature')", name="storage"),
        CheckConstraint(
            "(storage = 'room_temperature') = (room_temperature_since IS NOT NULL)",
            name="room_temperature_since",
        ),
        CheckConstraint("status IN ('available', 'quarantined', 'recalled')", name="status"),
        UniqueConstraint("center_id", "product_id", "lot_number", "vial_size_g"),
        Index("ix_drug_lots_stock", "center_id", "product_id", "expires_on"),
    )


class LotUse(IdMixin, Base):
    """Vials of a lot given at a visit: the traceability record a recall reads."""

    __tablename__ = "lot_uses"

    lot_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("drug_lots.id"), index=True)
    appointment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("appointments.id"), index=True)
    vials: Mapped[int] = mapped_column(Integer)
    recorded_at: Mapped[datetime] = mapped_column(Instant, default=utcnow)
    recorded_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id"))

    __table_args__ = (
        CheckConstraint("vials > 0", name="vials"),
        UniqueConstraint("lot_id", "appointment_id"),
    )


class Preparation(IdMixin, Base):
    """How far a visit's dose has come: each step's time and who took it (none: planned).

    One row per visit, made by its first step; the rules of the steps' order are in
    `pharmacy.preparation`.
    """

    __tablename__ = "preparations"

    appointment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("appointments.id"), unique=True)
    cleared_at: Mapped[datetime | None] = mapped_column(Instant)
    cleared_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id"))
    prepared_at: Mapped[datetime | None] = mapped_column(Instant)
    prepared_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id"))
    dispensed_at: Mapped[datetime | None] = mapped_column(Instant)
    dispensed_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id"))
    administered_at: Mapped[datetime | None] = mapped_column(Instant)
    administered_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id"))

    __table_args__ = (
        # The database keeps the order too: nothing dispensed unprepared, nothing given
        # undispensed.
        CheckConstraint(
            "dispensed_at IS NULL OR (prepared_at IS NOT NULL AND cleared_at IS NOT NULL)",
            name="dispensed_after_prepared",
        ),
        CheckConstraint(
            "administered_at IS NULL OR dispensed_at IS NOT NULL", name="administered_after"
        ),
    )


ORDER_STATUSES = ("ordered", "received", "cancelled")


class DrugOrder(IdMixin, Base):
    """Vials of one size of a product ordered from the supplier for a center, expected on a
    local day. `ordered` until it arrives (`received`: `received_lot_id` names the lot it came
    as) or is called off (`cancelled`); either is final. Until then the drug forecast and the
    shortfall check count it as stock from `expected_on` (`pharmacy.orders.on_order`).
    """

    __tablename__ = "drug_orders"

    center_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("centers.id"))
    product_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("products.id"))
    vial_size_g: Mapped[Decimal] = mapped_column(Numeric(7, 2))
    vials: Mapped[int] = mapped_column(Integer)
    expected_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20), default="ordered")
    ordered_at: Mapped[datetime] = mapped_column(Instant, default=utcnow)
    received_lot_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("drug_lots.id"))
    note: Mapped[str | None] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        CheckConstraint("vials > 0", name="vials"),
        CheckConstraint("vial_size_g > 0", name="vial_size"),
        CheckConstraint("status IN ('ordered', 'received', 'cancelled')", name="status"),
        # The database keeps the link too: a received order names its lot, no other does.
        CheckConstraint(
            "(status = 'received') = (received_lot_id IS NOT NULL)", name="received_lot"
        ),
        UniqueConstraint("received_lot_id"),  # a lot arrives as one order at most
        Index("ix_drug_orders_due", "center_id", "status", "expected_on"),
    )
