"""The database-level overlap guards for appointments, shared by the migrations that need them.

PostgreSQL: exclusion constraints over (chair, time range) and (patient, time range) for the
active statuses. SQLite has no exclusion constraints, so triggers refuse the same rows. SQLite
loses a table's triggers whenever a batch migration rebuilds the table, so such a migration
drops and re-creates them with these functions.
"""

from __future__ import annotations

from alembic import op

ACTIVE = "('booked', 'checked_in', 'in_progress')"
GUARDS = {"chair": "chair_id", "patient": "patient_id"}


def _sqlite_trigger(name: str, column: str, event: str) -> str:
    # `a.id != NEW.id` lets an UPDATE keep its own row without tripping over itself.
    return f"""
    CREATE TRIGGER appointments_{name}_overlap_{event.split()[0].lower()}
    BEFORE {event} ON appointments
    WHEN NEW.status IN {ACTIVE}
    BEGIN
        SELECT RAISE(ABORT, 'appointments_{name}_overlap')
        WHERE EXISTS (
            SELECT 1 FROM appointments AS a
            WHERE a.{column} = NEW.{column}
              AND a.id != NEW.id
              AND a.status IN {ACTIVE}
              AND a.start_at < NEW.end_at
              AND a.end_at > NEW.start_at
        );
    END
    """  # noqa: S608 - names and statuses are this module's constants, never input


def is_sqlite() -> bool:
    return bool(op.get_context().dialect.name == "sqlite")


def create_sqlite_triggers() -> None:
    for name, column in GUARDS.items():
        op.execute(_sqlite_trigger(name, column, "INSERT"))
        op.execute(
            _sqlite_trigger(
                name, column, "UPDATE OF chair_id, patient_id, start_at, end_at, status"
            )
        )


def drop_sqlite_triggers() -> None:
    for name in GUARDS:
        op.execute(f"DROP TRIGGER IF EXISTS appointments_{name}_overlap_insert")
        op.execute(f"DROP TRIGGER IF EXISTS appointments_{name}_overlap_update")


def create_postgres_exclusions() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    for name, column in GUARDS.items():
        op.execute(
            f"ALTER TABLE appointments ADD CONSTRAINT ex_appointments_{name}_overlap "
            f"EXCLUDE USING gist ({column} WITH =, tstzrange(start_at, end_at, '[)') WITH &&) "
            f"WHERE (status IN {ACTIVE})"
        )


def drop_postgres_exclusions() -> None:
    for name in GUARDS:
        op.execute(f"ALTER TABLE appointments DROP CONSTRAINT ex_appointments_{name}_overlap")
