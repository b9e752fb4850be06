"""Writing and reading the audit trail. Flushes; never commits. Nothing here updates or
deletes an event: the table is append-only, and the database enforces it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, fields
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEvent
from core.clock import wall_now
from core.pagination import page


@dataclass
class Trail:
    """What one request touched, for its audit event: the route says so once it knows (the
    patient whose record it read, the resource it made). `credential` names who asked when no
    one signed in (a calendar feed's secret)."""

    patient_id: uuid.UUID | None = None
    resource_id: uuid.UUID | None = None
    credential: str = "anonymous"

    def saw(
        self, patient_id: uuid.UUID | None = None, resource_id: uuid.UUID | None = None
    ) -> None:
        self.patient_id = patient_id
        self.resource_id = resource_id


@dataclass(frozen=True)
class Entry:
    actor_id: uuid.UUID | None
    role: str
    action: str
    patient_id: uuid.UUID | None
    resource_type: str
    resource_id: uuid.UUID | None
    outcome: str
    request_id: str
    client: str | None


_INSERT = insert(AuditEvent)


async def record(session: AsyncSession, entry: Entry) -> None:
    row = {name: getattr(entry, name) for name in _FIELDS}  # asdict() deep-copies: slow
    await session.execute(_INSERT, {"id": uuid.uuid4(), "at": wall_now(), **row})


_FIELDS = tuple(f.name for f in fields(Entry))


async def list_events(
    session: AsyncSession,
    *,
    patient_id: uuid.UUID | None,
    actor_id: uuid.UUID | None,
    since: datetime | None,
    limit: int,
    cursor: str | None,
    action: str | None = None,
    resource_type: str | None = None,
    until: datetime | None = None,
) -> tuple[list[AuditEvent], str | None]:
    """Newest first; `since` inclusive, `until` exclusive."""
    query = select(AuditEvent)
    if patient_id is not None:
        query = query.where(AuditEvent.patient_id == patient_id)
    if actor_id is not None:
        query = query.where(AuditEvent.actor_id == actor_id)
    if action is not None:
        query = query.where(AuditEvent.action == action)
    if resource_type is not None:
        query = query.where(AuditEvent.resource_type == resource_type)
    if since is not None:
        query = query.where(AuditEvent.at >= since)
    if until is not None:
        query = query.where(AuditEvent.at < until)
    return await page(
        session, query, [AuditEvent.at, AuditEvent.id], limit, cursor, newest_first=True
    )
