"""Openings: what a freed chair leaves free, looked at when the change that freed it settles.
Flushes; never commits.

A cancel, a no-show or a move marks the span it freed (`settle.CHAIR_FREED`); by the time the
mark is settled other changes of the same transaction may have filled it again (an optimiser
moves many sessions at once, one into the place another left). So the span is looked at as it
is then: only what no visit holds (turnover respected), no block covers, no other open opening
of the chair already offers, inside the day's opening hours and from now on, becomes an
opening, and only a part of at least 15 minutes (`gaps.free_parts`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.clock import utcnow
from scheduling.appointments import repository as appointment_repository
from scheduling.appointments.models import Appointment
from scheduling.centers import repository as center_repository
from scheduling.centers.repository import ChairAtCenter
from scheduling.centers.rules import DayRules, Span, day_rules
from scheduling.localtime import day_bounds, local_date, zone
from scheduling.waitlist import gaps
from scheduling.waitlist.models import WaitlistOpening


@dataclass(frozen=True)
class ChairDay:
    """A chair's day as it is now: the day's rules, and every visit holding a chair that day
    at its center (the nurse rules need them all)."""

    place: ChairAtCenter
    rules: DayRules
    spans: list[Span]

    @property
    def open(self) -> bool:
        return self.rules.opens_at is not None and self.rules.closed_reason is None

    def holding(self, exclude: uuid.UUID | None = None) -> list[tuple[datetime, datetime]]:
        return [
            (s.start, s.chair_free)
            for s in self.spans
            if s.chair_id == self.place.chair_id and s.id != exclude
        ]


async def chair_day(session: AsyncSession, chair_id: uuid.UUID, instant: datetime) -> ChairDay:
    place = await center_repository.chair_at_center(session, chair_id)
    tz = zone(place.timezone)
    day = local_date(instant, tz)
    rules = day_rules(await center_repository.center_calendar(session, place, day, day), day)
    first, last = day_bounds(day, tz)
    spans = await appointment_repository.active_spans(session, place.center_id, first, last)
    return ChairDay(place, rules, spans)


async def free_now(
    session: AsyncSession,
    day: ChairDay,
    start: datetime,
    end: datetime,
    *,
    besides: uuid.UUID | None = None,
) -> list[gaps.Part]:
    """What of [start, end) on the chair a visit could use now. `besides`: an opening whose
    own span does not count as spoken for (it is the one being offered)."""
    if not day.place.chair_active or not day.open:
        return []
    assert day.rules.opens_at is not None and day.rules.closes_at is not None
    chair_id = day.place.chair_id
    blocks = await appointment_repository.chair_blocks(session, [chair_id], start, end)
    others = await session.execute(
        select(WaitlistOpening.start_at, WaitlistOpening.end_at).where(
            WaitlistOpening.chair_id == chair_id,
            WaitlistOpening.status == "open",
            WaitlistOpening.start_at < end,
            WaitlistOpening.end_at > start,
            WaitlistOpening.id != (besides or uuid.UUID(int=0)),
        )
    )
    return gaps.free_parts(
        start,
        end,
        now=utcnow(),
        opens_at=day.rules.opens_at,
        closes_at=day.rules.closes_at,
        turnover=day.rules.turnover,
        holding=day.holding(),
        blocked=[(b.start_at, b.end_at) for b in blocks] + [(s, e) for s, e in others],
    )


async def record(
    session: AsyncSession,
    appointment_id: uuid.UUID,
    chair_id: uuid.UUID,
    start: datetime,
    end: datetime,
    cause: str,
) -> list[WaitlistOpening]:
    """The openings a freed span makes, as things are now (none when it is past, filled again,
    blocked, outside opening hours or shorter than 15 minutes)."""
    if end <= utcnow() or await session.get(Appointment, appointment_id) is None:
        return []  # past, or the freed visit itself was rolled back with a savepoint
    day = await chair_day(session, chair_id, start)
    made = [
        WaitlistOpening(
            id=uuid.uuid4(),
            center_id=day.place.center_id,
            chair_id=chair_id,
            start_at=part.start,
            end_at=part.end,
            cause=cause,
            freed_appointment_id=appointment_id,
            status="open",
            created_at=utcnow(),
        )
        for part in await free_now(session, day, start, end)
    ]
    session.add_all(made)
    await session.flush()
    return made
