"""The drug catalog and the usual regimens per diagnosis."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Integer,
    Numeric,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base, IdMixin, TimestampMixin


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
    # Storage and lead times (label and supplier figures). A vial may spend
    # `room_temperature_months` out of the fridge (None: it must stay refrigerated), after
    # which it is used or discarded; it never goes back.
    refrigerated_shelf_months: Mapped[int | None] = mapped_column(Integer)
    room_temperature_months: Mapped[int | None] = mapped_column(Integer)
    preparation_minutes: Mapped[int] = mapped_column(Integer, default=30, server_default="30")
    order_lead_days: Mapped[int | None] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        CheckConstraint("billing_unit_mg > 0", name="billing_unit_positive"),
        CheckConstraint(
            "(refrigerated_shelf_months IS NULL OR refrigerated_shelf_months > 0) "
            "AND (room_temperature_months IS NULL OR room_temperature_months > 0) "
            "AND preparation_minutes >= 0 "
            "AND (order_lead_days IS NULL OR order_lead_days >= 0)",
            name="storage",
        ),
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
