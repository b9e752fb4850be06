"""The waitlist (issue 16): patients waiting for an opening at a center (`waitlist_entries`),
any day in a window, for a duration in a kind of chair, with a priority; at most one waiting
entry per course.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from core.db import Instant

revision: str = "0028"
down_revision: str | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WAITING = sa.text("status = 'waiting'")


def upgrade() -> None:
    op.create_table(
        "waitlist_entries",
        sa.Column("center_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("course_id", sa.Uuid(), nullable=True),
        sa.Column("earliest", sa.Date(), nullable=False),
        sa.Column("latest", sa.Date(), nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=False),
        sa.Column("chair_kind", sa.String(length=20), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("created_at", Instant(timezone=True), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.CheckConstraint("earliest <= latest", name=op.f("ck_waitlist_entries_window")),
        sa.CheckConstraint(
            "duration_minutes BETWEEN 15 AND 720", name=op.f("ck_waitlist_entries_duration")
        ),
        sa.CheckConstraint("priority BETWEEN 1 AND 5", name=op.f("ck_waitlist_entries_priority")),
        sa.CheckConstraint(
            "status IN ('waiting', 'booked', 'removed')", name=op.f("ck_waitlist_entries_status")
        ),
        sa.CheckConstraint(
            "chair_kind IN ('chair', 'bed', 'isolation')",
            name=op.f("ck_waitlist_entries_chair_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["center_id"], ["centers.id"], name=op.f("fk_waitlist_entries_center_id_centers")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_waitlist_entries_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["course_id"], ["courses.id"], name=op.f("fk_waitlist_entries_course_id_courses")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_waitlist_entries_created_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_waitlist_entries")),
    )
    with op.batch_alter_table("waitlist_entries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_waitlist_entries_open", ["center_id", "status", "latest"], unique=False
        )
        batch_op.create_index("ix_waitlist_entries_patient_id", ["patient_id"], unique=False)
        # A course has one waiting entry at most, however many requests race.
        batch_op.create_index(
            "uq_waitlist_entries_course_waiting",
            ["course_id"],
            unique=True,
            postgresql_where=WAITING,
            sqlite_where=WAITING,
        )


def downgrade() -> None:
    with op.batch_alter_table("waitlist_entries", schema=None) as batch_op:
        batch_op.drop_index("uq_waitlist_entries_course_waiting")
        batch_op.drop_index("ix_waitlist_entries_patient_id")
        batch_op.drop_index("ix_waitlist_entries_open")
    op.drop_table("waitlist_entries")
