"""Keyset pagination.

The cursor names only the last row's id; the page after it is found by that row's sort key,
read back from the database. Sort keys such as a patient's name never travel in a URL.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Any, TypeVar

from sqlalchemy import Select, bindparam, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from core.problems import Invalid

T = TypeVar("T")
DEFAULT_LIMIT = 50
MAX_LIMIT = 500


def _encode(row_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(row_id.bytes).decode().rstrip("=")


def _decode(cursor: str) -> uuid.UUID:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return uuid.UUID(bytes=raw)
    except (ValueError, binascii.Error) as exc:
        raise Invalid("the cursor is not one this list handed out") from exc


async def page(
    session: AsyncSession,
    query: Select[Any],
    order: list[InstrumentedAttribute[Any]],
    limit: int,
    cursor: str | None,
    *,
    newest_first: bool = False,
) -> tuple[list[T], str | None]:
    """One page of `query` sorted by `order`, whose last column is the entity's unique id;
    `newest_first` sorts every column the other way."""
    id_column = order[-1]
    if cursor:
        last = (await session.execute(select(*order).where(id_column == _decode(cursor)))).first()
        if last is None:
            raise Invalid("the cursor is not one this list handed out")
        after = [bindparam(None, v, type_=c.type) for c, v in zip(order, last, strict=True)]
        if newest_first:
            query = query.where(tuple_(*order) < tuple_(*after))
        else:
            query = query.where(tuple_(*order) > tuple_(*after))
    sort = [c.desc() for c in order] if newest_first else order
    rows: list[T] = list(await session.scalars(query.order_by(*sort).limit(limit + 1)))
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, _encode(getattr(rows[-1], id_column.key))
