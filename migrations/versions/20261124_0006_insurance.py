"""Insurance: payers, coverages, pre-authorizations with their history, what each course
session draws on them, billing alerts (one live alert per kind and object, enforced by a
partial unique index), and each center's policy for uncovered sessions.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from core.db import Instant

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "payers",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("turnaround_days", sa.Integer(), nullable=False),
        sa.Column("expedited_turnaround_days", sa.Integer(), nullable=False),
        sa.Column("renewal_margin_days", sa.Integer(), nullable=False),
        sa.Column("default_units_type", sa.String(length=20), nullable=False),
        sa.Column("max_auth_days", sa.Integer(), nullable=True),
        sa.Column("alert_days", sa.Integer(), server_default="14", nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", Instant(timezone=True), nullable=False),
        sa.Column("updated_at", Instant(timezone=True), nullable=False),
        sa.CheckConstraint(
            "default_units_type IN ('visits', 'billing_units')", name=op.f("ck_payers_units_type")
        ),
        sa.CheckConstraint(
            "max_auth_days IS NULL OR max_auth_days > 0", name=op.f("ck_payers_max_auth_days")
        ),
        sa.CheckConstraint(
            "turnaround_days BETWEEN 0 AND 365 AND expedited_turnaround_days BETWEEN 0 AND 365 "
            "AND renewal_margin_days BETWEEN 0 AND 365 AND alert_days BETWEEN 0 AND 365",
            name=op.f("ck_payers_days"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payers")),
        sa.UniqueConstraint("name", name=op.f("uq_payers_name")),
    )
    op.create_table(
        "coverages",
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("payer_id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.String(length=64), nullable=False),
        sa.Column("group_number", sa.String(length=64), nullable=True),
        sa.Column("priority", sa.String(length=10), nullable=False),
        sa.Column("effective_from", sa.Date(), nullable=False),
        sa.Column("effective_to", sa.Date(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", Instant(timezone=True), nullable=False),
        sa.Column("updated_at", Instant(timezone=True), nullable=False),
        sa.CheckConstraint(
            "priority IN ('primary', 'secondary')", name=op.f("ck_coverages_priority")
        ),
        sa.CheckConstraint(
            "effective_to IS NULL OR effective_to >= effective_from",
            name=op.f("ck_coverages_effective_period"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_coverages_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["payer_id"], ["payers.id"], name=op.f("fk_coverages_payer_id_payers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coverages")),
    )
    with op.batch_alter_table("coverages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_coverages_patient_id"), ["patient_id"], unique=False)

    op.create_table(
        "authorizations",
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("coverage_id", sa.Uuid(), nullable=False),
        sa.Column("course_id", sa.Uuid(), nullable=True),
        sa.Column("service_code", sa.String(length=10), nullable=False),
        sa.Column("auth_number", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=False),
        sa.Column("valid_to", sa.Date(), nullable=False),
        sa.Column("units_type", sa.String(length=20), nullable=False),
        sa.Column("units_approved", sa.Integer(), nullable=False),
        sa.Column("units_used", sa.Integer(), server_default="0", nullable=False),
        sa.Column("requested_on", sa.Date(), nullable=True),
        sa.Column("decided_on", sa.Date(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", Instant(timezone=True), nullable=False),
        sa.Column("updated_at", Instant(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('draft', 'submitted', 'pending', 'approved', 'partially_approved', "
            "'denied', 'appealed', 'expired', 'exhausted', 'cancelled')",
            name=op.f("ck_authorizations_status"),
        ),
        sa.CheckConstraint(
            "units_type IN ('visits', 'billing_units')", name=op.f("ck_authorizations_units_type")
        ),
        sa.CheckConstraint(
            "units_approved >= 0 AND units_used >= 0 AND units_used <= units_approved",
            name=op.f("ck_authorizations_units"),
        ),
        sa.CheckConstraint("valid_to >= valid_from", name=op.f("ck_authorizations_valid_period")),
        sa.ForeignKeyConstraint(
            ["course_id"], ["courses.id"], name=op.f("fk_authorizations_course_id_courses")
        ),
        sa.ForeignKeyConstraint(
            ["coverage_id"], ["coverages.id"], name=op.f("fk_authorizations_coverage_id_coverages")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_authorizations_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_authorizations")),
    )
    with op.batch_alter_table("authorizations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_authorizations_patient_id"), ["patient_id"], unique=False
        )

    op.create_table(
        "alerts",
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("severity", sa.String(length=10), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("payer_id", sa.Uuid(), nullable=True),
        sa.Column("authorization_id", sa.Uuid(), nullable=True),
        sa.Column("appointment_id", sa.Uuid(), nullable=True),
        sa.Column("course_id", sa.Uuid(), nullable=True),
        sa.Column("amount_at_risk", sa.Numeric(precision=12, scale=2), nullable=True),
        sa.Column("detail", sa.String(length=500), nullable=False),
        sa.Column("assigned_to", sa.Uuid(), nullable=True),
        sa.Column("opened_at", Instant(timezone=True), nullable=False),
        sa.Column("acknowledged_at", Instant(timezone=True), nullable=True),
        sa.Column("resolved_at", Instant(timezone=True), nullable=True),
        sa.Column("resolution", sa.String(length=40), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('auth_expiring', 'auth_units_low', 'session_uncovered', "
            "'auth_denied_with_bookings', 'coverage_ended', 'course_unbookable')",
            name=op.f("ck_alerts_kind"),
        ),
        sa.CheckConstraint(
            "severity IN ('info', 'warning', 'critical')", name=op.f("ck_alerts_severity")
        ),
        sa.CheckConstraint(
            "status IN ('open', 'acknowledged', 'resolved')", name=op.f("ck_alerts_status")
        ),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointments.id"],
            name=op.f("fk_alerts_appointment_id_appointments"),
        ),
        sa.ForeignKeyConstraint(
            ["assigned_to"], ["users.id"], name=op.f("fk_alerts_assigned_to_users")
        ),
        sa.ForeignKeyConstraint(
            ["authorization_id"],
            ["authorizations.id"],
            name=op.f("fk_alerts_authorization_id_authorizations"),
        ),
        sa.ForeignKeyConstraint(
            ["course_id"], ["courses.id"], name=op.f("fk_alerts_course_id_courses")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_alerts_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(
            ["payer_id"], ["payers.id"], name=op.f("fk_alerts_payer_id_payers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index("ix_alerts_patient", ["patient_id", "status"], unique=False)
        batch_op.create_index("ix_alerts_queue", ["status", "due_date"], unique=False)
        batch_op.create_index(
            "uq_alerts_live",
            ["kind", "subject_id"],
            unique=True,
            sqlite_where=sa.text("status IN ('open', 'acknowledged')"),
            postgresql_where=sa.text("status IN ('open', 'acknowledged')"),
        )

    op.create_table(
        "authorization_changes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("authorization_id", sa.Uuid(), nullable=False),
        sa.Column("at", Instant(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("from_status", sa.String(length=20), nullable=True),
        sa.Column("to_status", sa.String(length=20), nullable=False),
        sa.Column("note", sa.String(length=1000), nullable=True),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_authorization_changes_actor_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["authorization_id"],
            ["authorizations.id"],
            name=op.f("fk_authorization_changes_authorization_id_authorizations"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_authorization_changes")),
    )
    with op.batch_alter_table("authorization_changes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_authorization_changes_authorization_id"),
            ["authorization_id"],
            unique=False,
        )

    op.create_table(
        "session_covers",
        sa.Column("appointment_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("authorization_id", sa.Uuid(), nullable=True),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=True),
        sa.Column("consumed", sa.Boolean(), nullable=False),
        sa.Column("updated_at", Instant(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointments.id"],
            name=op.f("fk_session_covers_appointment_id_appointments"),
        ),
        sa.ForeignKeyConstraint(
            ["authorization_id"],
            ["authorizations.id"],
            name=op.f("fk_session_covers_authorization_id_authorizations"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_session_covers_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("appointment_id", name=op.f("pk_session_covers")),
    )
    with op.batch_alter_table("session_covers", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_session_covers_authorization_id"), ["authorization_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_session_covers_patient_id"), ["patient_id"], unique=False
        )

    with op.batch_alter_table("centers", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "coverage_policy", sa.String(length=10), server_default="warn", nullable=False
            )
        )
        batch_op.create_check_constraint("coverage_policy", "coverage_policy IN ('warn', 'block')")


def downgrade() -> None:
    with op.batch_alter_table("centers", schema=None) as batch_op:
        batch_op.drop_constraint("coverage_policy", type_="check")
        batch_op.drop_column("coverage_policy")

    with op.batch_alter_table("session_covers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_session_covers_patient_id"))
        batch_op.drop_index(batch_op.f("ix_session_covers_authorization_id"))

    op.drop_table("session_covers")
    with op.batch_alter_table("authorization_changes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_authorization_changes_authorization_id"))

    op.drop_table("authorization_changes")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_alerts_live",
            sqlite_where=sa.text("status IN ('open', 'acknowledged')"),
            postgresql_where=sa.text("status IN ('open', 'acknowledged')"),
        )
        batch_op.drop_index("ix_alerts_queue")
        batch_op.drop_index("ix_alerts_patient")

    op.drop_table("alerts")
    with op.batch_alter_table("authorizations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_authorizations_patient_id"))

    op.drop_table("authorizations")
    with op.batch_alter_table("coverages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_coverages_patient_id"))

    op.drop_table("coverages")
    op.drop_table("payers")
