"""Delivering outbox events to webhook subscribers: signed the Standard Webhooks way
(`signing`), retried with exponential backoff while the receiver is down or refuses, and never
sent again once acknowledged (2xx)."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select, update

from core.clock import wall_now
from core.db import Database
from core.outbox import signing
from core.outbox.models import Delivery, OutboxEvent, WebhookSubscription

log = logging.getLogger("chairside.webhooks")
MAX_ATTEMPTS = 40  # with the 1 h cap, more than a day and a half of trying
CLAIM = timedelta(seconds=60)  # a delivery being sent is not picked up again meanwhile
SEND_LIMIT = 20.0  # seconds a receiver gets, all told: well inside the claim
BATCH = 200


def backoff(attempts: int, base_seconds: float) -> timedelta:
    """The wait before the next attempt: doubling from `base_seconds`, at most an hour."""
    return timedelta(seconds=min(base_seconds * 2 ** max(attempts - 1, 0), 3600))


async def fan_out(db: Database) -> int:
    """Make a delivery of each new event for every active subscription that wants its type."""
    made = 0
    async with db.unit_of_work() as session:
        pending = list(
            await session.scalars(
                select(OutboxEvent)
                .where(OutboxEvent.fanned_out.is_(False))
                .order_by(OutboxEvent.occurred_at)
                .limit(5000)
            )
        )
        if not pending:
            return 0
        subscriptions = list(
            await session.scalars(
                select(WebhookSubscription).where(WebhookSubscription.active.is_(True))
            )
        )
        if not subscriptions:  # nobody listens: these events reach no one, now or later
            await session.execute(
                update(OutboxEvent).where(OutboxEvent.fanned_out.is_(False)).values(fanned_out=True)
            )
            return 0
        for event in pending:
            for sub in subscriptions:
                # A subscriber hears what happens from the moment it subscribed.
                if event.type in sub.event_types and sub.created_at <= event.occurred_at:
                    session.add(
                        Delivery(id=uuid.uuid4(), event_id=event.id, subscription_id=sub.id)
                    )
                    made += 1
            event.fanned_out = True
    return made


async def send_due(db: Database, client: httpx.AsyncClient, retry_seconds: float) -> dict[str, int]:
    """Send the deliveries that are due, each claimed first, its outcome kept afterwards; no
    transaction stays open while a receiver answers."""
    now = wall_now()
    counts = {"sent": 0, "delivered": 0, "retrying": 0, "failed": 0}
    async with db.unit_of_work(write=False) as session:
        due = (
            await session.execute(
                select(Delivery.id, Delivery.subscription_id, OutboxEvent, WebhookSubscription.url)
                .join(OutboxEvent, OutboxEvent.id == Delivery.event_id)
                .join(WebhookSubscription, WebhookSubscription.id == Delivery.subscription_id)
                .where(
                    Delivery.status == "pending",
                    Delivery.next_attempt_at <= now,
                    WebhookSubscription.active.is_(True),
                )
                .order_by(Delivery.next_attempt_at)
                .limit(BATCH)
            )
        ).all()
    base = retry_seconds
    for delivery_id, subscription_id, event, url in due:
        signing_with = await _claim(db, delivery_id, subscription_id)
        if signing_with is None:
            continue  # another sender has it
        counts["sent"] += 1
        code, error = await _post(client, url, signing_with, event)
        async with db.unit_of_work() as session:
            delivery = await session.get(Delivery, delivery_id, with_for_update=True)
            assert delivery is not None
            if delivery.status != "pending":
                continue  # settled meanwhile: an acknowledgement is never overwritten
            delivery.attempts += 1
            delivery.last_status_code, delivery.last_error = code, error
            if code is not None and 200 <= code < 300:
                delivery.status, delivery.delivered_at = "delivered", wall_now()
                counts["delivered"] += 1
            elif delivery.attempts >= MAX_ATTEMPTS:
                delivery.status = "failed"
                counts["failed"] += 1
            else:
                delivery.next_attempt_at = wall_now() + backoff(delivery.attempts, base)
                counts["retrying"] += 1
    return counts


async def _claim(
    db: Database, delivery_id: uuid.UUID, subscription_id: uuid.UUID
) -> list[str] | None:
    """Take the delivery for this sender (None: another has it) and read the secrets to sign
    it with as they are now, so that a secret rotated since the batch was read is honoured."""
    async with db.unit_of_work() as session:
        now = wall_now()  # now, not when the batch began: the claim must outlast this send
        claimed = await session.execute(
            update(Delivery)
            .where(
                Delivery.id == delivery_id,
                Delivery.status == "pending",
                Delivery.next_attempt_at <= now,
            )
            .values(next_attempt_at=now + CLAIM)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return None
        current, previous, until = (
            await session.execute(
                select(
                    WebhookSubscription.secret,
                    WebhookSubscription.previous_secret,
                    WebhookSubscription.previous_secret_expires_at,
                ).where(WebhookSubscription.id == subscription_id)
            )
        ).one()
        return signing.signing_secrets(current, previous, until, now)


def body_of(event: OutboxEvent) -> bytes:
    payload: dict[str, Any] = {
        "id": str(event.id),
        "type": event.type,
        "occurred_at": event.occurred_at.isoformat(),
        "data": event.data,
    }
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


async def _post(
    client: httpx.AsyncClient, url: str, secrets: list[str], event: OutboxEvent
) -> tuple[int | None, str | None]:
    body = body_of(event)
    # The event's id: the same on every attempt, so receivers can drop a repeat. The
    # timestamp is this attempt's, the real time (receivers refuse one far from their clock).
    headers = {
        "Content-Type": "application/json",
        **signing.headers(secrets, str(event.id), int(wall_now().timestamp()), body),
    }
    try:
        response = await asyncio.wait_for(
            client.post(url, content=body, headers=headers), SEND_LIMIT
        )
    except Exception as exc:  # any failure to get an answer is one failed attempt
        return None, type(exc).__name__
    return response.status_code, None


async def deliver(
    db: Database, retry_seconds: float, client: httpx.AsyncClient | None = None
) -> dict[str, int]:
    """The delivery job: fan out new events, then send what is due. `retry_seconds`: the
    first wait after a failed attempt (it doubles with each)."""
    made = await fan_out(db)
    if client is not None:
        counts = await send_due(db, client, retry_seconds)
    else:
        async with httpx.AsyncClient(timeout=10, follow_redirects=False) as own:
            counts = await send_due(db, own, retry_seconds)
    return {"fanned_out": made, **counts}
