"""Foundation: centers, chairs, staffing, patients, users, appointments.

Revision ID: 0001
Revises:
Create Date: 2026-11-24 18:33:22.307880
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "centers",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("patients_per_nurse", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "patients_per_nurse BETWEEN 1 AND 20", name=op.f("ck_centers_ppn_range")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_centers")),
    )
    op.create_table(
        "patients",
        sa.Column("mrn", sa.String(length=40), nullable=False),
        sa.Column("given_name", sa.String(length=100), nullable=False),
        sa.Column("family_name", sa.String(length=100), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=False),
        sa.Column("sex", sa.String(length=10), nullable=False),
        sa.Column("weight_kg", sa.Numeric(precision=5, scale=1), nullable=True),
        sa.Column("height_cm", sa.Numeric(precision=4, scale=1), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "sex IN ('female', 'male', 'other', 'unknown')", name=op.f("ck_patients_sex")
        ),
        sa.CheckConstraint(
            "height_cm > 0 AND height_cm < 300", name=op.f("ck_patients_height_range")
        ),
        sa.CheckConstraint(
            "weight_kg > 0 AND weight_kg < 500", name=op.f("ck_patients_weight_range")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patients")),
        sa.UniqueConstraint("mrn", name=op.f("uq_patients_mrn")),
    )
    op.create_index(op.f("ix_patients_family_name"), "patients", ["family_name"], unique=False)

    op.create_table(
        "chairs",
        sa.Column("center_id", sa.Uuid(), nullable=False),
        sa.Column("label", sa.String(length=50), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('chair', 'bed', 'isolation')", name=op.f("ck_chairs_kind")),
        sa.ForeignKeyConstraint(
            ["center_id"], ["centers.id"], name=op.f("fk_chairs_center_id_centers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chairs")),
        sa.UniqueConstraint("center_id", "label", name=op.f("uq_chairs_center_id_label")),
    )
    op.create_index(op.f("ix_chairs_center_id"), "chairs", ["center_id"], unique=False)

    op.create_table(
        "closures",
        sa.Column("center_id", sa.Uuid(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["center_id"],
            ["centers.id"],
            name=op.f("fk_closures_center_id_centers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_closures")),
        sa.UniqueConstraint("center_id", "date", name=op.f("uq_closures_center_id_date")),
    )
    op.create_table(
        "opening_hours",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("center_id", sa.Uuid(), nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=False),
        sa.Column("opens", sa.Time(), nullable=False),
        sa.Column("closes", sa.Time(), nullable=False),
        sa.CheckConstraint("opens < closes", name=op.f("ck_opening_hours_opens_before_closes")),
        sa.CheckConstraint("weekday BETWEEN 0 AND 6", name=op.f("ck_opening_hours_weekday_range")),
        sa.ForeignKeyConstraint(
            ["center_id"],
            ["centers.id"],
            name=op.f("fk_opening_hours_center_id_centers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_opening_hours")),
        sa.UniqueConstraint(
            "center_id", "weekday", name=op.f("uq_opening_hours_center_id_weekday")
        ),
    )
    op.create_table(
        "staffing_blocks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("center_id", sa.Uuid(), nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=False),
        sa.Column("start", sa.Time(), nullable=False),
        sa.Column("end", sa.Time(), nullable=False),
        sa.Column("nurses", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "nurses BETWEEN 0 AND 100", name=op.f("ck_staffing_blocks_nurses_range")
        ),
        sa.CheckConstraint('start < "end"', name=op.f("ck_staffing_blocks_start_before_end")),
        sa.CheckConstraint(
            "weekday BETWEEN 0 AND 6", name=op.f("ck_staffing_blocks_weekday_range")
        ),
        sa.ForeignKeyConstraint(
            ["center_id"],
            ["centers.id"],
            name=op.f("fk_staffing_blocks_center_id_centers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staffing_blocks")),
    )
    op.create_index(
        op.f("ix_staffing_blocks_center_id"), "staffing_blocks", ["center_id"], unique=False
    )

    op.create_table(
        "users",
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(role = 'patient') = (patient_id IS NOT NULL)", name=op.f("ck_users_patient_link")
        ),
        sa.CheckConstraint(
            "role IN ('admin', 'nurse', 'billing', 'patient')", name=op.f("ck_users_role")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_users_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )
    op.create_table(
        "access_tokens",
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_access_tokens_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_access_tokens_token_hash")),
    )
    op.create_index(op.f("ix_access_tokens_user_id"), "access_tokens", ["user_id"], unique=False)

    op.create_table(
        "appointments",
        sa.Column("center_id", sa.Uuid(), nullable=False),
        sa.Column("chair_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("booked_by", sa.Uuid(), nullable=True),
        sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('booked', 'checked_in', 'in_progress', 'completed', 'cancelled', "
            "'no_show')",
            name=op.f("ck_appointments_status"),
        ),
        sa.CheckConstraint("start_at < end_at", name=op.f("ck_appointments_start_before_end")),
        sa.ForeignKeyConstraint(
            ["booked_by"], ["users.id"], name=op.f("fk_appointments_booked_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["center_id"], ["centers.id"], name=op.f("fk_appointments_center_id_centers")
        ),
        sa.ForeignKeyConstraint(
            ["chair_id"], ["chairs.id"], name=op.f("fk_appointments_chair_id_chairs")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_appointments_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appointments")),
    )
    op.create_index(
        "ix_appointments_center_start", "appointments", ["center_id", "start_at"], unique=False
    )
    op.create_index(
        "ix_appointments_chair_start", "appointments", ["chair_id", "start_at"], unique=False
    )
    op.create_index(
        "ix_appointments_patient_start", "appointments", ["patient_id", "start_at"], unique=False
    )

    op.create_table(
        "chair_blocks",
        sa.Column("chair_id", sa.Uuid(), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.CheckConstraint("start_at < end_at", name=op.f("ck_chair_blocks_start_before_end")),
        sa.ForeignKeyConstraint(
            ["chair_id"], ["chairs.id"], name=op.f("fk_chair_blocks_chair_id_chairs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chair_blocks")),
    )
    op.create_index(op.f("ix_chair_blocks_chair_id"), "chair_blocks", ["chair_id"], unique=False)

    op.create_table(
        "idempotency_records",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("scope", sa.String(length=200), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column("response_body", sa.Text(), nullable=False),
        sa.Column("location", sa.String(length=300), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_idempotency_records_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_records")),
        sa.UniqueConstraint(
            "user_id", "scope", "key", name=op.f("uq_idempotency_records_user_id_scope_key")
        ),
    )
    op.create_table(
        "patient_measurements",
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("measured_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("weight_kg", sa.Numeric(precision=5, scale=1), nullable=True),
        sa.Column("height_cm", sa.Numeric(precision=4, scale=1), nullable=True),
        sa.Column("recorded_by", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["patient_id"],
            ["patients.id"],
            name=op.f("fk_patient_measurements_patient_id_patients"),
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by"], ["users.id"], name=op.f("fk_patient_measurements_recorded_by_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patient_measurements")),
    )
    op.create_index(
        op.f("ix_patient_measurements_patient_id"),
        "patient_measurements",
        ["patient_id"],
        unique=False,
    )

    op.create_table(
        "appointment_changes",
        sa.Column("appointment_id", sa.Uuid(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("action", sa.String(length=30), nullable=False),
        sa.Column("from_status", sa.String(length=20), nullable=True),
        sa.Column("to_status", sa.String(length=20), nullable=False),
        sa.Column("chair_id", sa.Uuid(), nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_appointment_changes_actor_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointments.id"],
            name=op.f("fk_appointment_changes_appointment_id_appointments"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appointment_changes")),
    )
    op.create_index(
        op.f("ix_appointment_changes_appointment_id"),
        "appointment_changes",
        ["appointment_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_appointment_changes_appointment_id"))

    op.drop_table("appointment_changes")
    op.drop_index(op.f("ix_patient_measurements_patient_id"))

    op.drop_table("patient_measurements")
    op.drop_table("idempotency_records")
    op.drop_index(op.f("ix_chair_blocks_chair_id"))

    op.drop_table("chair_blocks")
    op.drop_index("ix_appointments_patient_start")
    op.drop_index("ix_appointments_chair_start")
    op.drop_index("ix_appointments_center_start")

    op.drop_table("appointments")
    op.drop_index(op.f("ix_access_tokens_user_id"))

    op.drop_table("access_tokens")
    op.drop_table("users")
    op.drop_index(op.f("ix_staffing_blocks_center_id"))

    op.drop_table("staffing_blocks")
    op.drop_table("opening_hours")
    op.drop_table("closures")
    op.drop_index(op.f("ix_chairs_center_id"))

    op.drop_table("chairs")
    op.drop_index(op.f("ix_patients_family_name"))

    op.drop_table("patients")
    op.drop_table("centers")
