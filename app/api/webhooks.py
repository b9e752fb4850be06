"""Webhook subscriptions (admins) and their delivery history."""

from __future__ import annotations

import ipaddress
import secrets
import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Request, Response, status
from pydantic import BaseModel, Field, HttpUrl, field_validator
from sqlalchemy import select

from app.api.deps import (
    DEFAULT_PAGE,
    Allowed,
    Audited,
    Cursor,
    IfMatch,
    Limit,
    Session,
    etag,
    get_settings,
)
from core.outbox.models import Delivery, OutboxEvent, WebhookSubscription
from core.pagination import page
from core.problems import Invalid, ensure_version
from core.repository import get_or_404
from core.schemas import Input, Page

router = APIRouter(prefix="/api/v1", tags=["webhooks"])
EventType = Literal[
    "appointment.booked",
    "appointment.rescheduled",
    "appointment.cancelled",
    "appointment.reminder",
    "authorization.lapsing",
    "alert.opened",
    "waitlist.offer",
]
Secret = Annotated[str, Field(min_length=16, max_length=200, pattern=r"^[\x21-\x7e]+$")]


def _web_url(url: HttpUrl) -> HttpUrl:
    if url.scheme not in ("http", "https") or len(str(url)) > 2000:
        raise ValueError("give an http or https URL of at most 2000 characters")
    return url


class WebhookCreate(Input):
    url: HttpUrl
    event_types: list[EventType] = Field(min_length=1, max_length=7)
    secret: Secret | None = Field(default=None, description="made for you when left out")

    _url = field_validator("url")(_web_url)


class WebhookUpdate(Input):
    url: HttpUrl | None = None
    event_types: list[EventType] | None = Field(default=None, min_length=1, max_length=7)
    active: bool | None = None

    _url = field_validator("url")(_web_url)


class WebhookOut(BaseModel):
    id: uuid.UUID
    url: str
    event_types: list[str]
    active: bool
    created_at: datetime
    version: int


class WebhookCreated(WebhookOut):
    secret: str = Field(description="shown this once: it signs every delivery")


class DeliveryOut(BaseModel):
    id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    occurred_at: datetime
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None


def _reachable(url: HttpUrl, request: Request) -> str:
    """The URL as stored, unless it names a loopback, private or link-local address (and the
    settings do not allow those). Host names are not resolved here: see the closing note."""
    host = (url.host or "").strip("[]").lower()
    private = host == "localhost" or host.endswith(".localhost")
    try:
        address = ipaddress.ip_address(host)
        private = private or not address.is_global
    except ValueError:
        pass
    if private and not get_settings(request).webhook_allow_private:
        raise Invalid("webhooks go to public addresses only")
    return str(url)


def webhook_out(w: WebhookSubscription) -> WebhookOut:
    return WebhookOut(
        id=w.id,
        url=w.url,
        event_types=w.event_types,
        active=w.active,
        created_at=w.created_at,
        version=w.version,
    )


async def _get(session: Session, webhook_id: uuid.UUID) -> WebhookSubscription:
    return await get_or_404(session, WebhookSubscription, webhook_id, "webhook")


@router.post("/webhooks", status_code=status.HTTP_201_CREATED, response_model=WebhookCreated)
async def create_webhook(
    data: WebhookCreate,
    session: Session,
    _: Allowed,
    trail: Audited,
    response: Response,
    request: Request,
) -> WebhookCreated:
    hook = WebhookSubscription(
        id=uuid.uuid4(),
        url=_reachable(data.url, request),
        secret=data.secret or secrets.token_urlsafe(32),
        event_types=sorted(set(data.event_types)),
        active=True,
    )
    session.add(hook)
    await session.flush()
    trail.saw(resource_id=hook.id)
    response.headers["Location"] = f"/api/v1/webhooks/{hook.id}"
    response.headers["ETag"] = etag(hook.version)
    return WebhookCreated(**webhook_out(hook).model_dump(), secret=hook.secret)


@router.get("/webhooks", response_model=list[WebhookOut])
async def list_webhooks(session: Session, _: Allowed) -> list[WebhookOut]:
    hooks = await session.scalars(
        select(WebhookSubscription).order_by(WebhookSubscription.created_at)
    )
    return [webhook_out(h) for h in hooks]


@router.get("/webhooks/{webhook_id}", response_model=WebhookOut)
async def get_webhook(
    webhook_id: uuid.UUID, session: Session, _: Allowed, response: Response
) -> WebhookOut:
    hook = await _get(session, webhook_id)
    response.headers["ETag"] = etag(hook.version)
    return webhook_out(hook)


@router.patch("/webhooks/{webhook_id}", response_model=WebhookOut)
async def update_webhook(
    webhook_id: uuid.UUID,
    data: WebhookUpdate,
    version: IfMatch,
    session: Session,
    _: Allowed,
    response: Response,
    request: Request,
) -> WebhookOut:
    hook = await _get(session, webhook_id)
    ensure_version(hook.version, version, "webhook")
    if data.url is not None:
        hook.url = _reachable(data.url, request)
    if data.event_types is not None:
        hook.event_types = sorted(set(data.event_types))
    if data.active is not None:
        hook.active = data.active
    await session.flush()
    response.headers["ETag"] = etag(hook.version)
    return webhook_out(hook)


@router.get("/webhooks/{webhook_id}/deliveries", response_model=Page[DeliveryOut])
async def list_deliveries(
    webhook_id: uuid.UUID,
    session: Session,
    _: Allowed,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
) -> Page[DeliveryOut]:
    """What was sent to this subscriber, newest first."""
    await _get(session, webhook_id)
    items: list[Delivery]
    items, nxt = await page(
        session,
        select(Delivery).where(Delivery.subscription_id == webhook_id),
        [Delivery.created_at, Delivery.id],
        limit,
        cursor,
        newest_first=True,
    )
    events = {
        e.id: e
        for e in await session.scalars(
            select(OutboxEvent).where(OutboxEvent.id.in_([d.event_id for d in items]))
        )
    }
    return Page[DeliveryOut](
        items=[
            DeliveryOut(
                id=d.id,
                event_id=d.event_id,
                event_type=events[d.event_id].type,
                occurred_at=events[d.event_id].occurred_at,
                status=d.status,
                attempts=d.attempts,
                next_attempt_at=d.next_attempt_at,
                last_status_code=d.last_status_code,
                last_error=d.last_error,
                delivered_at=d.delivered_at,
            )
            for d in items
        ],
        next_cursor=nxt,
    )
