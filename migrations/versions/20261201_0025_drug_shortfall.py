"""Drug shortages: a `drug_shortfall` alert kind (a booked dose the stock will not cover on its
day, on the pharmacy's queue), and each center's priority order of indications for the
shortage plan (`centers.shortage_priority`, ICD-10 prefixes, highest first).

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-01
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS_BEFORE = (
    "auth_expiring",
    "auth_units_low",
    "session_uncovered",
    "auth_denied_with_bookings",
    "coverage_ended",
    "course_unbookable",
)
KINDS_AFTER = (*KINDS_BEFORE, "drug_shortfall")
DEFAULT_PRIORITY = ["G61.0", "G61.82", "G61.81"]  # acute GBS, MMN, CIDP


def _kinds(kinds: tuple[str, ...]) -> str:
    return f"kind IN ({', '.join(repr(k) for k in kinds)})"


def upgrade() -> None:
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_constraint("kind", type_="check")
        batch_op.create_check_constraint("kind", _kinds(KINDS_AFTER))
    with op.batch_alter_table("centers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "shortage_priority",
                sa.JSON(),
                server_default=sa.text(f"'{json.dumps(DEFAULT_PRIORITY)}'"),
                nullable=False,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("centers", schema=None) as batch_op:
        batch_op.drop_column("shortage_priority")
    op.execute("DELETE FROM alerts WHERE kind = 'drug_shortfall'")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_constraint("kind", type_="check")
        batch_op.create_check_constraint("kind", _kinds(KINDS_BEFORE))
