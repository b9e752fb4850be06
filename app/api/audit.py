"""The audit trail, for admins: who touched which patient's data, when, and how it ended; and
how often each client address was refused before anyone signed in."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter
from pydantic import StringConstraints

from app.api.deps import DEFAULT_PAGE, Allowed, Audited, Cursor, Limit, Session
from app.audit import service
from app.audit.models import AuditEvent
from app.auth import service as auth
from core.problems import Invalid
from core.schemas import Instant, Output, Page

router = APIRouter(prefix="/api/v1", tags=["audit"])

# What the trail's events can say (the policy table's audit actions and resource types).
AuditAction = Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,20}$")]
ResourceType = Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,40}$")]
# A client address as the server saw it (IPv4, IPv6, or "unknown").
ClientAddress = Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z.:%_-]{1,64}$")]


class AuditEventOut(Output):
    id: uuid.UUID
    at: datetime
    actor_id: uuid.UUID | None
    actor_email: str | None
    role: str
    action: str
    patient_id: uuid.UUID | None
    resource_type: str
    resource_id: uuid.UUID | None
    outcome: str
    request_id: str
    client: str | None


def event_out(e: AuditEvent, emails: dict[uuid.UUID, str]) -> AuditEventOut:
    email = emails.get(e.actor_id) if e.actor_id is not None else None
    return AuditEventOut.model_validate(
        {c.key: getattr(e, c.key) for c in AuditEvent.__table__.columns} | {"actor_email": email}
    )


@router.get("/audit-events", response_model=Page[AuditEventOut])
async def list_audit_events(
    session: Session,
    _: Allowed,
    trail: Audited,
    patient_id: uuid.UUID | None = None,
    actor_id: uuid.UUID | None = None,
    action: AuditAction | None = None,
    resource_type: ResourceType | None = None,
    since: Instant | None = None,
    until: Instant | None = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
) -> Page[AuditEventOut]:
    """Newest first; `since` inclusive, `until` exclusive. Reading the trail is itself on
    the trail."""
    if since is not None and until is not None and until <= since:
        raise Invalid("until must be after since")
    trail.saw(patient_id)
    items, nxt = await service.list_events(
        session,
        patient_id=patient_id,
        actor_id=actor_id,
        since=since,
        limit=limit,
        cursor=cursor,
        action=action,
        resource_type=resource_type,
        until=until,
    )
    emails = await auth.emails_of(session, {e.actor_id for e in items if e.actor_id is not None})
    return Page[AuditEventOut](items=[event_out(e, emails) for e in items], next_cursor=nxt)


class RefusalTallyOut(Output):
    id: uuid.UUID
    client: str
    minute: datetime
    count: int
    events: int
    first_request_id: str
    last_at: datetime


@router.get("/audit/refusals", response_model=Page[RefusalTallyOut])
async def list_refusals(
    session: Session,
    _: Allowed,
    client: ClientAddress | None = None,
    since: Instant | None = None,
    until: Instant | None = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
) -> Page[RefusalTallyOut]:
    """Requests refused before anyone signed in (no credential, a bad or expired one), one
    row per client address and minute with their count; newest minute first, `since`
    inclusive and `until` exclusive on the minute's start. Reading them is on the trail."""
    if since is not None and until is not None and until <= since:
        raise Invalid("until must be after since")
    items, nxt = await service.list_refusals(
        session, client=client, since=since, until=until, limit=limit, cursor=cursor
    )
    return Page[RefusalTallyOut](
        items=[RefusalTallyOut.model_validate(t) for t in items], next_cursor=nxt
    )
