"""Appointment overlap guards: the database refuses double-booked chairs and patients.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

from collections.abc import Sequence

from migrations import guards

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if guards.is_sqlite():
        guards.create_sqlite_triggers()
    else:
        guards.create_postgres_exclusions()


def downgrade() -> None:
    if guards.is_sqlite():
        guards.drop_sqlite_triggers()
    else:
        guards.drop_postgres_exclusions()
