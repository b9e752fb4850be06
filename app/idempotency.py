"""Idempotency-Key handling for POSTs that create things.

Everything happens in the request's own transaction: the stored reply is written with the
change it describes, and a request that fails leaves nothing behind, so the client may retry.
On PostgreSQL a transaction-scoped advisory lock on the key tells a retry that arrives while
the first attempt is still running to come back later (409). On SQLite write transactions
run one at a time, so a retry simply finds the first reply.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import IdempotencyRecord
from core import locks
from core.problems import Conflict, Invalid


@dataclass(frozen=True)
class Replay:
    status_code: int
    body: str
    location: str | None


@dataclass(frozen=True)
class Attempt:
    user_id: uuid.UUID
    scope: str
    key: str
    request_hash: str


def attempt(user_id: uuid.UUID, scope: str, key: str, body: bytes) -> Attempt:
    if not 1 <= len(key) <= 200:
        raise Invalid("Idempotency-Key must be 1 to 200 characters")
    return Attempt(user_id, scope, key, hashlib.sha256(body).hexdigest())


async def earlier_reply(session: AsyncSession, a: Attempt) -> Replay | None:
    """The reply to an earlier request with this key, or None when this is the first."""
    if not await locks.idempotency_key(session, a.user_id, a.scope, a.key):
        raise Conflict("a request with this Idempotency-Key is still running; retry shortly")
    existing = await session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.user_id == a.user_id,
            IdempotencyRecord.scope == a.scope,
            IdempotencyRecord.key == a.key,
        )
    )
    if existing is None:
        return None
    if existing.request_hash != a.request_hash:
        raise Invalid("this Idempotency-Key was used with a different request body")
    return Replay(existing.status_code, existing.response_body, existing.location)


async def remember(
    session: AsyncSession, a: Attempt, status_code: int, body: str, location: str | None
) -> None:
    session.add(
        IdempotencyRecord(
            user_id=a.user_id,
            scope=a.scope,
            key=a.key,
            request_hash=a.request_hash,
            status_code=status_code,
            response_body=body,
            location=location,
        )
    )
    await session.flush()
