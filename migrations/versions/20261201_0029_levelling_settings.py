"""A center's settings for level-loading and the waitlist (issue 16): how many days ahead the
optimiser leaves alone (`no_move_days`), whether the nightly run lets it place new sessions
(`optimise_nightly`), and how long a waitlist offer holds an opening (`offer_hold_minutes`,
`offer_hold_same_day_minutes` for an opening the same day).

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0029"
down_revision: str | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("centers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("no_move_days", sa.Integer(), server_default="2", nullable=False)
        )
        batch_op.add_column(
            sa.Column("optimise_nightly", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(
            sa.Column("offer_hold_minutes", sa.Integer(), server_default="720", nullable=False)
        )
        batch_op.add_column(
            sa.Column(
                "offer_hold_same_day_minutes", sa.Integer(), server_default="30", nullable=False
            )
        )
        batch_op.create_check_constraint("no_move_days", "no_move_days BETWEEN 0 AND 60")
        batch_op.create_check_constraint("offer_hold", "offer_hold_minutes BETWEEN 5 AND 10080")
        batch_op.create_check_constraint(
            "offer_hold_same_day", "offer_hold_same_day_minutes BETWEEN 5 AND 1440"
        )


def downgrade() -> None:
    with op.batch_alter_table("centers", schema=None) as batch_op:
        batch_op.drop_constraint("offer_hold_same_day", type_="check")
        batch_op.drop_constraint("offer_hold", type_="check")
        batch_op.drop_constraint("no_move_days", type_="check")
        batch_op.drop_column("offer_hold_same_day_minutes")
        batch_op.drop_column("offer_hold_minutes")
        batch_op.drop_column("optimise_nightly")
        batch_op.drop_column("no_move_days")
