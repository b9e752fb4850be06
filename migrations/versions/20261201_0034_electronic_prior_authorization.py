"""Electronic prior authorization (issue 18): payers' Da Vinci PAS endpoint and client
credentials (the secret write-only, the notification token as a hash), the prescriber and the
expedited flag on authorizations, the last benefits check on coverages, each authorization's
electronic request (`pas_requests`: its Claim identifier and when to ask the payer again),
every exchange with a payer (`authorization_exchanges`), and the `payer_overdue` alert kind.

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from core.db import Instant

revision: str = "0034"
down_revision: str | None = "0033"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS_BEFORE = (
    "auth_expiring",
    "auth_units_low",
    "session_uncovered",
    "auth_denied_with_bookings",
    "coverage_ended",
    "course_unbookable",
    "drug_shortfall",
)
KINDS_AFTER = (*KINDS_BEFORE, "payer_overdue")


def _kinds(kinds: tuple[str, ...]) -> str:
    return f"kind IN ({', '.join(repr(k) for k in kinds)})"


def upgrade() -> None:
    with op.batch_alter_table("payers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pas_base_url", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("pas_token_url", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("pas_client_id", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("pas_client_secret", sa.String(length=500), nullable=True))
        batch_op.add_column(
            sa.Column("pas_notification_token_hash", sa.String(length=64), nullable=True)
        )
    with op.batch_alter_table("coverages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("eligibility_checked_at", Instant(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("eligibility_in_force", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("eligibility_note", sa.String(length=200), nullable=True))
    with op.batch_alter_table("authorizations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("prescriber_name", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("prescriber_npi", sa.String(length=10), nullable=True))
        batch_op.add_column(
            sa.Column("expedited", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_constraint("kind", type_="check")
        batch_op.create_check_constraint("kind", _kinds(KINDS_AFTER))

    op.create_table(
        "pas_requests",
        sa.Column("authorization_id", sa.Uuid(), nullable=False),
        sa.Column("payer_id", sa.Uuid(), nullable=False),
        sa.Column("claim_identifier", sa.String(length=64), nullable=False),
        sa.Column("created_at", Instant(timezone=True), nullable=False),
        sa.Column("submitted_at", Instant(timezone=True), nullable=True),
        sa.Column("in_flight_since", Instant(timezone=True), nullable=True),
        sa.Column("next_inquiry_at", Instant(timezone=True), nullable=True),
        sa.Column("inquiries", sa.Integer(), server_default="0", nullable=False),
        sa.Column("decided_at", Instant(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["authorization_id"],
            ["authorizations.id"],
            name=op.f("fk_pas_requests_authorization_id_authorizations"),
        ),
        sa.ForeignKeyConstraint(
            ["payer_id"], ["payers.id"], name=op.f("fk_pas_requests_payer_id_payers")
        ),
        sa.PrimaryKeyConstraint("authorization_id", name=op.f("pk_pas_requests")),
        sa.UniqueConstraint("claim_identifier", name=op.f("uq_pas_requests_claim_identifier")),
    )
    with op.batch_alter_table("pas_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_pas_requests_next_inquiry_at"), ["next_inquiry_at"], unique=False
        )

    op.create_table(
        "authorization_exchanges",
        sa.Column("authorization_id", sa.Uuid(), nullable=True),
        sa.Column("coverage_id", sa.Uuid(), nullable=True),
        sa.Column("payer_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("claim_identifier", sa.String(length=64), nullable=True),
        sa.Column("operation", sa.String(length=40), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("started_at", Instant(timezone=True), nullable=False),
        sa.Column("finished_at", Instant(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("outcome", sa.String(length=40), nullable=False),
        sa.Column("request_bundle", sa.JSON(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('submit', 'inquire', 'eligibility', 'notification')",
            name=op.f("ck_authorization_exchanges_kind"),
        ),
        sa.ForeignKeyConstraint(
            ["actor_id"], ["users.id"], name=op.f("fk_authorization_exchanges_actor_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["authorization_id"],
            ["authorizations.id"],
            name=op.f("fk_authorization_exchanges_authorization_id_authorizations"),
        ),
        sa.ForeignKeyConstraint(
            ["coverage_id"],
            ["coverages.id"],
            name=op.f("fk_authorization_exchanges_coverage_id_coverages"),
        ),
        sa.ForeignKeyConstraint(
            ["payer_id"], ["payers.id"], name=op.f("fk_authorization_exchanges_payer_id_payers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_authorization_exchanges")),
    )
    with op.batch_alter_table("authorization_exchanges", schema=None) as batch_op:
        batch_op.create_index(
            "ix_authorization_exchanges_authorization",
            ["authorization_id", "started_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_authorization_exchanges_coverage", ["coverage_id", "started_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("authorization_exchanges", schema=None) as batch_op:
        batch_op.drop_index("ix_authorization_exchanges_coverage")
        batch_op.drop_index("ix_authorization_exchanges_authorization")
    op.drop_table("authorization_exchanges")
    with op.batch_alter_table("pas_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pas_requests_next_inquiry_at"))
    op.drop_table("pas_requests")
    op.execute("DELETE FROM alerts WHERE kind = 'payer_overdue'")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_constraint("kind", type_="check")
        batch_op.create_check_constraint("kind", _kinds(KINDS_BEFORE))
    with op.batch_alter_table("authorizations", schema=None) as batch_op:
        batch_op.drop_column("expedited")
        batch_op.drop_column("prescriber_npi")
        batch_op.drop_column("prescriber_name")
    with op.batch_alter_table("coverages", schema=None) as batch_op:
        batch_op.drop_column("eligibility_note")
        batch_op.drop_column("eligibility_in_force")
        batch_op.drop_column("eligibility_checked_at")
    with op.batch_alter_table("payers", schema=None) as batch_op:
        batch_op.drop_column("pas_notification_token_hash")
        batch_op.drop_column("pas_client_secret")
        batch_op.drop_column("pas_client_id")
        batch_op.drop_column("pas_token_url")
        batch_op.drop_column("pas_base_url")
