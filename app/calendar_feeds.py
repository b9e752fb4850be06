"""Calendar feed links: a revocable, read-only secret per patient. Flushes; never commits.

The link's secret is the feed's id and a MAC of it under the server's key: nothing secret is
stored, the same link comes back while the feed lives, and revoking the feed (or changing the
key) kills the link. A bearer token never goes in a URL; this secret reads one feed and
nothing else.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import uuid

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import CalendarFeed
from core.clock import wall_now
from core.problems import NotFound

_SECRET = re.compile(r"([0-9a-f]{32})([0-9a-f]{40})")


def secret_of(feed_id: uuid.UUID, key: str) -> str:
    mac = hmac.new(key.encode(), f"calendar-feed:{feed_id.hex}".encode(), hashlib.sha256)
    return feed_id.hex + mac.hexdigest()[:40]


async def live_feed(session: AsyncSession, patient_id: uuid.UUID) -> CalendarFeed:
    """The patient's feed, made on first asking."""
    feed = await _live(session, patient_id)
    if feed is not None:
        return feed
    feed = CalendarFeed(id=uuid.uuid4(), patient_id=patient_id)
    session.add(feed)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:  # made by a request racing this one: theirs is the one
        found = await _live(session, patient_id)
        assert found is not None
        return found
    return feed


async def revoke(session: AsyncSession, patient_id: uuid.UUID) -> bool:
    """Kill the patient's link; False if there was none."""
    result = await session.execute(
        update(CalendarFeed)
        .where(CalendarFeed.patient_id == patient_id, CalendarFeed.revoked_at.is_(None))
        .values(revoked_at=wall_now())
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def feed_of(session: AsyncSession, secret: str, key: str) -> CalendarFeed:
    """The live feed a link's secret opens (404 for anything else, alike)."""
    match = _SECRET.fullmatch(secret)
    if match is None:
        raise NotFound("no such calendar")
    feed_id = uuid.UUID(hex=match.group(1))
    if not hmac.compare_digest(secret_of(feed_id, key), secret):
        raise NotFound("no such calendar")
    feed = await session.get(CalendarFeed, feed_id)
    if feed is None or feed.revoked_at is not None:
        raise NotFound("no such calendar")
    return feed


async def _live(session: AsyncSession, patient_id: uuid.UUID) -> CalendarFeed | None:
    found: CalendarFeed | None = await session.scalar(
        select(CalendarFeed).where(
            CalendarFeed.patient_id == patient_id, CalendarFeed.revoked_at.is_(None)
        )
    )
    return found
