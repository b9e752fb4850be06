"""Usual regimens per diagnosis as data, and each product's usual dose range.

The regimens a course order falls back on (CIDP, MMN, GBS from the domain notes) and the dose
range an order may ask for without a stated reason were constants in code; they are data a
center edits. IVIG products get 0.1-3 g/kg, infliximab 3-10 mg/kg.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

from core.db import Instant

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEED_NAMESPACE = uuid.UUID("0b7e6f52-5a0c-4d7e-8f39-3f1c2d9b7a40")
# code, name, induction g/kg and days, maintenance g/kg, interval, window min, max, cycles
REGIMENS = [
    ("G61.81", "CIDP: 2 g/kg over 5 days, then 1 g/kg every 3 weeks", "2", 5, "1", 21, 21, 28, 12),
    ("G61.82", "MMN: 1 g/kg every 3 to 6 weeks", None, None, "1", 28, 21, 42, 12),
    ("G61.0", "GBS: 2 g/kg over 5 days, once", "2", 5, None, None, None, None, None),
]
IVIG_CODES = ("J1561", "J1459", "J1569", "J1568", "J1576")
USUAL_DOSES = [(IVIG_CODES, "0.1", "3"), (("J1745",), "0.003", "0.01")]


def upgrade() -> None:
    regimens = op.create_table(
        "regimens",
        sa.Column("diagnosis_code", sa.String(length=10), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("induction_total_g_per_kg", sa.Numeric(precision=5, scale=3), nullable=True),
        sa.Column("induction_days", sa.Integer(), nullable=True),
        sa.Column("induction_skips_closures", sa.Boolean(), nullable=False),
        sa.Column("maintenance_g_per_kg", sa.Numeric(precision=5, scale=3), nullable=True),
        sa.Column("interval_days", sa.Integer(), nullable=True),
        sa.Column("window_min_days", sa.Integer(), nullable=True),
        sa.Column("window_max_days", sa.Integer(), nullable=True),
        sa.Column("cycles", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", Instant(timezone=True), nullable=False),
        sa.Column("updated_at", Instant(timezone=True), nullable=False),
        sa.CheckConstraint(
            "induction_days IS NULL OR induction_days BETWEEN 1 AND 5",
            name=op.f("ck_regimens_induction"),
        ),
        sa.CheckConstraint(
            "interval_days IS NULL OR "
            "(0 < window_min_days AND window_min_days <= interval_days "
            "AND interval_days <= window_max_days AND cycles > 0)",
            name=op.f("ck_regimens_window"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_regimens")),
        sa.UniqueConstraint("diagnosis_code", name=op.f("uq_regimens_diagnosis_code")),
    )
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("usual_dose_min_g_per_kg", sa.Numeric(precision=7, scale=4), nullable=True)
        )
        batch_op.add_column(
            sa.Column("usual_dose_max_g_per_kg", sa.Numeric(precision=7, scale=4), nullable=True)
        )
        batch_op.create_check_constraint(
            "usual_dose",
            "usual_dose_min_g_per_kg IS NULL OR usual_dose_max_g_per_kg IS NULL "
            "OR (0 < usual_dose_min_g_per_kg "
            "AND usual_dose_min_g_per_kg <= usual_dose_max_g_per_kg)",
        )

    now = datetime.now(UTC)
    assert regimens is not None
    op.bulk_insert(
        regimens,
        [
            {
                "id": uuid.uuid5(SEED_NAMESPACE, code),
                "diagnosis_code": code,
                "name": name,
                "induction_total_g_per_kg": Decimal(total) if total else None,
                "induction_days": days,
                "induction_skips_closures": False,
                "maintenance_g_per_kg": Decimal(dose) if dose else None,
                "interval_days": interval,
                "window_min_days": low,
                "window_max_days": high,
                "cycles": cycles,
                "version": 1,
                "created_at": now,
                "updated_at": now,
            }
            for code, name, total, days, dose, interval, low, high, cycles in REGIMENS
        ],
    )
    products = sa.table(
        "products",
        sa.column("hcpcs_code", sa.String()),
        sa.column("usual_dose_min_g_per_kg", sa.Numeric()),
        sa.column("usual_dose_max_g_per_kg", sa.Numeric()),
    )
    for codes, low_g, high_g in USUAL_DOSES:
        op.execute(
            products.update()
            .where(products.c.hcpcs_code.in_(codes))
            .values(usual_dose_min_g_per_kg=Decimal(low_g), usual_dose_max_g_per_kg=Decimal(high_g))
        )


def downgrade() -> None:
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.drop_constraint("usual_dose", type_="check")
        batch_op.drop_column("usual_dose_max_g_per_kg")
        batch_op.drop_column("usual_dose_min_g_per_kg")
    op.drop_table("regimens")
