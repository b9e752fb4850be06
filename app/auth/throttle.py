"""Throttling sign-in guessers, by account and by client address. Flushes; never commits.

Failed sign-ins are kept for a window; an account or an address with too many of them in it
is turned away (429) until the oldest that matter age out. Unknown emails count like known
ones, so the answer never tells whether an account exists. A success clears the account's
failures; an address's failures only age out.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import SignInFailure
from app.db import utcnow


@dataclass(frozen=True)
class Limits:
    per_account: int
    per_address: int
    window: timedelta


def account_key(email: str, secret: str) -> bytes:
    """A keyed hash of the email as typed (normalised): the table names no one."""
    message = f"sign-in:{email.strip().lower()}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


_BY_ACCOUNT = (
    select(SignInFailure.at)
    .where(SignInFailure.account == bindparam("key"), SignInFailure.at > bindparam("since"))
    .order_by(SignInFailure.at.desc())
    .limit(bindparam("limit"))
)
_BY_ADDRESS = (
    select(SignInFailure.at)
    .where(SignInFailure.address == bindparam("key"), SignInFailure.at > bindparam("since"))
    .order_by(SignInFailure.at.desc())
    .limit(bindparam("limit"))
)


def retry_after(recent: list[datetime], limit: int, window: timedelta, now: datetime) -> int:
    """Seconds until fewer than `limit` of the `recent` failures (newest first) are in the
    window: 0 when that is so already. Pure."""
    if len(recent) < limit:
        return 0
    # With the limit-th newest gone, limit - 1 remain.
    return max(1, math.ceil((recent[limit - 1] + window - now).total_seconds()))


async def wait(session: AsyncSession, account: bytes, address: str, limits: Limits) -> int:
    """Seconds the caller must wait before trying to sign in again (0: go ahead)."""
    now = utcnow()
    since = now - limits.window
    waits = []
    for query, key, limit in (
        (_BY_ACCOUNT, account, limits.per_account),
        (_BY_ADDRESS, address, limits.per_address),
    ):
        recent = list(await session.scalars(query, {"key": key, "since": since, "limit": limit}))
        waits.append(retry_after(recent, limit, limits.window, now))
    return max(waits)


async def failed(session: AsyncSession, account: bytes, address: str) -> None:
    await session.execute(
        insert(SignInFailure), {"at": utcnow(), "account": account, "address": address}
    )


async def succeeded(session: AsyncSession, account: bytes) -> None:
    await session.execute(delete(SignInFailure).where(SignInFailure.account == account))
