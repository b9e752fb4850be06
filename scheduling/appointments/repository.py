"""Queries over appointments and chair blocks: who is where, when. Nothing here commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import bindparam, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession

from patients.models import Patient
from scheduling.appointments.models import ACTIVE_STATUSES, CHAIR_HOLDING_STATUSES, Appointment
from scheduling.centers.models import (
    ChairBlock,
)
from scheduling.centers.rules import Span

_NO_ID = uuid.UUID(int=0)
# The active statuses as literal SQL: a list parameter would be re-rendered on every execution.
IS_ACTIVE = Appointment.status.in_([literal_column(f"'{s}'") for s in ACTIVE_STATUSES])
# What holds a chair: the active statuses, and a visit given (its chair is cleaned after it).
HOLDS_CHAIR = Appointment.status.in_([literal_column(f"'{s}'") for s in CHAIR_HOLDING_STATUSES])
_ACTIVE_SPANS = select(
    Appointment.id,
    Appointment.start_at,
    Appointment.end_at,
    Appointment.chair_id,
    Appointment.turnover_minutes,
    Appointment.status,
).where(
    Appointment.center_id == bindparam("center_id"),
    HOLDS_CHAIR,
    Appointment.start_at < bindparam("end"),
    Appointment.end_at > bindparam("start"),
)
_PATIENT_OVERLAPS = select(Appointment.id).where(
    Appointment.patient_id == bindparam("patient_id"),
    IS_ACTIVE,
    Appointment.start_at < bindparam("end"),
    Appointment.end_at > bindparam("start"),
    Appointment.id != bindparam("exclude"),
)
_CHAIR_BLOCKS = select(ChairBlock.reason).where(
    ChairBlock.chair_id == bindparam("chair_id"),
    ChairBlock.start_at < bindparam("end"),
    ChairBlock.end_at > bindparam("start"),
)
_PATIENT_EXISTS = select(Patient.id).where(Patient.id == bindparam("patient_id"))


async def patient_exists(session: AsyncSession, patient_id: uuid.UUID) -> bool:
    return await session.scalar(_PATIENT_EXISTS, {"patient_id": patient_id}) is not None


async def active_spans(
    session: AsyncSession, center_id: uuid.UUID, start: datetime, end: datetime
) -> list[Span]:
    """A center's appointments that hold a chair in [start, end): the active ones, and those
    given (`Span.active` False), which still need their chair cleaned after them."""
    params = {"center_id": center_id, "start": start, "end": end}
    return [
        Span(i, s, e, c, timedelta(minutes=t), status in ACTIVE_STATUSES)
        for i, s, e, c, t, status in await session.execute(_ACTIVE_SPANS, params)
    ]


_PATIENT_SPANS = select(Appointment.id, Appointment.start_at, Appointment.end_at).where(
    Appointment.patient_id == bindparam("patient_id"),
    IS_ACTIVE,
    Appointment.start_at < bindparam("end"),
    Appointment.end_at > bindparam("start"),
)


async def patient_spans(
    session: AsyncSession, patient_id: uuid.UUID, start: datetime, end: datetime
) -> list[Span]:
    """The patient's active appointments overlapping [start, end), in any center."""
    params = {"patient_id": patient_id, "start": start, "end": end}
    return [Span(i, s, e) for i, s, e in await session.execute(_PATIENT_SPANS, params)]


async def patient_overlaps(
    session: AsyncSession,
    patient_id: uuid.UUID,
    start: datetime,
    end: datetime,
    exclude: uuid.UUID | None = None,
) -> list[uuid.UUID]:
    # A never-used id stands in for "exclude nothing", so one statement serves both cases.
    params = {"patient_id": patient_id, "start": start, "end": end, "exclude": exclude or _NO_ID}
    return list(await session.scalars(_PATIENT_OVERLAPS, params))


async def chair_block_reasons(
    session: AsyncSession, chair_id: uuid.UUID, start: datetime, end: datetime
) -> list[str]:
    """Why the chair is out of service during [start, end), if it is."""
    params = {"chair_id": chair_id, "start": start, "end": end}
    return list(await session.scalars(_CHAIR_BLOCKS, params))


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
