"""Idempotency-Key handling for POSTs that create things.

The key is claimed in its own short transaction, so a retry that arrives while the first
request is still running finds the claim and gets 409 instead of waiting or booking twice.
The reply is stored in the same transaction as the change it describes; if that transaction
fails the claim is released and the client may retry.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import IdempotencyRecord
from app.db import Database, utcnow
from app.problems import Conflict, Invalid

ABANDONED_AFTER = timedelta(minutes=2)


@dataclass(frozen=True)
class Replay:
    status_code: int
    body: str
    location: str | None


@dataclass(frozen=True)
class Claim:
    record_id: uuid.UUID


def request_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


async def claim(
    db: Database, user_id: uuid.UUID, scope: str, key: str, digest: str
) -> Claim | Replay:
    if not 1 <= len(key) <= 200:
        raise Invalid("Idempotency-Key must be 1 to 200 characters")
    record_id = uuid.uuid4()
    try:
        async with db.unit_of_work() as session:
            session.add(
                IdempotencyRecord(
                    id=record_id, user_id=user_id, scope=scope, key=key, request_hash=digest
                )
            )
        return Claim(record_id)
    except IntegrityError:
        pass
    async with db.unit_of_work(write=False) as session:
        existing = await session.scalar(
            select(IdempotencyRecord).where(
                IdempotencyRecord.user_id == user_id,
                IdempotencyRecord.scope == scope,
                IdempotencyRecord.key == key,
            )
        )
    if existing is None:  # released between our insert and our read: let the client retry
        raise Conflict("a request with this Idempotency-Key is still running; retry shortly")
    if existing.request_hash != digest:
        raise Invalid("this Idempotency-Key was used with a different request body")
    if existing.status_code is None or existing.response_body is None:
        if existing.created_at < utcnow() - ABANDONED_AFTER:
            # The first attempt died without answering (e.g. its commit failed): start over.
            await release(db, Claim(existing.id))
            return await claim(db, user_id, scope, key, digest)
        raise Conflict("a request with this Idempotency-Key is still running; retry shortly")
    return Replay(existing.status_code, existing.response_body, existing.location)


async def remember(
    session: AsyncSession, claimed: Claim, status_code: int, body: str, location: str | None
) -> None:
    """Store the reply inside the request's own transaction."""
    await session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.id == claimed.record_id)
        .values(status_code=status_code, response_body=body, location=location)
    )


async def release(db: Database, claimed: Claim) -> None:
    async with db.unit_of_work() as session:
        await session.execute(
            delete(IdempotencyRecord).where(IdempotencyRecord.id == claimed.record_id)
        )
