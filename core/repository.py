"""Reading one row by id: the shared shape of every `get_*` in the domains."""

from __future__ import annotations

import uuid
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from core.problems import NotFound

M = TypeVar("M")


async def get_or_404(session: AsyncSession, model: type[M], row_id: uuid.UUID, what: str) -> M:
    """The row, or NotFound ("no such `what`"), which the API answers with 404."""
    row = await session.get(model, row_id)
    if row is None:
        raise NotFound(f"no such {what}")
    return row
