"""Course splits: the days an induction was booked over, more than ordered when one session as
ordered would last longer than the center allows. Kept once booked, so a dose half given is
never split again; courses booked before keep none and are read as booked over the days
ordered, as they were.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHECK = "induction_booked_days IS NULL OR induction_booked_days BETWEEN 1 AND 14"


def upgrade() -> None:
    # courses has plain indexes only (no triggers, no partial indexes): SQLite may rebuild it
    # to add the check, and the batch puts the indexes back.
    with op.batch_alter_table("courses", schema=None) as batch_op:
        batch_op.add_column(sa.Column("induction_booked_days", sa.Integer(), nullable=True))
        batch_op.create_check_constraint(op.f("ck_courses_induction_booked_days"), CHECK)


def downgrade() -> None:
    with op.batch_alter_table("courses", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_courses_induction_booked_days"), type_="check")
        batch_op.drop_column("induction_booked_days")
