"""Webhook secrets in the Standard Webhooks form, and their rotation (issue 17).

Each stored secret `s` (free-form text whose UTF-8 bytes were the HMAC key) becomes `whsec_` +
base64(s): the same key, so receivers keep verifying with what they hold and can be told the new
form at leisure. The column grows to fit the longest old secret converted (200 characters make
274). `previous_secret` and `previous_secret_expires_at` keep the secret a rotation replaced,
which signs deliveries too until then.

Stepping back turns each converted secret back into its text. A secret made or rotated in
since is random bytes the old form cannot carry: it stays as it is, and the code before this
revision would use that text itself as the key, so those receivers need a new secret after a
downgrade. Rotations under way are forgotten.

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-01
"""

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op

from core.db import Instant
from core.outbox.signing import from_legacy, to_legacy

revision: str = "0032"
down_revision: str | None = "0031"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_subscriptions = sa.table(
    "webhook_subscriptions", sa.column("id", sa.Uuid()), sa.column("secret", sa.String())
)


def _convert(convert: Callable[[str], str | None]) -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.select(_subscriptions.c.id, _subscriptions.c.secret)).all()
    for row_id, secret in rows:
        changed = convert(secret)
        if changed is not None and changed != secret:
            bind.execute(
                sa.update(_subscriptions)
                .where(_subscriptions.c.id == row_id)
                .values(secret=changed)
            )


def upgrade() -> None:
    with op.batch_alter_table("webhook_subscriptions", schema=None) as batch_op:
        batch_op.alter_column(
            "secret",
            existing_type=sa.String(length=200),
            type_=sa.String(length=300),
            existing_nullable=False,
        )
        batch_op.add_column(sa.Column("previous_secret", sa.String(length=300), nullable=True))
        batch_op.add_column(
            sa.Column("previous_secret_expires_at", Instant(timezone=True), nullable=True)
        )
        batch_op.create_check_constraint(
            "previous_secret",
            "(previous_secret IS NULL) = (previous_secret_expires_at IS NULL)",
        )
    _convert(from_legacy)


def downgrade() -> None:
    _convert(to_legacy)
    with op.batch_alter_table("webhook_subscriptions", schema=None) as batch_op:
        batch_op.drop_constraint("previous_secret", type_="check")
        batch_op.drop_column("previous_secret_expires_at")
        batch_op.drop_column("previous_secret")
        batch_op.alter_column(
            "secret",
            existing_type=sa.String(length=300),
            type_=sa.String(length=200),
            existing_nullable=False,
        )
