"""The chair-side guards: a chair's turnover after each appointment, refused by the database;
when check-in opens and how long one session may be (center settings); course sessions moved
outside their window (flagged and pinned); and why a change was made (a visit recorded after
the fact, an override).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations import guards

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMNs (no batch): SQLite keeps the table, its triggers and partial indexes.
    op.add_column(
        "centers",
        sa.Column("checkin_opens_minutes", sa.Integer(), server_default="120", nullable=False),
    )
    op.add_column(
        "centers",
        sa.Column("max_session_minutes", sa.Integer(), server_default="480", nullable=False),
    )
    op.add_column(
        "appointments",
        sa.Column("turnover_minutes", sa.Integer(), server_default="0", nullable=False),
    )
    op.add_column(
        "appointments",
        sa.Column("outside_window", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.add_column(
        "appointments",
        sa.Column("pinned", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.add_column("appointment_changes", sa.Column("reason", sa.String(500), nullable=True))
    if guards.is_sqlite():
        guards.drop_sqlite_triggers()
        guards.create_sqlite_triggers(turnover=True)
    else:
        guards.drop_postgres_exclusions()
        guards.create_postgres_exclusions(turnover=True)


def downgrade() -> None:
    if guards.is_sqlite():
        guards.drop_sqlite_triggers()
        # A batch rebuild would not carry the partial index over as it is: rebuild it ourselves.
        op.drop_index("uq_appointments_course_session", table_name="appointments")
    else:
        guards.drop_postgres_exclusions()
    with op.batch_alter_table("appointments") as batch_op:
        for column in ("pinned", "outside_window", "turnover_minutes"):
            batch_op.drop_column(column)
    with op.batch_alter_table("appointment_changes") as batch_op:
        batch_op.drop_column("reason")
    with op.batch_alter_table("centers") as batch_op:
        batch_op.drop_column("max_session_minutes")
        batch_op.drop_column("checkin_opens_minutes")
    if guards.is_sqlite():
        op.create_index(
            "uq_appointments_course_session",
            "appointments",
            ["course_id", "phase", "sequence"],
            unique=True,
            sqlite_where=sa.text("status IN ('booked', 'checked_in', 'in_progress')"),
        )
        guards.create_sqlite_triggers()
    else:
        guards.create_postgres_exclusions()
        op.execute("DROP FUNCTION IF EXISTS chair_released(timestamptz, integer)")
