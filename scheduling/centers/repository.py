"""Queries over centers, their calendars and chairs. Nothing here commits."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, time, timedelta
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from core.problems import NotFound
from core.repository import get_or_404
from scheduling.centers.models import (
    Center,
    Chair,
    Closure,
    OpeningHours,
    StaffingBlock,
)
from scheduling.centers.rules import CenterCalendar, Shift, WeeklyHours
from scheduling.localtime import zone


def _with_week() -> tuple[Any, ...]:
    # One round trip: a week of opening hours times a few shifts is a handful of joined rows.
    return (joinedload(Center.opening_hours), joinedload(Center.staffing))


async def get_center(session: AsyncSession, center_id: uuid.UUID) -> Center:
    result = await session.execute(
        select(Center).where(Center.id == center_id).options(*_with_week())
    )
    center = result.unique().scalar_one_or_none()
    if center is None:
        raise NotFound("no such center")
    return center


@dataclass(frozen=True)
class CenterFacts:
    """What the booking rules need to know about a center, as plain values."""

    center_id: uuid.UUID
    timezone: str
    patients_per_nurse: int
    center_version: int
    turnover_minutes: int

    @classmethod
    def of(cls, center: Center) -> CenterFacts:
        return cls(
            center.id,
            center.timezone,
            center.patients_per_nurse,
            center.version,
            center.turnover_minutes,
        )


@dataclass(frozen=True)
class ChairAtCenter(CenterFacts):
    chair_id: uuid.UUID
    chair_active: bool


# What a ChairAtCenter is made of, in its fields' order (other statements read it too).
CHAIR_AT_CENTER_COLUMNS = (
    Center.id,
    Center.timezone,
    Center.patients_per_nurse,
    Center.version,
    Center.turnover_minutes,
    Chair.id,
    Chair.active,
)
# Booking statements are built once: building SQL expressions costs more than running them.
_CHAIR_AT_CENTER = (
    select(*CHAIR_AT_CENTER_COLUMNS)
    .join(Center, Center.id == Chair.center_id)
    .where(Chair.id == bindparam("chair_id"))
)
_HOURS = select(OpeningHours.weekday, OpeningHours.opens, OpeningHours.closes).where(
    OpeningHours.center_id == bindparam("center_id")
)
_SHIFTS = select(
    StaffingBlock.weekday, StaffingBlock.start, StaffingBlock.end, StaffingBlock.nurses
).where(StaffingBlock.center_id == bindparam("center_id"))
_CLOSURES = select(Closure.date, Closure.reason).where(
    Closure.center_id == bindparam("center_id"),
    Closure.date >= bindparam("first"),
    Closure.date <= bindparam("last"),
)


async def chair_at_center(session: AsyncSession, chair_id: uuid.UUID) -> ChairAtCenter:
    row = (await session.execute(_CHAIR_AT_CENTER, {"chair_id": chair_id})).first()
    if row is None:
        raise NotFound("no such chair")
    return ChairAtCenter(*row)


_TIMEZONE = select(Center.timezone).where(Center.id == bindparam("center_id"))
_CHECKIN = select(Center.timezone, Center.checkin_opens_minutes).where(
    Center.id == bindparam("center_id")
)


async def checkin_rules(session: AsyncSession, center_id: uuid.UUID) -> tuple[str, int]:
    """The center's time zone and how long before a visit check-in opens."""
    row = (await session.execute(_CHECKIN, {"center_id": center_id})).first()
    if row is None:
        raise NotFound("no such center")
    return row[0], row[1]


async def timezone_of(session: AsyncSession, center_id: uuid.UUID) -> str:
    tz = await session.scalar(_TIMEZONE, {"center_id": center_id})
    if tz is None:
        raise NotFound("no such center")
    return tz


Week = tuple[dict[int, WeeklyHours], tuple[Shift, ...]]


class WeekCache:
    """A center's weekly hours and shifts by (center, version).

    Any edit of a center bumps its version, so an entry is never stale: a changed center is
    simply looked up under its new version. Bounded, because centers are few but not fixed.
    """

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self.entries: dict[tuple[uuid.UUID, int], Week] = {}

    async def get(self, session: AsyncSession, center_id: uuid.UUID, version: int) -> Week:
        key = (center_id, version)
        week = self.entries.get(key)
        if week is None:
            params = {"center_id": center_id}
            hours = {
                d: WeeklyHours(_hhmm(o), _hhmm(c))
                for d, o, c in await session.execute(_HOURS, params)
            }
            shifts = tuple(
                Shift(d, _hhmm(s), _hhmm(e), n)
                for d, s, e, n in await session.execute(_SHIFTS, params)
            )
            if len(self.entries) >= self.size:
                self.entries.clear()
            week = self.entries[key] = (hours, shifts)
        return week


weeks = WeekCache()


async def center_calendar(
    session: AsyncSession,
    center: CenterFacts,
    first: date,
    last: date,
    closures: dict[date, str] | None = None,
) -> CenterCalendar:
    """Everything the booking rules need about the center's time from `first` to `last`;
    `closures`: the center's closures then, when the caller has read them already."""
    hours, shifts = await weeks.get(session, center.center_id, center.center_version)
    if closures is None:
        closures = await closures_between(session, center.center_id, first, last)
    return CenterCalendar(
        tz=zone(center.timezone),
        patients_per_nurse=center.patients_per_nurse,
        turnover=timedelta(minutes=center.turnover_minutes),
        opening_hours=hours,
        shifts=shifts,
        closures=closures,
    )


async def get_chair(session: AsyncSession, chair_id: uuid.UUID) -> Chair:
    return await get_or_404(session, Chair, chair_id, "chair")


async def closures_between(
    session: AsyncSession, center_id: uuid.UUID, first: date, last: date
) -> dict[date, str]:
    params = {"center_id": center_id, "first": first, "last": last}
    return {d: reason for d, reason in await session.execute(_CLOSURES, params)}


def _hhmm(value: time) -> time:
    return value.replace(second=0, microsecond=0)


async def chairs_of(
    session: AsyncSession, center_id: uuid.UUID, kind: str | None = None
) -> list[Chair]:
    query = select(Chair).where(Chair.center_id == center_id).order_by(Chair.label, Chair.id)
    if kind is not None:
        query = query.where(Chair.kind == kind)
    return list(await session.scalars(query))
