"""Refusals of those not signed in, counted per client address and minute (`refusal_tallies`)
instead of one audit event each. Like the audit trail, the database keeps them: a count may
only grow, and no row may be removed.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from core.db import Instant

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REFUSAL = "refusal tallies only count up; they are never moved or removed"
# What an update may not do: anything but count up (and say when the last one came).
MOVED = (
    "NEW.count < OLD.count OR NEW.events < OLD.events OR NEW.id IS DISTINCT FROM OLD.id "
    "OR NEW.client IS DISTINCT FROM OLD.client OR NEW.minute IS DISTINCT FROM OLD.minute "
    "OR NEW.first_request_id IS DISTINCT FROM OLD.first_request_id"
)


def upgrade() -> None:
    op.create_table(
        "refusal_tallies",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("client", sa.String(length=64), nullable=False),
        sa.Column("minute", Instant(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("first_request_id", sa.String(length=40), nullable=False),
        sa.Column("last_at", Instant(timezone=True), nullable=False),
        sa.CheckConstraint("count >= 1", name=op.f("ck_refusal_tallies_count")),
        sa.CheckConstraint(
            "events >= 0 AND events <= count", name=op.f("ck_refusal_tallies_events")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refusal_tallies")),
        sa.UniqueConstraint("client", "minute", name=op.f("uq_refusal_tallies_client_minute")),
    )
    with op.batch_alter_table("refusal_tallies", schema=None) as batch_op:
        batch_op.create_index("ix_refusal_tallies_minute", ["minute"], unique=False)

    if op.get_context().dialect.name == "postgresql":
        op.execute(
            f"""
            CREATE FUNCTION refusal_tallies_count_up() RETURNS trigger
            LANGUAGE plpgsql AS $$
            BEGIN
                IF TG_OP <> 'UPDATE' THEN
                    RAISE EXCEPTION '{REFUSAL}' USING ERRCODE = 'insufficient_privilege';
                END IF;
                IF {MOVED} THEN
                    RAISE EXCEPTION '{REFUSAL}' USING ERRCODE = 'insufficient_privilege';
                END IF;
                RETURN NEW;
            END
            $$
            """
        )
        op.execute(
            "CREATE TRIGGER refusal_tallies_count_up BEFORE UPDATE OR DELETE ON refusal_tallies "
            "FOR EACH ROW EXECUTE FUNCTION refusal_tallies_count_up()"
        )
        op.execute(
            "CREATE TRIGGER refusal_tallies_no_truncate BEFORE TRUNCATE ON refusal_tallies "
            "FOR EACH STATEMENT EXECUTE FUNCTION refusal_tallies_count_up()"
        )
    else:
        op.execute(
            "CREATE TRIGGER refusal_tallies_no_delete BEFORE DELETE ON refusal_tallies "
            f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"
        )
        op.execute(
            "CREATE TRIGGER refusal_tallies_count_up BEFORE UPDATE ON refusal_tallies "
            f"WHEN {MOVED.replace('IS DISTINCT FROM', 'IS NOT')} "
            f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"
        )


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP TRIGGER refusal_tallies_no_truncate ON refusal_tallies")
        op.execute("DROP TRIGGER refusal_tallies_count_up ON refusal_tallies")
        op.execute("DROP FUNCTION refusal_tallies_count_up()")
    op.drop_table("refusal_tallies")
