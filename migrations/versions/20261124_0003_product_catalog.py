"""Product catalog with the seed products, and each center's chair turnover time.

The seed is data, not code: five 10 % IVIG products with label titration values from the
domain notes, and one non-IVIG infusion, so nothing assumes IVIG. Centers edit them freely.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

IVIG_VIALS = [5, 10, 20, 40]
# name, HCPCS, billing unit mg, concentration %, initial, step, every (min), max (mg/kg/min),
# vial sizes (g)
SEED = [
    ("Gamunex-C 10%", "J1561", 500, "10", "2", "2", 30, "8", IVIG_VIALS),
    ("Privigen 10%", "J1459", 500, "10", "0.5", "1.5", 15, "8", IVIG_VIALS),
    ("Gammagard Liquid 10%", "J1569", 500, "10", "0.8", "1.6", 30, "9", [1, 2.5, 5, 10, 20, 30]),
    ("Octagam 10%", "J1568", 500, "10", "1", "2", 30, "12", [2, 5, 10, 20, 30]),
    ("Panzyga 10%", "J1576", 500, "10", "1", "2", 30, "8", [1, 2.5, 5, 10, 20, 30]),
    # Infliximab 5 mg/kg over at least two hours: a constant rate, no titration steps.
    ("Infliximab 100 mg", "J1745", 10, "1", "0.0417", "0", 30, "0.0417", [0.1]),
]
SEED_NAMESPACE = uuid.UUID("6f2c1f0e-3c55-4d0e-9a4e-2b8f0c6a1d11")


def _products() -> sa.TableClause:
    return sa.table(
        "products",
        sa.column("id", sa.Uuid()),
        sa.column("name", sa.String()),
        sa.column("hcpcs_code", sa.String()),
        sa.column("billing_unit_mg", sa.Integer()),
        sa.column("concentration_pct", sa.Numeric()),
        sa.column("initial_rate", sa.Numeric()),
        sa.column("rate_step", sa.Numeric()),
        sa.column("step_interval_minutes", sa.Integer()),
        sa.column("max_rate", sa.Numeric()),
        sa.column("min_practicable_rate", sa.Numeric()),
        sa.column("premed_minutes", sa.Integer()),
        sa.column("observation_minutes", sa.Integer()),
        sa.column("first_dose_extra_observation_minutes", sa.Integer()),
        sa.column("vial_sizes_g", sa.JSON()),
        sa.column("price_per_unit", sa.Numeric()),
        sa.column("active", sa.Boolean()),
        sa.column("version", sa.Integer()),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )


def upgrade() -> None:
    op.create_table(
        "products",
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("hcpcs_code", sa.String(length=10), nullable=False),
        sa.Column("billing_unit_mg", sa.Integer(), nullable=False),
        sa.Column("concentration_pct", sa.Numeric(precision=5, scale=2), nullable=False),
        sa.Column("initial_rate", sa.Numeric(precision=8, scale=4), nullable=False),
        sa.Column("rate_step", sa.Numeric(precision=8, scale=4), nullable=False),
        sa.Column("step_interval_minutes", sa.Integer(), nullable=False),
        sa.Column("max_rate", sa.Numeric(precision=8, scale=4), nullable=False),
        sa.Column("min_practicable_rate", sa.Numeric(precision=8, scale=4), nullable=True),
        sa.Column("premed_minutes", sa.Integer(), nullable=False),
        sa.Column("observation_minutes", sa.Integer(), nullable=False),
        sa.Column("first_dose_extra_observation_minutes", sa.Integer(), nullable=False),
        sa.Column("vial_sizes_g", sa.JSON(), nullable=False),
        sa.Column("price_per_unit", sa.Numeric(precision=10, scale=2), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("billing_unit_mg > 0", name=op.f("ck_products_billing_unit_positive")),
        sa.CheckConstraint(
            "initial_rate > 0 AND initial_rate <= max_rate", name=op.f("ck_products_rates")
        ),
        sa.CheckConstraint(
            "min_practicable_rate IS NULL OR "
            "(min_practicable_rate > 0 AND min_practicable_rate <= max_rate)",
            name=op.f("ck_products_min_practicable_rate"),
        ),
        sa.CheckConstraint(
            "rate_step >= 0 AND step_interval_minutes > 0", name=op.f("ck_products_steps")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_products")),
        sa.UniqueConstraint("name", name=op.f("uq_products_name")),
    )
    with op.batch_alter_table("centers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("turnover_minutes", sa.Integer(), server_default="15", nullable=False)
        )
        batch_op.create_check_constraint("turnover_range", "turnover_minutes BETWEEN 0 AND 120")

    now = datetime.now(UTC)
    # Naive UTC on SQLite, as the service's own column type stores it.
    stamp = now.replace(tzinfo=None) if op.get_context().dialect.name == "sqlite" else now
    op.bulk_insert(
        _products(),
        [
            {
                "id": uuid.uuid5(SEED_NAMESPACE, name),
                "name": name,
                "hcpcs_code": hcpcs,
                "billing_unit_mg": unit_mg,
                "concentration_pct": Decimal(pct),
                "initial_rate": Decimal(initial),
                "rate_step": Decimal(step),
                "step_interval_minutes": every,
                "max_rate": Decimal(max_rate),
                "min_practicable_rate": None,  # None: the initial rate
                "premed_minutes": 30,
                "observation_minutes": 30,
                "first_dose_extra_observation_minutes": 30,
                "vial_sizes_g": vials,
                "price_per_unit": None,
                "active": True,
                "version": 1,
                "created_at": stamp,
                "updated_at": stamp,
            }
            for name, hcpcs, unit_mg, pct, initial, step, every, max_rate, vials in SEED
        ],
    )


def downgrade() -> None:
    with op.batch_alter_table("centers", schema=None) as batch_op:
        batch_op.drop_constraint("turnover_range", type_="check")
        batch_op.drop_column("turnover_minutes")
    op.drop_table("products")
