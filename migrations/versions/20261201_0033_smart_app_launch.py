"""SMART App Launch (issue 17): registered patient apps, their authorization codes and
refresh tokens (keyed hashes only), the keys that sign id_tokens, and on access tokens the
app that holds one and the scopes that bound it (both null for every token before). The
signing keys' private halves are sealed (AES-256-GCM under a key derived from the app's
secret), never stored in the clear.

Stepping back deletes the apps' access tokens first: without their scopes they would reach
everything their patient can.

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from core.db import Instant

revision: str = "0033"
down_revision: str | None = "0032"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "smart_apps",
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("redirect_uris", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", Instant(timezone=True), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_smart_apps")),
        sa.UniqueConstraint("client_id", name=op.f("uq_smart_apps_client_id")),
    )
    op.create_table(
        "smart_signing_keys",
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("private_jwk_sealed", sa.Text(), nullable=False),
        sa.Column("created_at", Instant(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("kid", name=op.f("pk_smart_signing_keys")),
    )
    op.create_table(
        "smart_authorization_codes",
        sa.Column("code_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("app_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("redirect_uri", sa.String(length=2000), nullable=False),
        sa.Column("scope", sa.String(length=1000), nullable=False),
        sa.Column("code_challenge", sa.String(length=128), nullable=False),
        sa.Column("code_challenge_method", sa.String(length=10), nullable=False),
        sa.Column("nonce", sa.String(length=255), nullable=True),
        sa.Column("created_at", Instant(timezone=True), nullable=False),
        sa.Column("expires_at", Instant(timezone=True), nullable=False),
        sa.Column("used_at", Instant(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"],
            ["smart_apps.id"],
            name=op.f("fk_smart_authorization_codes_app_id_smart_apps"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_smart_authorization_codes_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_smart_authorization_codes")),
        sa.UniqueConstraint("code_hash", name=op.f("uq_smart_authorization_codes_code_hash")),
    )
    with op.batch_alter_table("smart_authorization_codes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_smart_authorization_codes_app_id"), ["app_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_smart_authorization_codes_user_id"), ["user_id"], unique=False
        )

    op.create_table(
        "smart_refresh_tokens",
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("app_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("family_id", sa.Uuid(), nullable=False),
        sa.Column("scope", sa.String(length=1000), nullable=False),
        sa.Column("created_at", Instant(timezone=True), nullable=False),
        sa.Column("expires_at", Instant(timezone=True), nullable=False),
        sa.Column("revoked_at", Instant(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"], ["smart_apps.id"], name=op.f("fk_smart_refresh_tokens_app_id_smart_apps")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_smart_refresh_tokens_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_smart_refresh_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_smart_refresh_tokens_token_hash")),
    )
    with op.batch_alter_table("smart_refresh_tokens", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_smart_refresh_tokens_app_id"), ["app_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_smart_refresh_tokens_family_id"), ["family_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_smart_refresh_tokens_user_id"), ["user_id"], unique=False
        )

    with op.batch_alter_table("access_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("client_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("scope", sa.String(length=1000), nullable=True))
        batch_op.create_index(batch_op.f("ix_access_tokens_client_id"), ["client_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_access_tokens_client_id_smart_apps"), "smart_apps", ["client_id"], ["id"]
        )


def downgrade() -> None:
    op.execute("DELETE FROM access_tokens WHERE client_id IS NOT NULL")
    with op.batch_alter_table("access_tokens", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_access_tokens_client_id_smart_apps"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_access_tokens_client_id"))
        batch_op.drop_column("scope")
        batch_op.drop_column("client_id")

    with op.batch_alter_table("smart_refresh_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_smart_refresh_tokens_user_id"))
        batch_op.drop_index(batch_op.f("ix_smart_refresh_tokens_family_id"))
        batch_op.drop_index(batch_op.f("ix_smart_refresh_tokens_app_id"))

    op.drop_table("smart_refresh_tokens")
    with op.batch_alter_table("smart_authorization_codes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_smart_authorization_codes_user_id"))
        batch_op.drop_index(batch_op.f("ix_smart_authorization_codes_app_id"))

    op.drop_table("smart_authorization_codes")
    op.drop_table("smart_signing_keys")
    op.drop_table("smart_apps")
