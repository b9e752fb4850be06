"""Throttling sign-in guessers, by account and by client address. Flushes; never commits.

Every attempt is on record before its password is checked, and counts as a failure until it
succeeds: a burst of guesses sent at once sees itself, not only the guesses that finished.
An account or an address with too many in the window is turned away (429) until the oldest
that matter age out; a turned-away attempt is taken off the record, so waiting is enough.
Unknown emails count like known ones, so the answer never tells whether an account exists. A
success clears the account's record; an address's only ages out.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, bindparam, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import SignInFailure
from core.clock import wall_now


@dataclass(frozen=True)
class Limits:
    per_account: int
    per_address: int
    window: timedelta


def account_key(email: str, secret: str) -> bytes:
    """A keyed hash of the email as typed (normalised): the table names no one."""
    message = f"sign-in:{email.strip().lower()}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


def _recent(column: Any) -> Select[datetime]:
    """The newest failures on record for one key (an account or an address)."""
    return (
        select(SignInFailure.at)
        .where(column == bindparam("key"), SignInFailure.at > bindparam("since"))
        .order_by(SignInFailure.at.desc())
        .limit(bindparam("limit"))
    )


_BY_ACCOUNT = _recent(SignInFailure.account)
_BY_ADDRESS = _recent(SignInFailure.address)


def retry_after(recent: list[datetime], limit: int, window: timedelta, now: datetime) -> int:
    """Seconds until fewer than `limit` of the `recent` failures (newest first) are in the
    window: 0 when that is so already. Pure."""
    if len(recent) < limit:
        return 0
    # With the limit-th newest gone, limit - 1 remain.
    return max(1, math.ceil((recent[limit - 1] + window - now).total_seconds()))


async def attempt(session: AsyncSession, account: bytes, address: str) -> uuid.UUID:
    """Put an attempt on record (a failure, until it succeeds); its id."""
    attempt_id = uuid.uuid4()
    row = {"id": attempt_id, "at": wall_now(), "account": account, "address": address}
    await session.execute(insert(SignInFailure), row)
    return attempt_id


async def wait(session: AsyncSession, account: bytes, address: str, limits: Limits) -> int:
    """Seconds the caller must wait before trying to sign in again (0: go ahead). The record
    holds the caller's own attempt too, hence one more than the limit."""
    now = wall_now()
    since = now - limits.window
    waits = []
    for query, key, limit in (
        (_BY_ACCOUNT, account, limits.per_account + 1),
        (_BY_ADDRESS, address, limits.per_address + 1),
    ):
        recent = list(await session.scalars(query, {"key": key, "since": since, "limit": limit}))
        waits.append(retry_after(recent, limit, limits.window, now))
    return max(waits)


async def withdraw(session: AsyncSession, attempt_id: uuid.UUID) -> None:
    """A turned-away attempt leaves the record: it checked no password."""
    await session.execute(delete(SignInFailure).where(SignInFailure.id == attempt_id))


async def succeeded(session: AsyncSession, account: bytes) -> None:
    await session.execute(delete(SignInFailure).where(SignInFailure.account == account))


async def locked_until(
    session: AsyncSession, accounts: dict[bytes, uuid.UUID], limits: Limits
) -> dict[uuid.UUID, datetime]:
    """Which of these accounts (key -> user id) are locked out now, and until when."""
    if not accounts:
        return {}
    now = wall_now()
    rows = await session.execute(
        select(SignInFailure.account, SignInFailure.at)
        .where(SignInFailure.account.in_(list(accounts)), SignInFailure.at > now - limits.window)
        .order_by(SignInFailure.at.desc())
    )
    recent: dict[bytes, list[datetime]] = {}
    for account, at in rows:
        recent.setdefault(account, []).append(at)
    # Locked when one more attempt would be turned away (see `wait`): until the
    # per_account-th newest failure ages out of the window.
    return {
        accounts[account]: times[limits.per_account - 1] + limits.window
        for account, times in recent.items()
        if len(times) >= limits.per_account
    }
