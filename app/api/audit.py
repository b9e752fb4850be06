"""The audit trail, for admins: who touched which patient's data, when, and how it ended."""

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
