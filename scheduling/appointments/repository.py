"""Queries over appointments and chair blocks: who is where, when. Nothing here commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import and_, bindparam, literal, literal_column, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from core.problems import NotFound
from patients.models import Patient
from scheduling.appointments.models import ACTIVE_STATUSES, CHAIR_HOLDING_STATUSES, Appointment
from scheduling.appointments.rules import MAX_APPOINTMENT
from scheduling.centers.models import (
    Center,
    Chair,
    ChairBlock,
    Closure,
)
from scheduling.centers.repository import CHAIR_AT_CENTER_COLUMNS, ChairAtCenter
from scheduling.centers.rules import Span
from scheduling.localtime import local_date, zone

_NO_ID = uuid.UUID(int=0)
# The active statuses as literal SQL: a list parameter would be re-rendered on every execution.
IS_ACTIVE = Appointment.status.in_([literal_column(f"'{s}'") for s in ACTIVE_STATUSES])
# What holds a chair: the active statuses, and a visit given (its chair is cleaned after it).
HOLDS_CHAIR = Appointment.status.in_([literal_column(f"'{s}'") for s in CHAIR_HOLDING_STATUSES])
_SPAN_COLUMNS = (
    Appointment.id,
    Appointment.start_at,
    Appointment.end_at,
    Appointment.chair_id,
    Appointment.turnover_minutes,
    Appointment.status,
)
_ACTIVE_SPANS = select(*_SPAN_COLUMNS).where(
    Appointment.center_id == bindparam("center_id"),
    HOLDS_CHAIR,
    Appointment.start_at < bindparam("end"),
    Appointment.end_at > bindparam("start"),
    # Implied by the line above (no visit lasts more than a day, revision 0036), and what
    # keeps the index scan to the day instead of the center's whole history before it.
    Appointment.start_at > bindparam("since"),
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


def since(start: datetime) -> datetime:
    """Before this, no visit that overlaps `start` or later can have started."""
    return start - MAX_APPOINTMENT


async def patient_exists(session: AsyncSession, patient_id: uuid.UUID) -> bool:
    return await session.scalar(_PATIENT_EXISTS, {"patient_id": patient_id}) is not None


async def active_spans(
    session: AsyncSession, center_id: uuid.UUID, start: datetime, end: datetime
) -> list[Span]:
    """A center's appointments that hold a chair in [start, end): the active ones, and those
    given (`Span.active` False), which still need their chair cleaned after them."""
    params = {"center_id": center_id, "start": start, "end": end, "since": since(start)}
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


# --- one booking's reads, as few round trips as the rules allow -----------------------------


@dataclass(frozen=True)
class SlotFacts:
    """What a booking needs to know before it takes the day's lock: whether the patient
    exists, why the center is closed that day (if it is) and why the chair is out of service
    during the visit (if it is)."""

    patient_found: bool
    closure: str | None
    chair_blocks: list[str]


# One statement rather than three: a row to hang the outer joins on, the patient as a scalar
# subquery. A closed day and a blocked chair are each one row or none, so the joins multiply
# to a handful of rows at most.
_ONE = select(literal(1).label("one")).subquery("one")
_SLOT_FACTS = select(
    select(Patient.id).where(Patient.id == bindparam("patient_id")).scalar_subquery(),
    Closure.reason,
    ChairBlock.reason,
).select_from(
    _ONE.outerjoin(
        Closure,
        and_(Closure.center_id == bindparam("center_id"), Closure.date == bindparam("day")),
    ).outerjoin(
        ChairBlock,
        and_(
            ChairBlock.chair_id == bindparam("chair_id"),
            ChairBlock.start_at < bindparam("end"),
            ChairBlock.end_at > bindparam("start"),
        ),
    )
)


async def slot_facts(
    session: AsyncSession,
    *,
    center_id: uuid.UUID,
    chair_id: uuid.UUID,
    patient_id: uuid.UUID,
    day: date,
    start: datetime,
    end: datetime,
) -> SlotFacts:
    params = {
        "patient_id": patient_id,
        "center_id": center_id,
        "day": day,
        "chair_id": chair_id,
        "start": start,
        "end": end,
    }
    rows = (await session.execute(_SLOT_FACTS, params)).all()
    blocks = list(dict.fromkeys(reason for _, _, reason in rows if reason is not None))
    closure = next((reason for _, reason, _ in rows if reason is not None), None)
    return SlotFacts(rows[0][0] is not None, closure, blocks)


# The day's chair-holding appointments and the patient's own overlapping ones in one
# statement, told apart by `theirs`; read after the day's lock, so it sees every booking
# committed before it.
_DAY_AND_PATIENT = union_all(
    _ACTIVE_SPANS.add_columns(literal(False).label("theirs")),
    select(*_SPAN_COLUMNS, literal(True).label("theirs")).where(
        Appointment.patient_id == bindparam("patient_id"),
        IS_ACTIVE,
        Appointment.start_at < bindparam("slot_end"),
        Appointment.end_at > bindparam("slot_start"),
        Appointment.id != bindparam("exclude"),
    ),
)


async def day_and_patient(
    session: AsyncSession,
    center_id: uuid.UUID,
    day_start: datetime,
    day_end: datetime,
    patient_id: uuid.UUID,
    start: datetime,
    end: datetime,
    exclude: uuid.UUID | None = None,
) -> tuple[list[Span], list[uuid.UUID]]:
    """`active_spans` of the center's day and `patient_overlaps` of [start, end), at once."""
    params = {
        "center_id": center_id,
        "start": day_start,
        "end": day_end,
        "since": since(day_start),
        "patient_id": patient_id,
        "slot_start": start,
        "slot_end": end,
        "exclude": exclude or _NO_ID,
    }
    spans, busy = [], []
    for i, s, e, c, t, status, theirs in await session.execute(_DAY_AND_PATIENT, params):
        if theirs:
            busy.append(i)
        else:
            spans.append(Span(i, s, e, c, timedelta(minutes=t), status in ACTIVE_STATUSES))
    return spans, busy


