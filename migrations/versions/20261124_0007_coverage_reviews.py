"""When each patient's insurance cover must next be looked at again: the sweep recomputes only
the patients whose date has come.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from core.db import Instant

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "coverage_reviews",
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("review_on", sa.Date(), nullable=True),
        sa.Column("reviewed_at", Instant(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_coverage_reviews_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("patient_id", name=op.f("pk_coverage_reviews")),
    )
    with op.batch_alter_table("coverage_reviews", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_coverage_reviews_review_on"), ["review_on"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("coverage_reviews", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_coverage_reviews_review_on"))

    op.drop_table("coverage_reviews")
