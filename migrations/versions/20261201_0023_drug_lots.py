"""Drug logistics: products' storage and lead times, stock by lot per center (`drug_lots`),
the vials each visit drew from a lot (`lot_uses`: a recall finds every patient), and the
pharmacy role.

The seeded products get label figures as data a center edits: refrigerated shelf life and
the months a vial may spend at room temperature (up to 25 °C) within it; Privigen is kept at
room temperature throughout. The supplier's lead time is the center's own, left empty.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from core.db import Instant

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# HCPCS: refrigerated shelf life (months), room-temperature allowance (months), preparation
# (minutes from the mix request to the start)
STORAGE = {
    "J1561": (36, 6, 30),  # Gamunex-C: up to 6 months at room temperature within its shelf life
    "J1459": (36, 36, 30),  # Privigen: kept at room temperature for its whole shelf life
    "J1569": (36, 24, 30),  # Gammagard Liquid: up to 24 months at room temperature
    "J1568": (36, 9, 30),  # Octagam 10 %: up to 9 months at room temperature
    "J1576": (36, 12, 30),  # Panzyga: up to 12 months at room temperature
    "J1745": (36, 6, 45),  # Infliximab: once, up to 6 months; reconstituted and diluted
}
ROLES_BEFORE = "role IN ('admin', 'nurse', 'billing', 'patient')"
ROLES_AFTER = "role IN ('admin', 'nurse', 'billing', 'pharmacy', 'patient')"
PRODUCT_STORAGE = (
    "(refrigerated_shelf_months IS NULL OR refrigerated_shelf_months > 0) "
    "AND (room_temperature_months IS NULL OR room_temperature_months > 0) "
    "AND preparation_minutes >= 0 "
    "AND (order_lead_days IS NULL OR order_lead_days >= 0)"
)


def upgrade() -> None:
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.add_column(sa.Column("refrigerated_shelf_months", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("room_temperature_months", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("preparation_minutes", sa.Integer(), server_default="30", nullable=False)
        )
        batch_op.add_column(sa.Column("order_lead_days", sa.Integer(), nullable=True))
        batch_op.create_check_constraint("storage", PRODUCT_STORAGE)
    products = sa.table(
        "products",
        sa.column("hcpcs_code", sa.String()),
        sa.column("refrigerated_shelf_months", sa.Integer()),
        sa.column("room_temperature_months", sa.Integer()),
        sa.column("preparation_minutes", sa.Integer()),
    )
    for code, (fridge, room, prepare) in STORAGE.items():
        op.execute(
            products.update()
            .where(products.c.hcpcs_code == code)
            .values(
                refrigerated_shelf_months=fridge,
                room_temperature_months=room,
                preparation_minutes=prepare,
            )
        )

    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint("role", type_="check")
        batch_op.create_check_constraint("role", ROLES_AFTER)

    op.create_table(
        "drug_lots",
        sa.Column("center_id", sa.Uuid(), nullable=False),
        sa.Column("product_id", sa.Uuid(), nullable=False),
        sa.Column("lot_number", sa.String(length=40), nullable=False),
        sa.Column("vial_size_g", sa.Numeric(precision=7, scale=2), nullable=False),
        sa.Column("vials_received", sa.Integer(), nullable=False),
        sa.Column("vials_on_hand", sa.Integer(), nullable=False),
        sa.Column("expires_on", sa.Date(), nullable=False),
        sa.Column("storage", sa.String(length=20), nullable=False),
        sa.Column("room_temperature_since", Instant(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("location", sa.String(length=200), nullable=True),
        sa.Column("received_at", Instant(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", Instant(timezone=True), nullable=False),
        sa.Column("updated_at", Instant(timezone=True), nullable=False),
        sa.CheckConstraint(
            "vials_received > 0 AND vials_on_hand BETWEEN 0 AND vials_received",
            name=op.f("ck_drug_lots_vials"),
        ),
        sa.CheckConstraint("vial_size_g > 0", name=op.f("ck_drug_lots_vial_size")),
        sa.CheckConstraint(
            "storage IN ('refrigerated', 'room_temperature')", name=op.f("ck_drug_lots_storage")
        ),
        sa.CheckConstraint(
            "(storage = 'room_temperature') = (room_temperature_since IS NOT NULL)",
            name=op.f("ck_drug_lots_room_temperature_since"),
        ),
        sa.CheckConstraint(
            "status IN ('available', 'quarantined', 'recalled')", name=op.f("ck_drug_lots_status")
        ),
        sa.ForeignKeyConstraint(
            ["center_id"], ["centers.id"], name=op.f("fk_drug_lots_center_id_centers")
        ),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name=op.f("fk_drug_lots_product_id_products")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drug_lots")),
        sa.UniqueConstraint(
            "center_id",
            "product_id",
            "lot_number",
            "vial_size_g",
            name=op.f("uq_drug_lots_center_id_product_id_lot_number_vial_size_g"),
        ),
    )
    with op.batch_alter_table("drug_lots", schema=None) as batch_op:
        batch_op.create_index(
            "ix_drug_lots_stock", ["center_id", "product_id", "expires_on"], unique=False
        )

    op.create_table(
        "lot_uses",
        sa.Column("lot_id", sa.Uuid(), nullable=False),
        sa.Column("appointment_id", sa.Uuid(), nullable=False),
        sa.Column("vials", sa.Integer(), nullable=False),
        sa.Column("recorded_at", Instant(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.CheckConstraint("vials > 0", name=op.f("ck_lot_uses_vials")),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointments.id"],
            name=op.f("fk_lot_uses_appointment_id_appointments"),
        ),
        sa.ForeignKeyConstraint(
            ["lot_id"], ["drug_lots.id"], name=op.f("fk_lot_uses_lot_id_drug_lots")
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by"], ["users.id"], name=op.f("fk_lot_uses_recorded_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lot_uses")),
        sa.UniqueConstraint(
            "lot_id", "appointment_id", name=op.f("uq_lot_uses_lot_id_appointment_id")
        ),
    )
    with op.batch_alter_table("lot_uses", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_lot_uses_appointment_id"), ["appointment_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_lot_uses_lot_id"), ["lot_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("lot_uses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lot_uses_lot_id"))
        batch_op.drop_index(batch_op.f("ix_lot_uses_appointment_id"))
    op.drop_table("lot_uses")
    with op.batch_alter_table("drug_lots", schema=None) as batch_op:
        batch_op.drop_index("ix_drug_lots_stock")
    op.drop_table("drug_lots")
    # A pharmacy user has no role to go back to: an admin removes or changes them first.
    pharmacists = op.get_bind().scalar(
        sa.text("SELECT count(*) FROM users WHERE role = 'pharmacy'")
    )
    if pharmacists:
        raise RuntimeError(
            f"{pharmacists} pharmacy user(s) exist: give them another role before downgrading"
        )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_constraint("role", type_="check")
        batch_op.create_check_constraint("role", ROLES_BEFORE)
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.drop_constraint("storage", type_="check")
        batch_op.drop_column("order_lead_days")
        batch_op.drop_column("preparation_minutes")
        batch_op.drop_column("room_temperature_months")
        batch_op.drop_column("refrigerated_shelf_months")
