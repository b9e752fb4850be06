"""What each re-plan of a course changed, kept whole: `course_replans`.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-01

A course's plan says what its last re-plan changed (which sessions moved, were resized or
added, from where to where, and what set it off). Re-plans before this revision were not
kept; their courses show none until the next one.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "course_replans",
        sa.Column("course_id", sa.Uuid(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("cause", sa.String(length=300), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["course_id"], ["courses.id"], name=op.f("fk_course_replans_course_id_courses")
        ),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_course_replans_actor_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_course_replans")),
    )
    op.create_index("ix_course_replans_course_at", "course_replans", ["course_id", "at"])


def downgrade() -> None:
    op.drop_index("ix_course_replans_course_at", table_name="course_replans")
    op.drop_table("course_replans")
