"""The audit trail filtered by resource type and action: an index, so a rare one (an unlock,
a job run by hand) is found without reading the whole trail.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_audit_events_resource", "audit_events", ["resource_type", "action", "at"])


def downgrade() -> None:
    op.drop_index("ix_audit_events_resource", table_name="audit_events")
