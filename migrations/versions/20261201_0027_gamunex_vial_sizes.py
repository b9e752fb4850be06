"""Gamunex-C's vial sizes as its label gives them: 1, 2.5, 5, 10, 20 and 40 g (the catalog was
seeded with 5, 10, 20 and 40 g only, so small doses and top-ups planned on too few sizes). A
center that has edited the sizes keeps its own.

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEEDED: list[float] = [5, 10, 20, 40]
LABEL: list[float] = [1, 2.5, 5, 10, 20, 40]


def _resize(before: list[float], after: list[float]) -> None:
    products = sa.table(
        "products",
        sa.column("id", sa.Uuid()),
        sa.column("hcpcs_code", sa.String()),
        sa.column("vial_sizes_g", sa.JSON()),
    )
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(products.c.id, products.c.vial_sizes_g).where(products.c.hcpcs_code == "J1561")
    )
    for product_id, sizes in rows.all():
        if [float(s) for s in sizes] == [float(s) for s in before]:
            bind.execute(
                products.update().where(products.c.id == product_id).values(vial_sizes_g=after)
            )


def upgrade() -> None:
    _resize(SEEDED, LABEL)


def downgrade() -> None:
    _resize(LABEL, SEEDED)
