"""Use cases for centers, chairs, closures and chair blocks. Flushes; never commits."""

from __future__ import annotations

import uuid
from datetime import time
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from core import settle
from core.clock import utcnow
from core.pagination import page
from core.problems import Duplicate, Invalid, NotFound
from scheduling.centers.models import (
    Center,
    Chair,
    ChairBlock,
    Closure,
    OpeningHours,
    StaffingBlock,
)
from scheduling.centers.schemas import (
    CenterCreate,
    CenterUpdate,
    ChairBlockIn,
    ChairCreate,
    ChairUpdate,
    ClosureIn,
    OpeningHoursIn,
    StaffingIn,
)
from scheduling.localtime import UnknownTimeZone, zone


def _checked_zone(name: str) -> str:
    try:
        zone(name)
    except UnknownTimeZone as exc:
        raise Invalid(
            "timezone: not a known time zone; use an IANA name such as Europe/Paris"
        ) from exc
    return name


def _hours(items: list[OpeningHoursIn]) -> list[OpeningHours]:
    return [
        OpeningHours(
            weekday=h.weekday,
            opens=time.fromisoformat(h.opens),
            closes=time.fromisoformat(h.closes),
        )
        for h in items
    ]


def _shifts(items: list[StaffingIn]) -> list[StaffingBlock]:
    return [
        StaffingBlock(
            weekday=s.weekday,
            start=time.fromisoformat(s.start),
            end=time.fromisoformat(s.end),
            nurses=s.nurses,
        )
        for s in items
    ]


async def create_center(session: AsyncSession, data: CenterCreate) -> Center:
    center = Center(
        name=data.name,
        address=data.address,
        timezone=_checked_zone(data.timezone),
        patients_per_nurse=data.patients_per_nurse,
        turnover_minutes=data.turnover_minutes,
        checkin_opens_minutes=data.checkin_opens_minutes,
        max_session_minutes=data.max_session_minutes,
        coverage_policy=data.coverage_policy,
        prepare_policy=data.prepare_policy,
        booking_horizon_days=data.booking_horizon_days,
        auto_book_at=time.fromisoformat(data.auto_book_at),
        shortage_priority=list(data.shortage_priority),
        no_move_days=data.no_move_days,
        optimise_nightly=data.optimise_nightly,
        offer_hold_minutes=data.offer_hold_minutes,
        offer_hold_same_day_minutes=data.offer_hold_same_day_minutes,
        opening_hours=_hours(data.opening_hours),
        staffing=_shifts(data.staffing),
    )
    session.add(center)
    await session.flush()
    return center


@settle.use_case
async def update_center(session: AsyncSession, center: Center, data: CenterUpdate) -> Center:
    if data.name is not None:
        center.name = data.name
    if data.address is not None:
        center.address = data.address
    if data.timezone is not None:
        center.timezone = _checked_zone(data.timezone)
        # Its sessions' local dates may move: the next sweep recomputes its patients' cover.
        settle.mark(session, settle.CENTER_CHANGED, center.id)
    if data.patients_per_nurse is not None:
        center.patients_per_nurse = data.patients_per_nurse
    if data.turnover_minutes is not None:
        center.turnover_minutes = data.turnover_minutes
    if data.checkin_opens_minutes is not None:
        center.checkin_opens_minutes = data.checkin_opens_minutes
    if data.max_session_minutes is not None:
        # Inductions already booked keep their days; only what is booked next follows it.
        center.max_session_minutes = data.max_session_minutes
    if data.coverage_policy is not None:
        center.coverage_policy = data.coverage_policy
    if data.prepare_policy is not None:
        center.prepare_policy = data.prepare_policy
    if data.booking_horizon_days is not None:
        center.booking_horizon_days = data.booking_horizon_days
    if data.auto_book_at is not None:
        center.auto_book_at = time.fromisoformat(data.auto_book_at)
    if data.shortage_priority is not None:
        center.shortage_priority = list(data.shortage_priority)
    for setting in (
        "no_move_days",
        "optimise_nightly",
        "offer_hold_minutes",
        "offer_hold_same_day_minutes",
    ):
        if (value := getattr(data, setting)) is not None:
            setattr(center, setting, value)
    if data.opening_hours is not None:
        # Replace the week: delete first so the unique (center, weekday) never sees two rows.
        await session.execute(delete(OpeningHours).where(OpeningHours.center_id == center.id))
        center.opening_hours = _hours(data.opening_hours)
    if data.staffing is not None:
        await session.execute(delete(StaffingBlock).where(StaffingBlock.center_id == center.id))
        center.staffing = _shifts(data.staffing)
    # Touching the row bumps its version even when only opening hours or staffing changed.
    center.updated_at = utcnow()
    await session.flush()
    return center


