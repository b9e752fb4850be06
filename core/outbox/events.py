"""Writing events to the outbox, in the caller's transaction. Flushes nothing of its own."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from core import appends
from core.clock import wall_now
from core.outbox.models import OutboxEvent

# Built once: a statement built per call is compiled per call (bookings emit one each).


def _plain(value: Any) -> Any:
    """JSON-ready: ids and instants as strings."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


def _row(event_type: str, data: Mapping[str, Any], dedupe_key: str | None) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "type": event_type,
        "occurred_at": wall_now(),
        "data": {k: _plain(v) for k, v in data.items()},
        "dedupe_key": dedupe_key,
        "fanned_out": False,
    }


async def emit(session: AsyncSession, event_type: str, /, **data: Any) -> None:
    """Record that something happened; it is delivered after the transaction commits (and not
    at all if it rolls back). Ids and times only: never a name, a diagnosis or a dose. The
    row is written as the transaction commits (`core.appends`)."""
    await appends.add(session, OutboxEvent, _row(event_type, data, None))


async def emit_once(
    session: AsyncSession, event_type: str, dedupe_key: str, /, **data: Any
) -> bool:
    """Like `emit`, for an event that must happen once (a reminder): False if it already did."""
    dialect = session.get_bind().dialect.name
    build = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = build(OutboxEvent).on_conflict_do_nothing(index_elements=["dedupe_key"])
    result = await session.execute(statement.values(**_row(event_type, data, dedupe_key)))
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]


async def emit_many(
    session: AsyncSession, event_type: str, items: Sequence[Mapping[str, Any]]
) -> None:
    """Like `emit`, for many events of one type in one statement."""
    await appends.add_all(session, OutboxEvent, rows(event_type, items))


def rows(event_type: str, items: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Outbox rows for many events at once (the sweep opens alerts by the thousand)."""
    return [_row(event_type, item, None) for item in items]
