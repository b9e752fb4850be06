"""Optimiser proposals (issue 16): what the optimiser proposes for a center's days, with every
move, the figures before and after, the lower bound it proved and a fingerprint of the days it
was made for; applied once, by a person.

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from core.db import Instant

revision: str = "0031"
down_revision: str | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "optimisations",
        sa.Column("center_id", sa.Uuid(), nullable=False),
        sa.Column("first_day", sa.Date(), nullable=False),
        sa.Column("last_day", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("moves", sa.JSON(), nullable=False),
        sa.Column("figures", sa.JSON(), nullable=False),
        sa.Column("fingerprint", sa.JSON(), nullable=False),
        sa.Column("lower_bound_peak", sa.Integer(), nullable=False),
        sa.Column("optimal", sa.Boolean(), nullable=False),
        sa.Column("solve_ms", sa.Integer(), nullable=False),
        sa.Column("time_limit_seconds", sa.Integer(), nullable=False),
        sa.Column("created_at", Instant(timezone=True), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("applied_at", Instant(timezone=True), nullable=True),
        sa.Column("applied_by", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.CheckConstraint("first_day <= last_day", name=op.f("ck_optimisations_days")),
        sa.CheckConstraint(
            "status IN ('proposed', 'applied')", name=op.f("ck_optimisations_status")
        ),
        sa.ForeignKeyConstraint(
            ["center_id"], ["centers.id"], name=op.f("fk_optimisations_center_id_centers")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_optimisations_created_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["applied_by"], ["users.id"], name=op.f("fk_optimisations_applied_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_optimisations")),
    )
    with op.batch_alter_table("optimisations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_optimisations_center_created", ["center_id", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("optimisations", schema=None) as batch_op:
        batch_op.drop_index("ix_optimisations_center_created")
    op.drop_table("optimisations")
