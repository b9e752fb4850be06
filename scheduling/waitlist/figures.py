"""What the waitlist recovered at a center: of the openings starting on its local days
`first`..`last`, how many were offered and filled, how fast, and the chair hours won back."""

from __future__ import annotations

import statistics
import uuid
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.problems import Invalid
from scheduling.centers.models import Center
from scheduling.localtime import day_bounds, zone
from scheduling.waitlist.models import WaitlistOffer, WaitlistOpening

MOST_DAYS = 366


@dataclass(frozen=True)
class Figures:
    openings: int
    offered: int
    offers: int
    filled: int
    fill_rate: float | None
    median_minutes_to_fill: float | None
    chair_hours_recovered: float


async def figures(session: AsyncSession, center_id: uuid.UUID, first: date, last: date) -> Figures:
    """422 for an unknown center, or a period that ends before it starts or spans more than
    a year."""
    if first > last:
        raise Invalid("from: after to")
    if (last - first).days >= MOST_DAYS:
        raise Invalid("to: at most a year after from")
    center = await session.get(Center, center_id)
    if center is None:
        raise Invalid("center_id: no such center")
    tz = zone(center.timezone)
    begins, _ = day_bounds(first, tz)
    _, ends = day_bounds(last, tz)
    rows = (
        await session.execute(
            select(WaitlistOpening.id, WaitlistOpening.status, WaitlistOpening.created_at).where(
                WaitlistOpening.center_id == center_id,
                WaitlistOpening.start_at >= begins,
                WaitlistOpening.start_at < ends,
            )
        )
    ).all()
    ids = [r[0] for r in rows]
    made = (
        (
            await session.execute(
                select(
                    WaitlistOffer.opening_id,
                    WaitlistOffer.status,
                    WaitlistOffer.start_at,
                    WaitlistOffer.end_at,
                    WaitlistOffer.answered_at,
                ).where(WaitlistOffer.opening_id.in_(ids))
            )
        ).all()
        if ids
        else []
    )
    created = {i: at for i, _, at in rows}
    accepted = [m for m in made if m[1] == "accepted"]
    waits = [(m[4] - created[m[0]]).total_seconds() / 60 for m in accepted if m[4] is not None]
    hours = sum((m[3] - m[2]).total_seconds() for m in accepted) / 3600
    filled = sum(1 for r in rows if r[1] == "filled")
    return Figures(
        openings=len(rows),
        offered=len({m[0] for m in made}),
        offers=len(made),
        filled=filled,
        fill_rate=round(filled / len(rows), 4) if rows else None,
        median_minutes_to_fill=round(statistics.median(waits), 1) if waits else None,
        chair_hours_recovered=round(hours, 2),
    )