# The chair's center and the slot's facts in one statement, for a booking that names its
# start as an instant: the center's local day is not known before the row comes back, so the
# closures of the UTC day and the days either side come with it (no zone is further than a day
# from UTC) and the local day's is picked from them.
_CHAIR_AND_SLOT = (
    select(
        *CHAIR_AT_CENTER_COLUMNS,
        select(Patient.id).where(Patient.id == bindparam("patient_id")).scalar_subquery(),
        Closure.date,
        Closure.reason,
        ChairBlock.reason,
    )
    .join(Center, Center.id == Chair.center_id)
    .outerjoin(
        Closure,
        and_(
            Closure.center_id == Center.id,
            Closure.date >= bindparam("first"),
            Closure.date <= bindparam("last"),
        ),
    )
    .outerjoin(
        ChairBlock,
        and_(
            ChairBlock.chair_id == Chair.id,
            ChairBlock.start_at < bindparam("end"),
            ChairBlock.end_at > bindparam("start"),
        ),
    )
    .where(Chair.id == bindparam("chair_id"))
)


async def chair_and_slot(
    session: AsyncSession,
    chair_id: uuid.UUID,
    patient_id: uuid.UUID,
    start: datetime,
    end: datetime,
) -> tuple[ChairAtCenter, SlotFacts]:
    """The chair at its center (404 when there is no such chair) and the slot's facts."""
    utc_day = start.astimezone(UTC).date()
    params = {
        "chair_id": chair_id,
        "patient_id": patient_id,
        "first": utc_day - timedelta(days=1),
        "last": utc_day + timedelta(days=1),
        "start": start,
        "end": end,
    }
    rows = (await session.execute(_CHAIR_AND_SLOT, params)).all()
    if not rows:
        raise NotFound("no such chair")
    place = ChairAtCenter(*rows[0][:7])
    day = local_date(start, zone(place.timezone))
    closure = next((r[9] for r in rows if r[8] == day), None)
    blocks = list(dict.fromkeys(r[10] for r in rows if r[10] is not None))
    return place, SlotFacts(rows[0][7] is not None, closure, blocks)
