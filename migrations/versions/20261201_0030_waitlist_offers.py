"""Waitlist offers (issue 16): the openings a freed chair leaves (`waitlist_openings`), the
offers of each to one waiting entry at a time, held until an answer or the hold's end
(`waitlist_offers`; one open offer per opening and per entry, one accepted per opening), the
course session an entry wants brought forward (`waitlist_entries.appointment_id`), and entries
the booking run puts on by itself (`created_by` may be empty).

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from alembic.operations import BatchOperations

from core.db import Instant

revision: str = "0030"
down_revision: str | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WAITING = sa.text("status = 'waiting'")
OPEN = sa.text("status = 'open'")
ACCEPTED = sa.text("status = 'accepted'")


def _entries_course_index(batch_op: BatchOperations) -> None:
    """The one-waiting-entry-per-course index, made anew: SQLite's table copy is built from
    what reflection finds, and a partial index is kept only when made explicitly."""
    batch_op.create_index(
        "uq_waitlist_entries_course_waiting",
        ["course_id"],
        unique=True,
        postgresql_where=WAITING,
        sqlite_where=WAITING,
    )


def upgrade() -> None:
    with op.batch_alter_table("waitlist_entries", schema=None) as batch_op:
        batch_op.drop_index("uq_waitlist_entries_course_waiting")
        batch_op.add_column(sa.Column("appointment_id", sa.Uuid(), nullable=True))
        batch_op.alter_column("created_by", existing_type=sa.Uuid(), nullable=True)
        batch_op.create_foreign_key(
            batch_op.f("fk_waitlist_entries_appointment_id_appointments"),
            "appointments",
            ["appointment_id"],
            ["id"],
        )
        _entries_course_index(batch_op)

    op.create_table(
        "waitlist_openings",
        sa.Column("center_id", sa.Uuid(), nullable=False),
        sa.Column("chair_id", sa.Uuid(), nullable=False),
        sa.Column("start_at", Instant(timezone=True), nullable=False),
        sa.Column("end_at", Instant(timezone=True), nullable=False),
        sa.Column("cause", sa.String(length=20), nullable=False),
        sa.Column("freed_appointment_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("created_at", Instant(timezone=True), nullable=False),
        sa.Column("closed_at", Instant(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.CheckConstraint("start_at < end_at", name=op.f("ck_waitlist_openings_start_before_end")),
        sa.CheckConstraint(
            "status IN ('open', 'filled', 'lapsed')", name=op.f("ck_waitlist_openings_status")
        ),
        sa.CheckConstraint(
            "cause IN ('cancelled', 'no_show', 'moved')", name=op.f("ck_waitlist_openings_cause")
        ),
        sa.ForeignKeyConstraint(
            ["center_id"], ["centers.id"], name=op.f("fk_waitlist_openings_center_id_centers")
        ),
        sa.ForeignKeyConstraint(
            ["chair_id"], ["chairs.id"], name=op.f("fk_waitlist_openings_chair_id_chairs")
        ),
        sa.ForeignKeyConstraint(
            ["freed_appointment_id"],
            ["appointments.id"],
            name=op.f("fk_waitlist_openings_freed_appointment_id_appointments"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_waitlist_openings")),
    )
    with op.batch_alter_table("waitlist_openings", schema=None) as batch_op:
        batch_op.create_index(
            "ix_waitlist_openings_status_start", ["status", "start_at"], unique=False
        )
        batch_op.create_index(
            "ix_waitlist_openings_center_created", ["center_id", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_waitlist_openings_chair_start", ["chair_id", "start_at"], unique=False
        )

    op.create_table(
        "waitlist_offers",
        sa.Column("opening_id", sa.Uuid(), nullable=False),
        sa.Column("entry_id", sa.Uuid(), nullable=False),
        sa.Column("start_at", Instant(timezone=True), nullable=False),
        sa.Column("end_at", Instant(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("offered_at", Instant(timezone=True), nullable=False),
        sa.Column("hold_until", Instant(timezone=True), nullable=False),
        sa.Column("answered_at", Instant(timezone=True), nullable=True),
        sa.Column("answered_by", sa.Uuid(), nullable=True),
        sa.Column("appointment_id", sa.Uuid(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.CheckConstraint("start_at < end_at", name=op.f("ck_waitlist_offers_start_before_end")),
        sa.CheckConstraint("offered_at <= hold_until", name=op.f("ck_waitlist_offers_hold")),
        sa.CheckConstraint(
            "status IN ('open', 'accepted', 'declined', 'expired', 'withdrawn')",
            name=op.f("ck_waitlist_offers_status"),
        ),
        sa.ForeignKeyConstraint(
            ["opening_id"],
            ["waitlist_openings.id"],
            name=op.f("fk_waitlist_offers_opening_id_waitlist_openings"),
        ),
        sa.ForeignKeyConstraint(
            ["entry_id"],
            ["waitlist_entries.id"],
            name=op.f("fk_waitlist_offers_entry_id_waitlist_entries"),
        ),
        sa.ForeignKeyConstraint(
            ["answered_by"], ["users.id"], name=op.f("fk_waitlist_offers_answered_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointments.id"],
            name=op.f("fk_waitlist_offers_appointment_id_appointments"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_waitlist_offers")),
    )
    with op.batch_alter_table("waitlist_offers", schema=None) as batch_op:
        batch_op.create_index("ix_waitlist_offers_status_hold", ["status", "hold_until"])
        batch_op.create_index("ix_waitlist_offers_entry_id", ["entry_id"])
        # One at a time, and filled once, however many requests race.
        batch_op.create_index(
            "uq_waitlist_offers_opening_open",
            ["opening_id"],
            unique=True,
            postgresql_where=OPEN,
            sqlite_where=OPEN,
        )
        batch_op.create_index(
            "uq_waitlist_offers_entry_open",
            ["entry_id"],
            unique=True,
            postgresql_where=OPEN,
            sqlite_where=OPEN,
        )
        batch_op.create_index(
            "uq_waitlist_offers_opening_accepted",
            ["opening_id"],
            unique=True,
            postgresql_where=ACCEPTED,
            sqlite_where=ACCEPTED,
        )


def downgrade() -> None:
    with op.batch_alter_table("waitlist_offers", schema=None) as batch_op:
        batch_op.drop_index("uq_waitlist_offers_opening_accepted")
        batch_op.drop_index("uq_waitlist_offers_entry_open")
        batch_op.drop_index("uq_waitlist_offers_opening_open")
        batch_op.drop_index("ix_waitlist_offers_entry_id")
        batch_op.drop_index("ix_waitlist_offers_status_hold")
    op.drop_table("waitlist_offers")
    with op.batch_alter_table("waitlist_openings", schema=None) as batch_op:
        batch_op.drop_index("ix_waitlist_openings_chair_start")
        batch_op.drop_index("ix_waitlist_openings_center_created")
        batch_op.drop_index("ix_waitlist_openings_status_start")
    op.drop_table("waitlist_openings")
    # Entries the booking run put on have no author to give back: they go.
    op.execute("DELETE FROM waitlist_entries WHERE created_by IS NULL")
    with op.batch_alter_table("waitlist_entries", schema=None) as batch_op:
        batch_op.drop_index("uq_waitlist_entries_course_waiting")
        batch_op.drop_constraint(
            "fk_waitlist_entries_appointment_id_appointments", type_="foreignkey"
        )
        batch_op.drop_column("appointment_id")
        batch_op.alter_column("created_by", existing_type=sa.Uuid(), nullable=False)
        _entries_course_index(batch_op)
