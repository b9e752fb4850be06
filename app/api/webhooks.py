"""Webhook subscriptions (admins), their secrets and their delivery history. Deliveries follow
Standard Webhooks (`core.outbox.signing`): a receiver verifies them with any of its libraries."""

from __future__ import annotations

import ipaddress
import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request, Response, status
from pydantic import AfterValidator, BaseModel, Field, HttpUrl, field_validator
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
from app.api.errors import PROBLEM_JSON
from core.clock import wall_now
from core.outbox import signing
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
Secret = Annotated[
    str,
    Field(
        # whsec_ + base64 of 24 to 64 bytes: 32 to 88 characters of it, padding included
        min_length=38,
        max_length=94,
        pattern=r"^whsec_[A-Za-z0-9+/]+={0,2}$",
        description="`whsec_` + standard base64 of a random key of 24 to 64 bytes",
    ),
    AfterValidator(signing.check_secret),
]
OVERLAP_DEFAULT = 1440  # a day: time enough for a receiver to take up the new secret
OVERLAP_MAX = 10080  # a week
# What If-Match adds to a POST's answers (the document lists them for PATCH by itself).
IF_MATCH_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemDetail"}}},
    }
    for code, description in ((412, "Stale If-Match"), (428, "If-Match required"))
}


def _web_url(url: HttpUrl) -> HttpUrl:
    if url.scheme not in ("http", "https") or len(str(url)) > 2000:
        raise ValueError("give an http or https URL of at most 2000 characters")
    return url


class WebhookCreate(Input):
    url: HttpUrl
    event_types: list[EventType] = Field(min_length=1, max_length=7)
    secret: Secret | None = Field(
        default=None, description="made for you (32 random bytes) when left out"
    )

    _url = field_validator("url")(_web_url)


class WebhookUpdate(Input):
    url: HttpUrl | None = None
    event_types: list[EventType] | None = Field(default=None, min_length=1, max_length=7)
    active: bool | None = None

    _url = field_validator("url")(_web_url)


class SecretRotation(Input):
    secret: Secret | None = Field(
        default=None, description="the new secret; made for you (32 random bytes) when left out"
    )
    overlap_minutes: int = Field(
        default=OVERLAP_DEFAULT,
        ge=0,
        le=OVERLAP_MAX,
        description="how long deliveries are signed with the old secret too (0: not at all)",
    )


class WebhookOut(BaseModel):
    id: uuid.UUID
    url: str
    event_types: list[str]
    active: bool
    created_at: datetime
    version: int
    previous_secret_expires_at: datetime | None = Field(
        description="while a rotation's overlap lasts: when deliveries stop being signed with "
        "the secret it replaced as well; null otherwise"
    )


class WebhookCreated(WebhookOut):
    secret: str = Field(description="shown this once: it signs every delivery (`whsec_…`)")


class SecretRotated(WebhookOut):
    secret: str = Field(description="the new secret, shown this once (`whsec_…`)")


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
    until = w.previous_secret_expires_at
    return WebhookOut(
        id=w.id,
        url=w.url,
        event_types=w.event_types,
        active=w.active,
        created_at=w.created_at,
        version=w.version,
        # Deliveries go by the real time, and so does the overlap (core.clock.wall_now).
        previous_secret_expires_at=until if until is not None and until > wall_now() else None,
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
    """Subscribe a receiver to event types (admin). Returns the signing secret, this once:
    the one given (`whsec_` + base64 of 24 to 64 bytes) or a new one. 422 for a URL that is not
    http(s), a private or loopback address (unless the settings allow them), or a secret not
    in that form (the error names `secret`, never repeats it)."""
    hook = WebhookSubscription(
        id=uuid.uuid4(),
        url=_reachable(data.url, request),
        secret=data.secret or signing.new_secret(),
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
    """Every webhook subscription, oldest first (admin); secrets are never shown again."""
    hooks = await session.scalars(
        select(WebhookSubscription).order_by(WebhookSubscription.created_at)
    )
    return [webhook_out(h) for h in hooks]


@router.get("/webhooks/{webhook_id}", response_model=WebhookOut)
async def get_webhook(
    webhook_id: uuid.UUID, session: Session, _: Allowed, response: Response
) -> WebhookOut:
    """One webhook subscription, with its `ETag` (admin). 404 when there is none."""
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
    """Change a subscription's URL or event types, or pause it (`active: false`; nothing is
    sent meanwhile) (admin). Needs `If-Match`: 428 without it, 412 when stale; 404 when there
    is none; 422 as on create."""
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


@router.post(
    "/webhooks/{webhook_id}/rotate-secret",
    response_model=SecretRotated,
    responses=IF_MATCH_ERRORS,
)
async def rotate_webhook_secret(
    webhook_id: uuid.UUID,
    data: SecretRotation,
    version: IfMatch,
    session: Session,
    _: Allowed,
    trail: Audited,
    response: Response,
) -> SecretRotated:
    """Give a subscription a new signing secret (admin), returned this once: the one given
    or a new one. For `overlap_minutes` (default a day, at most a week) every delivery is signed
    with both, the new one first, so the receiver can switch over without missing one; then
    with the new one only. A rotation during an overlap ends the older secret's at once: only
    the last two are ever in use. Needs `If-Match` (428 without it, 412 when stale); 404 when
    there is none; 422 for a secret not in the `whsec_` form, or the current one again."""
    hook = await _get(session, webhook_id)
    ensure_version(hook.version, version, "webhook")
    trail.saw(resource_id=hook.id)
    new = data.secret or signing.new_secret()
    if signing.key_of(new) == signing.key_of(hook.secret):
        raise Invalid(
            "the new secret must differ from the current one",
            errors=[
                {
                    "loc": ["body", "secret"],
                    "msg": "this is the current secret",
                    "type": "value_error",
                }
            ],
        )
    if data.overlap_minutes > 0:
        hook.previous_secret = hook.secret
        hook.previous_secret_expires_at = wall_now() + timedelta(minutes=data.overlap_minutes)
    else:
        hook.previous_secret = hook.previous_secret_expires_at = None
    hook.secret = new
    await session.flush()
    response.headers["ETag"] = etag(hook.version)
    return SecretRotated(**webhook_out(hook).model_dump(), secret=hook.secret)


@router.get("/webhooks/{webhook_id}/deliveries", response_model=Page[DeliveryOut])
async def list_deliveries(
    webhook_id: uuid.UUID,
    session: Session,
    _: Allowed,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
) -> Page[DeliveryOut]:
    """What was sent to this subscriber, newest first, with each delivery's attempts and last
    answer (admin). 404 when there is no such subscription."""
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
