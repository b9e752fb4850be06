"""Background jobs: job runs, the scheduler lease (SQLite leader election), and each center's
booking horizon and nightly booking time.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from core.db import Instant

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job_runs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("job", sa.String(length=40), nullable=False),
        sa.Column("scope", sa.String(length=40), nullable=True),
        sa.Column("trigger", sa.String(length=20), nullable=False),
        sa.Column("started_at", Instant(timezone=True), nullable=False),
        sa.Column("heartbeat_at", Instant(timezone=True), nullable=False),
        sa.Column("finished_at", Instant(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=20), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("error", sa.String(length=300), nullable=True),
        sa.Column("runner", sa.String(length=80), nullable=False),
        sa.CheckConstraint(
            "outcome IN ('running', 'succeeded', 'failed')", name=op.f("ck_job_runs_outcome")
        ),
        sa.CheckConstraint(
            "trigger IN ('schedule', 'manual', 'command')", name=op.f("ck_job_runs_trigger")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_runs")),
    )
    with op.batch_alter_table("job_runs", schema=None) as batch_op:
        batch_op.create_index("ix_job_runs_job_started", ["job", "started_at"], unique=False)
        batch_op.create_index(
            "uq_job_runs_running",
            ["job", sa.text("coalesce(scope, '')")],
            unique=True,
            sqlite_where=sa.text("outcome = 'running'"),
            postgresql_where=sa.text("outcome = 'running'"),
        )

    op.create_table(
        "scheduler_leases",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("holder", sa.String(length=80), nullable=False),
        sa.Column("expires_at", Instant(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_scheduler_leases")),
    )
    with op.batch_alter_table("centers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("booking_horizon_days", sa.Integer(), server_default="56", nullable=False)
        )
        batch_op.add_column(
            sa.Column(
                "auto_book_at", sa.Time(), server_default=sa.text("'02:00:00'"), nullable=False
            )
        )
        batch_op.create_check_constraint(
            "booking_horizon", "booking_horizon_days BETWEEN 1 AND 366"
        )


def downgrade() -> None:
    with op.batch_alter_table("centers", schema=None) as batch_op:
        batch_op.drop_constraint("booking_horizon", type_="check")
        batch_op.drop_column("auto_book_at")
        batch_op.drop_column("booking_horizon_days")

    op.drop_table("scheduler_leases")
    with op.batch_alter_table("job_runs", schema=None) as batch_op:
        batch_op.drop_index("uq_job_runs_running")
        batch_op.drop_index("ix_job_runs_job_started")

    op.drop_table("job_runs")
