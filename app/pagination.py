"""Keyset pagination: the cursor is the sort key of the last row of the previous page."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Select, bindparam, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.problems import Invalid

T = TypeVar("T")
DEFAULT_LIMIT = 50
MAX_LIMIT = 500


def _encode(values: Sequence[Any]) -> str:
    plain = [v if isinstance(v, str) else str(v) for v in values]
    return base64.urlsafe_b64encode(json.dumps(plain).encode()).decode().rstrip("=")


def _decode(cursor: str, kinds: Sequence[Callable[[Any], Any]]) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        raw = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(raw, list) or len(raw) != len(kinds):
            raise ValueError("shape")
        if not all(isinstance(v, str) for v in raw):
            raise ValueError("values")
        return [kind(v) for kind, v in zip(kinds, raw, strict=True)]
    except (ValueError, TypeError, AttributeError, OverflowError) as exc:
        raise Invalid("the cursor is not one this list handed out") from exc


async def page(
    session: AsyncSession,
    query: Select[Any],
    keys: Sequence[Any],
    kinds: Sequence[Callable[[Any], Any]],
    key_of: Callable[[T], Sequence[Any]],
    limit: int,
    cursor: str | None,
) -> tuple[list[T], str | None]:
    """One page of `query` ordered by `keys` (the last key must be unique, e.g. the id)."""
    if cursor:
        after = [
            bindparam(None, v, type_=k.type)
            for k, v in zip(keys, _decode(cursor, kinds), strict=True)
        ]
        query = query.where(tuple_(*keys) > tuple_(*after))
    rows: list[T] = list(await session.scalars(query.order_by(*keys).limit(limit + 1)))
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, _encode(key_of(rows[-1]))


def parse_datetime(value: Any) -> datetime:
    parsed = datetime.fromisoformat(str(value))
    if parsed.tzinfo is None:
        raise ValueError("cursor instants carry an offset")
    parsed.astimezone(UTC)  # OverflowError at the ends of the calendar
    return parsed
