"""Writing and reading the audit trail. Flushes; never commits. Nothing here updates or
deletes an event: the table is append-only, and the database enforces it. The tallies of
refusals of those not signed in only ever count up."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, fields
from datetime import datetime

from sqlalchemy import Insert, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEvent, RefusalTally
from core import appends
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
    # Set by the request's unit of work: adds its success event to what the transaction
    # writes (see `record_now`).
    on_success: Callable[[], Awaitable[None]] | None = field(default=None, repr=False)
    recorded: bool = False

    async def record_now(self) -> None:
        """Record the request's success now, before its last read, so that the read carries
        the event (`core.appends.riding`): one round trip instead of two. Only for a route
        whose answer cannot fail after that read; if it did, its failure would be recorded
        too, beside this."""
        if self.on_success is not None and not self.recorded:
            await self.on_success()
            self.recorded = True

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


async def record(session: AsyncSession, entry: Entry) -> None:
    """The event is written as the transaction commits (`core.appends`), with the rest of
    what the request only added."""
    row = {name: getattr(entry, name) for name in _FIELDS}  # asdict() deep-copies: slow
    await appends.add(session, AuditEvent, {"id": uuid.uuid4(), "at": wall_now(), **row})


_FIELDS = tuple(f.name for f in fields(Entry))


def _tally_upsert(dialect: str) -> Insert:
    """One more refusal on its address's row for the minute, made by the first: one atomic
    statement (INSERT ... ON CONFLICT DO UPDATE), so concurrent refusals, from any number of
    processes, each count once."""
    made = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(RefusalTally)
    return made.on_conflict_do_update(
        index_elements=[RefusalTally.client, RefusalTally.minute],
        set_={"count": RefusalTally.count + 1, "last_at": made.excluded.last_at},
    ).returning(RefusalTally.id)


_TALLY = {dialect: _tally_upsert(dialect) for dialect in ("postgresql", "sqlite")}
# One more of the minute's refusals on the trail, while fewer than `most` are. The upsert
# before it holds the row (PostgreSQL's row lock, SQLite's write lock), so two refusals
# cannot both take the last place.
_ONE_MORE_EVENT = (
    update(RefusalTally)
    .where(RefusalTally.id == bindparam("tally"), RefusalTally.events < bindparam("most"))
    .values(events=RefusalTally.events + 1)
    .returning(RefusalTally.id)
)


async def tally_refusal(
    session: AsyncSession, client: str, request_id: str, *, events: int = 0
) -> bool:
    """Count a refusal of someone not signed in against `client`'s tally for this minute.
    Whether it should be an audit event of its own too: so when it is among the first
    `events` of the minute that asked to be (those on audited routes)."""
    now = wall_now()
    row = {
        "id": uuid.uuid4(),
        "client": client,
        "minute": now.replace(second=0, microsecond=0),
        "count": 1,
        "events": 0,
        "first_request_id": request_id,
        "last_at": now,
    }
    upsert = _TALLY[session.get_bind().dialect.name]
    tally = (await session.execute(upsert, row)).scalar_one()
    if events <= 0:
        return False
    taken = await session.execute(_ONE_MORE_EVENT, {"tally": tally, "most": events})
    return taken.first() is not None


async def list_refusals(
    session: AsyncSession,
    *,
    client: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[RefusalTally], str | None]:
    """Newest minute first; `since` inclusive, `until` exclusive (on the minute's start)."""
    query = select(RefusalTally)
    if client is not None:
        query = query.where(RefusalTally.client == client)
    if since is not None:
        query = query.where(RefusalTally.minute >= since)
    if until is not None:
        query = query.where(RefusalTally.minute < until)
    return await page(
        session, query, [RefusalTally.minute, RefusalTally.id], limit, cursor, newest_first=True
    )


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
