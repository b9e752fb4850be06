"""A maintenance dose too long for one session is given over two consecutive days: each of
its appointments says which day of the dose it is (`part`, 1 or 2), and the course-session
uniqueness covers the part.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations import guards

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACTIVE = sa.text("status IN ('booked', 'checked_in', 'in_progress')")


def _unique(columns: list[str]) -> None:
    op.create_index(
        "uq_appointments_course_session",
        "appointments",
        columns,
        unique=True,
        postgresql_where=ACTIVE,
        sqlite_where=ACTIVE,
    )


def upgrade() -> None:
    # A plain ADD COLUMN and index swap: SQLite keeps the table and its overlap triggers.
    op.add_column(
        "appointments", sa.Column("part", sa.Integer(), server_default="1", nullable=False)
    )
    op.drop_index("uq_appointments_course_session", table_name="appointments")
    _unique(["course_id", "phase", "sequence", "part"])


def downgrade() -> None:
    # Only second days still booked would clash under the older uniqueness; a lost or given
    # one just loses its day number.
    split = op.get_bind().execute(
        sa.text(
            "SELECT count(*) FROM appointments WHERE part = 2"
            " AND status IN ('booked', 'checked_in', 'in_progress')"
        )
    )
    if split.scalar():
        # Their second days have nowhere to go in the older schema: refuse rather than lose.
        raise RuntimeError(
            "some maintenance doses are booked over two days; cancel their second days or "
            "rebook them as one session before going back past revision 0016"
        )
    op.drop_index("uq_appointments_course_session", table_name="appointments")
    if guards.is_sqlite():
        # Dropping a column rebuilds the table, which loses its triggers: put them back.
        guards.drop_sqlite_triggers()
        with op.batch_alter_table("appointments") as batch_op:
            batch_op.drop_column("part")
        guards.create_sqlite_triggers(turnover=True)
    else:
        op.drop_column("appointments", "part")
    _unique(["course_id", "phase", "sequence"])
