"""The scheduler lease's generation (`scheduler_leases.generation`): a fencing token. Each
takeover increases it; a leader that finds another number than the one it took has lost the
lease, and starts nothing more.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("scheduler_leases", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("generation", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("scheduler_leases", schema=None) as batch_op:
        batch_op.drop_column("generation")
