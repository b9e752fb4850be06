"""Session records in detail: each reaction as {kind, grade, action} (rows of their own), the
tolerated rate as given in mL/h with the weight it was converted with, pre-infusion screening
(creatinine or eGFR, hydration, thrombosis risk), infusion minutes and notes.

Existing records keep their overall `reaction` severity (none, mild, moderate, severe) as it
was: it stays the record's summary, which new records derive from their worst grade. It is
not turned into reaction rows, since what the reaction was and what the nurse did were never
recorded and would be guessed. Stepping back drops the new detail; the severity stays.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS: dict[str, sa.types.TypeEngine[Any]] = {
    "infusion_minutes": sa.Integer(),
    "tolerated_rate_ml_per_hour": sa.Numeric(precision=6, scale=1),
    "rate_weight_kg": sa.Numeric(precision=5, scale=1),
    "creatinine_mg_dl": sa.Numeric(precision=4, scale=2),
    "egfr_ml_min": sa.Integer(),
    "hydrated": sa.Boolean(),
    "thrombosis_risk": sa.Boolean(),
    "notes": sa.String(length=2000),
}
CHECKS = {
    "infusion_minutes": "infusion_minutes IS NULL OR infusion_minutes BETWEEN 1 AND 1440",
    "tolerated_rate_ml_per_hour": (
        "tolerated_rate_ml_per_hour IS NULL OR tolerated_rate_ml_per_hour > 0"
    ),
    "creatinine_mg_dl": "creatinine_mg_dl IS NULL OR creatinine_mg_dl BETWEEN 0.1 AND 20",
    "egfr": "egfr_ml_min IS NULL OR egfr_ml_min BETWEEN 1 AND 200",
}
KINDS = (
    "'headache', 'fever', 'chills', 'flushing', 'rash', 'nausea', 'hypertension', "
    "'hypotension', 'chest_tightness', 'dyspnea', 'anaphylaxis', 'other'"
)
ACTIONS = "'none', 'slowed', 'paused', 'stopped', 'premedicated'"


def upgrade() -> None:
    # session_records has no triggers or partial indexes: SQLite may rebuild it (to add the
    # checks) without anything to put back.
    with op.batch_alter_table("session_records", schema=None) as batch_op:
        for name, type_ in COLUMNS.items():
            batch_op.add_column(sa.Column(name, type_, nullable=True))
        for name, condition in CHECKS.items():
            batch_op.create_check_constraint(op.f(f"ck_session_records_{name}"), condition)
    op.create_table(
        "session_reactions",
        sa.Column("record_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("grade", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=15), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.CheckConstraint(f"kind IN ({KINDS})", name=op.f("ck_session_reactions_kind")),
        sa.CheckConstraint("grade BETWEEN 1 AND 5", name=op.f("ck_session_reactions_grade")),
        sa.CheckConstraint(f"action IN ({ACTIONS})", name=op.f("ck_session_reactions_action")),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["session_records.id"],
            name=op.f("fk_session_reactions_record_id_session_records"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_session_reactions")),
        sa.UniqueConstraint(
            "record_id", "position", name=op.f("uq_session_reactions_record_id_position")
        ),
    )


def downgrade() -> None:
    op.drop_table("session_reactions")
    with op.batch_alter_table("session_records", schema=None) as batch_op:
        for name in CHECKS:
            batch_op.drop_constraint(op.f(f"ck_session_records_{name}"), type_="check")
        for name in reversed(COLUMNS):
            batch_op.drop_column(name)
