"""The pharmacy's preparation queue: how far each visit's dose has come (`preparations`: when
it was cleared, prepared, dispensed and administered, and by whom), and when a center's
pharmacy mixes a dose (`centers.prepare_policy`: ahead of the start, or on the nurse's
clearance).

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from core.db import Instant

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STEPS = ("cleared", "prepared", "dispensed", "administered")


def upgrade() -> None:
    with op.batch_alter_table("centers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "prepare_policy", sa.String(length=12), server_default="ahead", nullable=False
            )
        )
        batch_op.create_check_constraint(
            "prepare_policy", "prepare_policy IN ('ahead', 'on_clearance')"
        )
    columns: list[sa.Column[object]] = []
    for step in STEPS:
        columns.append(sa.Column(f"{step}_at", Instant(timezone=True), nullable=True))
        columns.append(sa.Column(f"{step}_by", sa.Uuid(), nullable=True))
    op.create_table(
        "preparations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("appointment_id", sa.Uuid(), nullable=False),
        *columns,
        sa.CheckConstraint(
            "dispensed_at IS NULL OR (prepared_at IS NOT NULL AND cleared_at IS NOT NULL)",
            name=op.f("ck_preparations_dispensed_after_prepared"),
        ),
        sa.CheckConstraint(
            "administered_at IS NULL OR dispensed_at IS NOT NULL",
            name=op.f("ck_preparations_administered_after"),
        ),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointments.id"],
            name=op.f("fk_preparations_appointment_id_appointments"),
        ),
        *(
            sa.ForeignKeyConstraint(
                [f"{step}_by"], ["users.id"], name=op.f(f"fk_preparations_{step}_by_users")
            )
            for step in STEPS
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_preparations")),
        sa.UniqueConstraint("appointment_id", name=op.f("uq_preparations_appointment_id")),
    )


def downgrade() -> None:
    op.drop_table("preparations")
    with op.batch_alter_table("centers", schema=None) as batch_op:
        batch_op.drop_constraint("prepare_policy", type_="check")
        batch_op.drop_column("prepare_policy")
