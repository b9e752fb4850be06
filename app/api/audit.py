"""The audit trail, for admins: who touched which patient's data, when, and how it ended."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter

from app.api.deps import DEFAULT_PAGE, Allowed, Audited, Cursor, Limit, Session
from app.audit import service
from app.audit.models import AuditEvent
from core.schemas import Instant, Output, Page

router = APIRouter(prefix="/api/v1", tags=["audit"])


class AuditEventOut(Output):
    id: uuid.UUID
    at: datetime
    actor_id: uuid.UUID | None
    role: str
    action: str
    patient_id: uuid.UUID | None
    resource_type: str
    resource_id: uuid.UUID | None
    outcome: str
    request_id: str
    client: str | None


def event_out(e: AuditEvent) -> AuditEventOut:
    return AuditEventOut.model_validate(e, from_attributes=True)


@router.get("/audit-events", response_model=Page[AuditEventOut])
async def list_audit_events(
    session: Session,
    _: Allowed,
    trail: Audited,
    patient_id: uuid.UUID | None = None,
    actor_id: uuid.UUID | None = None,
    since: Instant | None = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
) -> Page[AuditEventOut]:
    """Newest first. Reading the trail is itself on the trail."""
    trail.saw(patient_id)
    items, nxt = await service.list_events(
        session, patient_id=patient_id, actor_id=actor_id, since=since, limit=limit, cursor=cursor
    )
    return Page[AuditEventOut](items=[event_out(e) for e in items], next_cursor=nxt)
