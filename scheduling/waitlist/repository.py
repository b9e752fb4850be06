"""Queries over waitlist entries. Nothing here commits."""

from __future__ import annotations

import uuid

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from scheduling.waitlist import rank
from scheduling.waitlist.models import WaitlistEntry, WaitlistOffer


def as_ranked(entry: WaitlistEntry) -> rank.Entry:
    return rank.Entry(
        id=entry.id,
        center_id=entry.center_id,
        status=entry.status,
        earliest=entry.earliest,
        latest=entry.latest,
        duration_minutes=entry.duration_minutes,
        chair_kind=entry.chair_kind,
        priority=entry.priority,
        created_at=entry.created_at,
    )


async def fitting(
    session: AsyncSession, opening: rank.Opening, *, offering: uuid.UUID | None = None
) -> list[WaitlistEntry]:
    """The waiting entries the opening fits, in the order it would be offered to them
    (`rank.ranked`). `offering`: the opening (by id) about to be offered: entries holding an
    open offer, and those offered this one before, are left out."""
    query = select(WaitlistEntry).where(
        WaitlistEntry.center_id == opening.center_id,
        WaitlistEntry.status == "waiting",
        WaitlistEntry.earliest <= opening.day,
        WaitlistEntry.latest >= opening.day,
        WaitlistEntry.duration_minutes <= opening.duration_minutes,
        WaitlistEntry.chair_kind == opening.chair_kind,
    )
    if offering is not None:
        holding = exists().where(
            WaitlistOffer.entry_id == WaitlistEntry.id, WaitlistOffer.status == "open"
        )
        tried = exists().where(
            WaitlistOffer.entry_id == WaitlistEntry.id, WaitlistOffer.opening_id == offering
        )
        query = query.where(~holding, ~tried)
    candidates = list(await session.scalars(query))
    by_id = {e.id: e for e in candidates}
    return [by_id[e.id] for e in rank.ranked(opening, map(as_ranked, candidates))]
