"""A visit given still holds its chair through the turnover after it: the chair guards
(exclusion constraint, triggers) cover `completed` visits as well as active ones.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-01

Before this revision a chair could be booked over a completed visit's span or its cleaning
time. On PostgreSQL such a pair makes the new constraint fail to build; SQLite is checked
first. Either way the upgrade stops, naming how many pairs clash, instead of leaving rows the
guard would refuse.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations import guards

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SQLITE_CLASHES = f"""
SELECT count(*) FROM appointments AS a JOIN appointments AS b
  ON a.chair_id = b.chair_id AND a.id < b.id
 WHERE a.status IN {guards.HOLDS_CHAIR} AND b.status IN {guards.HOLDS_CHAIR}
   AND CAST(strftime('%s', a.start_at) AS INTEGER)
       < CAST(strftime('%s', b.end_at) AS INTEGER) + 60 * b.turnover_minutes
   AND CAST(strftime('%s', a.end_at) AS INTEGER) + 60 * a.turnover_minutes
       > CAST(strftime('%s', b.start_at) AS INTEGER)
"""  # noqa: S608 - the module's constants, never input


def upgrade() -> None:
    if guards.is_sqlite():
        clashes = op.get_bind().execute(sa.text(_SQLITE_CLASHES)).scalar()
        if clashes:
            raise RuntimeError(
                f"{clashes} pair(s) of visits share a chair over a given visit or its cleaning "
                "time; move one of each before upgrading past revision 0017"
            )
        guards.drop_sqlite_triggers()
        guards.create_sqlite_triggers(turnover=True, chair_statuses=guards.HOLDS_CHAIR)
    else:
        guards.drop_postgres_exclusions()
        guards.create_postgres_exclusions(turnover=True, chair_statuses=guards.HOLDS_CHAIR)


def downgrade() -> None:
    if guards.is_sqlite():
        guards.drop_sqlite_triggers()
        guards.create_sqlite_triggers(turnover=True)
    else:
        guards.drop_postgres_exclusions()
        guards.create_postgres_exclusions(turnover=True)
