"""Treatment courses, their status history and session records; appointments learn their course.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 19:46:59.290496
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from migrations import guards

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "courses",
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("center_id", sa.Uuid(), nullable=False),
        sa.Column("product_id", sa.Uuid(), nullable=False),
        sa.Column("diagnosis_code", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("induction_total_g_per_kg", sa.Numeric(precision=5, scale=3), nullable=True),
        sa.Column("induction_days", sa.Integer(), nullable=True),
        sa.Column("induction_skips_closures", sa.Boolean(), nullable=False),
        sa.Column("maintenance_g_per_kg", sa.Numeric(precision=5, scale=3), nullable=True),
        sa.Column("interval_days", sa.Integer(), nullable=True),
        sa.Column("window_min_days", sa.Integer(), nullable=True),
        sa.Column("window_max_days", sa.Integer(), nullable=True),
        sa.Column("cycles", sa.Integer(), nullable=True),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("preferred_weekdays", sa.JSON(), nullable=False),
        sa.Column("preferred_start_time", sa.Time(), nullable=False),
        sa.Column("chair_kind", sa.String(length=20), nullable=False),
        sa.Column("weight_basis", sa.String(length=10), nullable=False),
        sa.Column("vial_tolerance_pct", sa.Numeric(precision=4, scale=1), nullable=True),
        sa.Column("renal_risk", sa.Boolean(), nullable=False),
        sa.Column("thrombosis_risk", sa.Boolean(), nullable=False),
        sa.Column("tolerated_rate", sa.Numeric(precision=8, scale=4), nullable=True),
        sa.Column("dose_override_reason", sa.String(length=500), nullable=True),
        sa.Column("unbookable", sa.JSON(), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "chair_kind IN ('chair', 'bed', 'isolation')", name=op.f("ck_courses_chair_kind")
        ),
        sa.CheckConstraint(
            "status IN ('active', 'on_hold', 'completed', 'discontinued')",
            name=op.f("ck_courses_status"),
        ),
        sa.CheckConstraint(
            "weight_basis IN ('actual', 'adjusted')", name=op.f("ck_courses_weight_basis")
        ),
        sa.CheckConstraint(
            "induction_days IS NOT NULL OR interval_days IS NOT NULL",
            name=op.f("ck_courses_has_a_phase"),
        ),
        sa.CheckConstraint(
            "induction_days IS NULL OR induction_days BETWEEN 1 AND 5",
            name=op.f("ck_courses_induction"),
        ),
        sa.CheckConstraint(
            "interval_days IS NULL OR (0 < window_min_days AND window_min_days <= interval_days "
            "AND interval_days <= window_max_days)",
            name=op.f("ck_courses_window"),
        ),
        sa.ForeignKeyConstraint(
            ["center_id"], ["centers.id"], name=op.f("fk_courses_center_id_centers")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_courses_created_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_courses_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["product_id"], ["products.id"], name=op.f("fk_courses_product_id_products")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_courses")),
    )
    with op.batch_alter_table("courses", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_courses_center_id"), ["center_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_courses_patient_id"), ["patient_id"], unique=False)

    op.create_table(
        "course_changes",
        sa.Column("course_id", sa.Uuid(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("from_status", sa.String(length=20), nullable=True),
        sa.Column("to_status", sa.String(length=20), nullable=False),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_course_changes_actor_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["course_id"], ["courses.id"], name=op.f("fk_course_changes_course_id_courses")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_course_changes")),
    )
    with op.batch_alter_table("course_changes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_course_changes_course_id"), ["course_id"], unique=False
        )

    op.create_table(
        "session_records",
        sa.Column("appointment_id", sa.Uuid(), nullable=False),
        sa.Column("course_id", sa.Uuid(), nullable=True),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.Uuid(), nullable=True),
        sa.Column("weight_kg", sa.Numeric(precision=5, scale=1), nullable=True),
        sa.Column("dose_given_g", sa.Numeric(precision=7, scale=2), nullable=True),
        sa.Column("actual_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("actual_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reaction", sa.String(length=10), nullable=False),
        sa.Column("tolerated_rate", sa.Numeric(precision=8, scale=4), nullable=True),
        sa.Column("incat", sa.Integer(), nullable=True),
        sa.Column("i_rods", sa.Integer(), nullable=True),
        sa.Column("mrc_sum", sa.Integer(), nullable=True),
        sa.Column("grip_strength_kg", sa.Numeric(precision=5, scale=1), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.CheckConstraint(
            "reaction IN ('none', 'mild', 'moderate', 'severe')",
            name=op.f("ck_session_records_reaction"),
        ),
        sa.CheckConstraint(
            "i_rods IS NULL OR i_rods BETWEEN 0 AND 100", name=op.f("ck_session_records_i_rods")
        ),
        sa.CheckConstraint(
            "incat IS NULL OR incat BETWEEN 0 AND 10", name=op.f("ck_session_records_incat")
        ),
        sa.CheckConstraint(
            "mrc_sum IS NULL OR mrc_sum BETWEEN 0 AND 60", name=op.f("ck_session_records_mrc_sum")
        ),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointments.id"],
            name=op.f("fk_session_records_appointment_id_appointments"),
        ),
        sa.ForeignKeyConstraint(
            ["course_id"], ["courses.id"], name=op.f("fk_session_records_course_id_courses")
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by"], ["users.id"], name=op.f("fk_session_records_recorded_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_session_records")),
        sa.UniqueConstraint("appointment_id", name=op.f("uq_session_records_appointment_id")),
    )
    with op.batch_alter_table("session_records", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_session_records_course_id"), ["course_id"], unique=False
        )

    # Rebuilding the table on SQLite drops its overlap triggers: take them off and put them back.
    if guards.is_sqlite():
        guards.drop_sqlite_triggers()
    with op.batch_alter_table("appointments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("course_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("phase", sa.String(length=12), nullable=True))
        batch_op.add_column(sa.Column("sequence", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("dose_g", sa.Numeric(precision=7, scale=2), nullable=True))
        batch_op.create_index(
            "uq_appointments_course_session",
            ["course_id", "phase", "sequence"],
            unique=True,
            postgresql_where=sa.text("status IN ('booked', 'checked_in', 'in_progress')"),
            sqlite_where=sa.text("status IN ('booked', 'checked_in', 'in_progress')"),
        )
        batch_op.create_index(
            "ix_appointments_course_start", ["course_id", "start_at"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_appointments_course_id_courses"), "courses", ["course_id"], ["id"]
        )
        batch_op.create_check_constraint(
            "course_session",
            "(course_id IS NULL) = (phase IS NULL) AND (phase IS NULL) = (sequence IS NULL)",
        )
    if guards.is_sqlite():
        guards.create_sqlite_triggers()


def downgrade() -> None:
    if guards.is_sqlite():
        guards.drop_sqlite_triggers()
    with op.batch_alter_table("appointments", schema=None) as batch_op:
        batch_op.drop_constraint("course_session", type_="check")
        batch_op.drop_index("ix_appointments_course_start")
        batch_op.drop_constraint(
            batch_op.f("fk_appointments_course_id_courses"), type_="foreignkey"
        )
        batch_op.drop_index(
            "uq_appointments_course_session",
            postgresql_where=sa.text("status IN ('booked', 'checked_in', 'in_progress')"),
            sqlite_where=sa.text("status IN ('booked', 'checked_in', 'in_progress')"),
        )
        batch_op.drop_column("dose_g")
        batch_op.drop_column("sequence")
        batch_op.drop_column("phase")
        batch_op.drop_column("course_id")
    if guards.is_sqlite():
        guards.create_sqlite_triggers()

    with op.batch_alter_table("session_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_session_records_course_id"))

    op.drop_table("session_records")
    with op.batch_alter_table("course_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_course_changes_course_id"))

    op.drop_table("course_changes")
    with op.batch_alter_table("courses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_courses_patient_id"))
        batch_op.drop_index(batch_op.f("ix_courses_center_id"))

    op.drop_table("courses")
