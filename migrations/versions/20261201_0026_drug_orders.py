"""Drug orders: vials of one size of a product ordered for a center and expected on a local day
(`drug_orders`), until received (naming the lot they arrived as) or cancelled. The drug
forecast and the shortfall check count an open order as stock from the day it is expected.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from core.db import Instant

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "drug_orders",
        sa.Column("center_id", sa.Uuid(), nullable=False),
        sa.Column("product_id", sa.Uuid(), nullable=False),
        sa.Column("vial_size_g", sa.Numeric(precision=7, scale=2), nullable=False),
        sa.Column("vials", sa.Integer(), nullable=False),
        sa.Column("expected_on", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("ordered_at", Instant(timezone=True), nullable=False),
        sa.Column("received_lot_id", sa.Uuid(), nullable=True),
        sa.Column("note", sa.String(length=200), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.CheckConstraint("vials > 0", name=op.f("ck_drug_orders_vials")),
        sa.CheckConstraint("vial_size_g > 0", name=op.f("ck_drug_orders_vial_size")),
        sa.CheckConstraint(
            "status IN ('ordered', 'received', 'cancelled')", name=op.f("ck_drug_orders_status")
        ),
        sa.CheckConstraint(
            "(status = 'received') = (received_lot_id IS NOT NULL)",
            name=op.f("ck_drug_orders_received_lot"),
        ),
        sa.ForeignKeyConstraint(
            ["center_id"], ["centers.id"], name=op.f("fk_drug_orders_center_id_centers")
        ),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name=op.f("fk_drug_orders_product_id_products")
        ),
        sa.ForeignKeyConstraint(
            ["received_lot_id"],
            ["drug_lots.id"],
            name=op.f("fk_drug_orders_received_lot_id_drug_lots"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drug_orders")),
        sa.UniqueConstraint("received_lot_id", name=op.f("uq_drug_orders_received_lot_id")),
    )
    with op.batch_alter_table("drug_orders", schema=None) as batch_op:
        batch_op.create_index(
            "ix_drug_orders_due", ["center_id", "status", "expected_on"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("drug_orders", schema=None) as batch_op:
        batch_op.drop_index("ix_drug_orders_due")
    op.drop_table("drug_orders")
