"""The database-level overlap guards for appointments, shared by the migrations that need them.

PostgreSQL: exclusion constraints over (chair, time range) and (patient, time range) for the
active statuses. From revision 0013 on (`turnover=True`), a chair's range runs on past the
appointment's end for its `turnover_minutes`: nobody else sits there while it is cleaned.
SQLite has no exclusion constraints, so triggers refuse the same rows. SQLite
loses a table's triggers whenever a batch migration rebuilds the table, so such a migration
drops and re-creates them with these functions.
"""

from __future__ import annotations

from alembic import op

ACTIVE = "('booked', 'checked_in', 'in_progress')"
# From revision 0017 on, a visit given holds its chair too: it is cleaned after it.
HOLDS_CHAIR = "('booked', 'checked_in', 'in_progress', 'completed')"
GUARDS = {"chair": "chair_id", "patient": "patient_id"}


def _sqlite_trigger(
    name: str, column: str, event: str, turnover: bool, chair_statuses: str = ACTIVE
) -> str:
    statuses = chair_statuses if name == "chair" else ACTIVE
    # `a.id != NEW.id` lets an UPDATE keep its own row without tripping over itself.
    overlap = "a.start_at < NEW.end_at AND a.end_at > NEW.start_at"
    if turnover and name == "chair":
        # Whole seconds (appointments are on whole minutes): exact, unlike julianday's floats.
        overlap = (
            "CAST(strftime('%s', a.start_at) AS INTEGER)"
            " < CAST(strftime('%s', NEW.end_at) AS INTEGER) + 60 * NEW.turnover_minutes"
            " AND CAST(strftime('%s', a.end_at) AS INTEGER) + 60 * a.turnover_minutes"
            " > CAST(strftime('%s', NEW.start_at) AS INTEGER)"
        )
    return f"""
    CREATE TRIGGER appointments_{name}_overlap_{event.split()[0].lower()}
    BEFORE {event} ON appointments
    WHEN NEW.status IN {statuses}
    BEGIN
        SELECT RAISE(ABORT, 'appointments_{name}_overlap')
        WHERE EXISTS (
            SELECT 1 FROM appointments AS a
            WHERE a.{column} = NEW.{column}
              AND a.id != NEW.id
              AND a.status IN {statuses}
              AND {overlap}
        );
    END
    """  # noqa: S608 - names and statuses are this module's constants, never input


def is_sqlite() -> bool:
    return bool(op.get_context().dialect.name == "sqlite")


def create_sqlite_triggers(turnover: bool = False, chair_statuses: str = ACTIVE) -> None:
    updates = "UPDATE OF chair_id, patient_id, start_at, end_at, status"
    if turnover:
        updates += ", turnover_minutes"
    for name, column in GUARDS.items():
        op.execute(_sqlite_trigger(name, column, "INSERT", turnover, chair_statuses))
        op.execute(_sqlite_trigger(name, column, updates, turnover, chair_statuses))


def drop_sqlite_triggers() -> None:
    for name in GUARDS:
        op.execute(f"DROP TRIGGER IF EXISTS appointments_{name}_overlap_insert")
        op.execute(f"DROP TRIGGER IF EXISTS appointments_{name}_overlap_update")


# timestamptz + interval is only STABLE in general (a day is not always 24 hours), so an
# exclusion constraint may not use it; a whole number of minutes never depends on the time
# zone, which makes this one truly IMMUTABLE.
_CHAIR_RELEASED = """
CREATE OR REPLACE FUNCTION chair_released(end_at timestamptz, minutes integer)
RETURNS timestamptz LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT end_at + make_interval(mins => minutes) $$
"""


def create_postgres_exclusions(turnover: bool = False, chair_statuses: str = ACTIVE) -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    if turnover:
        op.execute(_CHAIR_RELEASED)
    for name, column in GUARDS.items():
        end, statuses = "end_at", ACTIVE
        if name == "chair":
            statuses = chair_statuses
            if turnover:
                end = "chair_released(end_at, turnover_minutes)"
        op.execute(
            f"ALTER TABLE appointments ADD CONSTRAINT ex_appointments_{name}_overlap "
            f"EXCLUDE USING gist ({column} WITH =, tstzrange(start_at, {end}, '[)') WITH &&) "
            f"WHERE (status IN {statuses})"
        )


def drop_postgres_exclusions() -> None:
    for name in GUARDS:
        op.execute(f"ALTER TABLE appointments DROP CONSTRAINT ex_appointments_{name}_overlap")
