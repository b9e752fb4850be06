"""Where an appointment could go, and what a center's day looks like."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from scheduling.appointments import repository as appointment_repository
from scheduling.appointments.center_days import Day
from scheduling.appointments.models import ACTIVE_STATUSES, Appointment
from scheduling.centers import repository as center_repository
from scheduling.centers.models import Center, Chair
from scheduling.centers.repository import CenterFacts
from scheduling.centers.rules import (
    GRID,
    DayRules,
    census_conflicts,
    day_rules,
    grid_starts,
    holding_chairs,
    start_conflicts,
)
from scheduling.localtime import day_bounds, zone


@dataclass(frozen=True)
class OpenSlot:
    chair_id: uuid.UUID
    start: datetime
    end: datetime


async def _day(session: AsyncSession, center: Center, day: date) -> DayRules:
    calendar = await center_repository.center_calendar(session, CenterFacts.of(center), day, day)
    return day_rules(calendar, day)


async def open_slots(
    session: AsyncSession,
    center: Center,
    day: date,
    duration: timedelta,
    chair_kind: str | None,
    moving: uuid.UUID | None = None,
    tally: Counter[str] | None = None,
) -> list[OpenSlot]:
    """Every chair and 15-minute start at which a booking of `duration` would be accepted now
    (by chair, block, opening-hours and both nurse rules; the patient is not known here).
    `moving` is an appointment being moved: its own place does not count as taken. `tally`
    counts why starts were refused ("nurses", "chairs"), to say why a day has no slot."""
    rules = await _day(session, center, day)
    starts = grid_starts(rules, duration)
    if not starts:
        return []
    chairs = [
        c for c in await center_repository.chairs_of(session, center.id, chair_kind) if c.active
    ]
    first, last = day_bounds(day, zone(center.timezone))
    spans = [
        s
        for s in await appointment_repository.active_spans(session, center.id, first, last)
        if s.id != moving
    ]
    blocks = await appointment_repository.chair_blocks(session, [c.id for c in chairs], first, last)

    slots: list[OpenSlot] = []
    for start in starts:
        end = start + duration
        if (
            census_conflicts(rules, spans, start, end) is not None
            or start_conflicts(rules, spans, start) is not None
        ):
            if tally is not None:
                tally["nurses"] += 1
            continue
        busy = {s.chair_id for s in holding_chairs(rules, spans, start, end)}
        busy.update(b.chair_id for b in blocks if b.start_at < end and b.end_at > start)
        free = [OpenSlot(c.id, start, end) for c in chairs if c.id not in busy]
        if not free and tally is not None:
            tally["chairs"] += 1
        slots.extend(free)
    return slots


def best_slots(
    day: Day,
    chairs: list[uuid.UUID],
    duration: timedelta,
    *,
    minutes_off: Callable[[datetime], int],
    preferred_chair: uuid.UUID | None,
    accept: Callable[[OpenSlot], bool],
    limit: int,
    tally: Counter[str],
) -> list[OpenSlot]:
    """The best `limit` open slots of the day that `accept` takes, best first: the preferred
    chair at any time before another chair, then the start closest to the wanted time
    (`minutes_off`), then the earlier start. The same order as ranking every open slot of the
    day, but a course booking usually needs only the first, so starts are checked lazily in
    that order. `chairs`: those in service, in order of preference after the preferred one.
    `tally` is complete when nothing is found (every start was checked)."""
    starts = sorted(grid_starts(day.rules, duration), key=lambda s: (minutes_off(s), s))
    if not starts:
        return []
    load = day.load()
    checked: dict[datetime, list[uuid.UUID]] = {}

    def free_at(start: datetime) -> list[uuid.UUID]:
        if start not in checked:
            end = start + duration
            if not (load.census_fits(start, end) and load.start_fits(start)):
                tally["nurses"] += 1
                checked[start] = []
            else:
                busy: set[uuid.UUID | None] = load.chairs_held(start, end)
                busy.update(b.chair_id for b in day.blocks if b.start < end and b.end > start)
                busy.update(day.idle_chairs)
                checked[start] = [c for c in chairs if c not in busy]
                if not checked[start]:
                    tally["chairs"] += 1
        return checked[start]

    found: list[OpenSlot] = []
    for want_preferred in (True, False):
        if want_preferred and preferred_chair is None:
            continue
        for start in starts:
            for chair_id in free_at(start):
                if (chair_id == preferred_chair) != want_preferred:
                    continue
                slot = OpenSlot(chair_id, start, start + duration)
                if accept(slot):
                    found.append(slot)
                    if len(found) >= limit:
                        return found
    return found


@dataclass(frozen=True)
class SlotLoad:
    start: datetime
    census: int
    nurses: int
    nurse_capacity: int
    starts: int


@dataclass(frozen=True)
class Board:
    rules: DayRules
    chairs: list[Chair]
    appointments: list[Appointment]
    slots: list[SlotLoad]


async def day_board(session: AsyncSession, center: Center, day: date) -> Board:
    rules = await _day(session, center, day)
    first, last = day_bounds(day, zone(center.timezone))
    chairs = await center_repository.chairs_of(session, center.id)
    appointments = list(
        await session.scalars(
            select(Appointment)
            .where(
                Appointment.center_id == center.id,
                Appointment.start_at < last,
                Appointment.end_at > first,
                Appointment.start_at > appointment_repository.since(first),  # the day only
            )
            .order_by(Appointment.start_at, Appointment.id)
        )
    )
    # Plain (start, end) pairs: the loop below reads them slots x visits times, and an ORM
    # attribute read costs several times a tuple's.
    active = [(a.start_at, a.end_at) for a in appointments if a.status in ACTIVE_STATUSES]
    slots: list[SlotLoad] = []
    if rules.opens_at is not None and rules.closes_at is not None:
        t = rules.opens_at
        while t < rules.closes_at:
            nxt = t + GRID
            slots.append(
                SlotLoad(
                    start=t,
                    census=sum(1 for start, end in active if start < nxt and end > t),
                    nurses=rules.nurses_at(t),
                    nurse_capacity=rules.capacity_at(t),
                    starts=sum(1 for start, _ in active if t <= start < nxt),
                )
            )
            t = nxt
    return Board(rules, chairs, appointments, slots)