async def list_centers(
    session: AsyncSession, limit: int, cursor: str | None
) -> tuple[list[Center], str | None]:
    query = select(Center).options(
        selectinload(Center.opening_hours), selectinload(Center.staffing)
    )
    return await page(
        session,
        query,
        [Center.name, Center.id],
        limit,
        cursor,
    )


async def add_closure(session: AsyncSession, center: Center, data: ClosureIn) -> Closure:
    closure = Closure(center_id=center.id, date=data.date, reason=data.reason)
    session.add(closure)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise Duplicate(f"the center is already closed on {data.date.isoformat()}") from exc
    return closure


async def list_closures(
    session: AsyncSession, center_id: uuid.UUID, limit: int, cursor: str | None
) -> tuple[list[Closure], str | None]:
    query = select(Closure).where(Closure.center_id == center_id)
    return await page(session, query, [Closure.date, Closure.id], limit, cursor)


async def get_closure(
    session: AsyncSession, center_id: uuid.UUID, closure_id: uuid.UUID
) -> Closure:
    closure = await session.get(Closure, closure_id)
    if closure is None or closure.center_id != center_id:
        raise NotFound("no such closure")
    return closure


async def create_chair(session: AsyncSession, center: Center, data: ChairCreate) -> Chair:
    chair = Chair(center_id=center.id, label=data.label, kind=data.kind)
    session.add(chair)
    await _flush_unique_label(session, data.label)
    return chair


async def update_chair(session: AsyncSession, chair: Chair, data: ChairUpdate) -> Chair:
    changes: dict[str, Any] = data.model_dump(exclude_unset=True, exclude_none=True)
    for name, value in changes.items():
        setattr(chair, name, value)
    await _flush_unique_label(session, chair.label)
    return chair


async def _flush_unique_label(session: AsyncSession, label: str) -> None:
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise Duplicate("label: the center already has a chair of that label") from exc


async def list_chairs(
    session: AsyncSession, center_id: uuid.UUID, limit: int, cursor: str | None
) -> tuple[list[Chair], str | None]:
    query = select(Chair).where(Chair.center_id == center_id)
    return await page(
        session,
        query,
        [Chair.label, Chair.id],
        limit,
        cursor,
    )


async def list_chair_blocks(
    session: AsyncSession, chair_id: uuid.UUID, limit: int, cursor: str | None
) -> tuple[list[ChairBlock], str | None]:
    query = select(ChairBlock).where(ChairBlock.chair_id == chair_id)
    return await page(session, query, [ChairBlock.start_at, ChairBlock.id], limit, cursor)


async def get_chair_block(
    session: AsyncSession, chair_id: uuid.UUID, block_id: uuid.UUID
) -> ChairBlock:
    block = await session.get(ChairBlock, block_id)
    if block is None or block.chair_id != chair_id:
        raise NotFound("no such chair block")
    return block


async def add_chair_block(session: AsyncSession, chair: Chair, data: ChairBlockIn) -> ChairBlock:
    block = ChairBlock(chair_id=chair.id, start_at=data.start, end_at=data.end, reason=data.reason)
    session.add(block)
    await session.flush()
    return block
