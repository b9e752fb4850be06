"""Center openings (issue 19): a per-center version that every write which could free room
bumps (an appointment moved, cancelled, missed or given; a chair block changed or lifted; a
closure changed or lifted; chairs, opening hours or staffing changed), and the key a course
stuck in the nightly booking run keeps of what it was planned with. A re-run skips a stuck
course while its key still holds: nothing it could use has changed.

New bookings do not bump it: a booking only takes room, so it cannot unstick a course. On
PostgreSQL the bump is a deferred constraint trigger: it runs at commit, the last lock the
transaction takes, so it never waits while holding a day's lock (no deadlock with bookers),
and it never serialises bookings, which do not fire it.

Revision ID: 0035
Revises: 0034
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0035"
down_revision: str | None = "0034"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ACTIVE = "('booked', 'checked_in', 'in_progress')"


def _appointment_moved(distinct: str) -> str:
    """Whether an appointment's update could free room: its place or time changed, or it
    left the active statuses."""
    changed = " OR ".join(
        f"OLD.{c} {distinct} NEW.{c}"
        for c in ("center_id", "chair_id", "start_at", "end_at", "turnover_minutes")
    )
    return f"{changed} OR (OLD.status {distinct} NEW.status AND NEW.status NOT IN {_ACTIVE})"


# table, events, the center of OLD (and of NEW where it could differ), when (None: always)
_CENTER_OF_BLOCK = "(SELECT center_id FROM chairs WHERE chairs.id = {row}.chair_id)"
_SOURCES = (
    ("appointments", "update", "moved"),
    ("appointments", "delete", None),
    ("chair_blocks", "update", None),
    ("chair_blocks", "delete", None),
    ("closures", "update", None),
    ("closures", "delete", None),
    ("chairs", "insert", None),
    ("chairs", "update", None),
    ("chairs", "delete", None),
    ("opening_hours", "insert", None),
    ("opening_hours", "update", None),
    ("opening_hours", "delete", None),
    ("staffing_blocks", "insert", None),
    ("staffing_blocks", "update", None),
    ("staffing_blocks", "delete", None),
)


def _center(table: str, row: str) -> str:
    return _CENTER_OF_BLOCK.format(row=row) if table == "chair_blocks" else f"{row}.center_id"


def _bump(center: str) -> str:
    # `center` is one of this module's own expressions (OLD/NEW columns), never input.
    return (
        f"INSERT INTO center_openings (center_id, version) VALUES ({center}, 1) "  # noqa: S608
        "ON CONFLICT (center_id) DO UPDATE SET version = center_openings.version + 1"
    )


def upgrade() -> None:
    op.create_table(
        "center_openings",
        # No foreign key: a center deleted with its hours (ON DELETE CASCADE) bumps it too.
        sa.Column("center_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("center_id", name=op.f("pk_center_openings")),
    )
    with op.batch_alter_table("courses", schema=None) as batch_op:
        batch_op.add_column(sa.Column("unbookable_key", sa.String(length=200), nullable=True))
    if op.get_context().dialect.name == "postgresql":
        _postgresql_triggers()
    else:
        _sqlite_triggers()


def _postgresql_triggers() -> None:
    for table in dict.fromkeys(t for t, _, _ in _SOURCES):
        center_old, center_new = _center(table, "OLD"), _center(table, "NEW")
        op.execute(
            f"CREATE FUNCTION center_openings_{table}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
            "BEGIN\n"
            f"  IF TG_OP <> 'INSERT' THEN {_bump(center_old)}; END IF;\n"
            f"  IF TG_OP <> 'DELETE' AND (TG_OP = 'INSERT' OR {center_new} IS DISTINCT FROM "
            f"{center_old}) THEN {_bump(center_new)}; END IF;\n"
            "  RETURN NULL;\n"
            "END $$"
        )
    for table, what, when in _SOURCES:
        condition = f" WHEN ({_appointment_moved('IS DISTINCT FROM')})" if when else ""
        op.execute(
            f"CREATE CONSTRAINT TRIGGER center_openings_{what} AFTER {what.upper()} ON {table} "
            f"DEFERRABLE INITIALLY DEFERRED FOR EACH ROW{condition} "
            f"EXECUTE FUNCTION center_openings_{table}()"
        )


def _sqlite_triggers() -> None:
    for table, what, when in _SOURCES:
        condition = f" WHEN {_appointment_moved('IS NOT')}" if when else ""
        rows = ["NEW"] if what == "insert" else ["OLD"] if what == "delete" else ["OLD", "NEW"]
        body = " ".join(f"{_bump(_center(table, row))};" for row in rows)
        op.execute(
            f"CREATE TRIGGER center_openings_{table}_{what} AFTER {what.upper()} ON {table} "
            f"FOR EACH ROW{condition} BEGIN {body} END"
        )


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        for table, what, _ in _SOURCES:
            op.execute(f"DROP TRIGGER center_openings_{what} ON {table}")
        for table in dict.fromkeys(t for t, _, _ in _SOURCES):
            op.execute(f"DROP FUNCTION center_openings_{table}()")
    else:
        for table, what, _ in _SOURCES:
            op.execute(f"DROP TRIGGER center_openings_{table}_{what}")
    with op.batch_alter_table("courses", schema=None) as batch_op:
        batch_op.drop_column("unbookable_key")
    op.drop_table("center_openings")
