"""A visit lasts at most 24 hours, held by the database (issue 19). The API has always refused
longer ones (`appointments.rules.span_problem`); held here, it lets every read of a day's
visits bound its index scan from below (`start_at > day start - 24 h`) instead of reading
every visit the center ever had that started before the day ended, which grew with the
center's history.

PostgreSQL: a CHECK constraint. SQLite: triggers (adding a CHECK would rebuild the table),
on whole seconds as the overlap triggers are; a later migration that rebuilds the table must
create them again (`create_sqlite_triggers` here).

Revision ID: 0036
Revises: 0035
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0036"
down_revision: str | None = "0035"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LONGER_THAN_A_DAY = (
    "CAST(strftime('%s', NEW.end_at) AS INTEGER)"
    " - CAST(strftime('%s', NEW.start_at) AS INTEGER) > 86400"
)


def create_sqlite_triggers() -> None:
    for event in ("INSERT", "UPDATE OF start_at, end_at"):
        op.execute(
            f"CREATE TRIGGER appointments_at_most_a_day_{event.split()[0].lower()} "
            f"BEFORE {event} ON appointments FOR EACH ROW WHEN {_LONGER_THAN_A_DAY} "
            "BEGIN SELECT RAISE(ABORT, 'ck_appointments_at_most_a_day'); END"
        )


def upgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(
            "ALTER TABLE appointments ADD CONSTRAINT ck_appointments_at_most_a_day "
            "CHECK (end_at <= start_at + interval '24 hours')"
        )
    else:
        create_sqlite_triggers()


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("ALTER TABLE appointments DROP CONSTRAINT ck_appointments_at_most_a_day")
    else:
        for event in ("insert", "update"):
            op.execute(f"DROP TRIGGER appointments_at_most_a_day_{event}")
