"""Queries over centers, chairs and appointments. Nothing here commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from app.problems import NotFound
from scheduling.localtime import zone
from scheduling.models import (
    ACTIVE_STATUSES,
    Appointment,
    Center,
    Chair,
    ChairBlock,
    Closure,
)
from scheduling.rules import CenterCalendar, Shift, Span, WeeklyHours


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


async def get_chair_and_center(session: AsyncSession, chair_id: uuid.UUID) -> tuple[Chair, Center]:
    result = await session.execute(
        select(Chair, Center)
        .join(Center, Center.id == Chair.center_id)
        .where(Chair.id == chair_id)
        .options(*_with_week())
    )
    row = result.unique().first()
    if row is None:
        raise NotFound("no such chair")
    chair, center = row
    return chair, center


async def get_chair(session: AsyncSession, chair_id: uuid.UUID) -> Chair:
    chair = await session.get(Chair, chair_id)
    if chair is None:
        raise NotFound("no such chair")
    return chair


async def closures_between(
    session: AsyncSession, center_id: uuid.UUID, first: date, last: date
) -> dict[date, str]:
    rows = await session.execute(
        select(Closure.date, Closure.reason).where(
            Closure.center_id == center_id, Closure.date >= first, Closure.date <= last
        )
    )
    return {d: reason for d, reason in rows}


def _hhmm(value: time) -> time:
    return value.replace(second=0, microsecond=0)


async def calendar_for(
    session: AsyncSession, center: Center, first: date, last: date
) -> CenterCalendar:
    return CenterCalendar(
        tz=zone(center.timezone),
        patients_per_nurse=center.patients_per_nurse,
        opening_hours={
            h.weekday: WeeklyHours(_hhmm(h.opens), _hhmm(h.closes)) for h in center.opening_hours
        },
        shifts=[Shift(s.weekday, _hhmm(s.start), _hhmm(s.end), s.nurses) for s in center.staffing],
        closures=await closures_between(session, center.id, first, last),
    )


async def active_spans(
    session: AsyncSession, center_id: uuid.UUID, start: datetime, end: datetime
) -> list[Span]:
    """Active appointments of a center that overlap [start, end)."""
    rows = await session.execute(
        select(
            Appointment.id,
            Appointment.start_at,
            Appointment.end_at,
            Appointment.chair_id,
            Appointment.patient_id,
        ).where(
            Appointment.center_id == center_id,
            Appointment.status.in_(ACTIVE_STATUSES),
            Appointment.start_at < end,
            Appointment.end_at > start,
        )
    )
    return [Span(i, s, e, c, p) for i, s, e, c, p in rows]


async def patient_overlaps(
    session: AsyncSession,
    patient_id: uuid.UUID,
    start: datetime,
    end: datetime,
    exclude: uuid.UUID | None = None,
) -> list[uuid.UUID]:
    query = select(Appointment.id).where(
        Appointment.patient_id == patient_id,
        Appointment.status.in_(ACTIVE_STATUSES),
        Appointment.start_at < end,
        Appointment.end_at > start,
    )
    if exclude is not None:
        query = query.where(Appointment.id != exclude)
    return list(await session.scalars(query))


async def chair_blocks(
    session: AsyncSession, chair_ids: Sequence[uuid.UUID], start: datetime, end: datetime
) -> list[ChairBlock]:
    if not chair_ids:
        return []
    return list(
        await session.scalars(
            select(ChairBlock).where(
                ChairBlock.chair_id.in_(chair_ids),
                ChairBlock.start_at < end,
                ChairBlock.end_at > start,
            )
        )
    )


async def chairs_of(
    session: AsyncSession, center_id: uuid.UUID, kind: str | None = None
) -> list[Chair]:
    query = select(Chair).where(Chair.center_id == center_id).order_by(Chair.label, Chair.id)
    if kind is not None:
        query = query.where(Chair.kind == kind)
    return list(await session.scalars(query))
