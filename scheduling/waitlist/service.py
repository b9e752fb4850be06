"""Waitlist use cases: put a patient on it, change or remove an entry, list entries, and the
entries an opening fits, ranked (`rank`). Flushes; never commits."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, time

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core import settle
from core.pagination import page
from core.problems import Duplicate, IllegalTransition, Invalid
from core.repository import get_or_404
from patients.models import Patient
from scheduling.appointments.models import Appointment
from scheduling.centers.models import Center
from scheduling.courses.models import Course
from scheduling.waitlist import offers, rank, repository
from scheduling.waitlist.models import WaitlistEntry
from scheduling.waitlist.schemas import ChairKind, WaitlistCreate, WaitlistStatus, WaitlistUpdate

LIVE = "a live waitlist entry already exists for this course"


async def get_entry(session: AsyncSession, entry_id: uuid.UUID) -> WaitlistEntry:
    return await get_or_404(session, WaitlistEntry, entry_id, "waitlist entry")


@dataclass(frozen=True)
class EntryFilter:
    center_id: uuid.UUID | None = None
    patient_id: uuid.UUID | None = None
    status: WaitlistStatus | None = None


async def list_entries(
    session: AsyncSession, which: EntryFilter, limit: int, cursor: str | None
) -> tuple[list[WaitlistEntry], str | None]:
    """Entries in the order they were put on the list (the longest waiting first)."""
    query = select(WaitlistEntry)
    if which.center_id is not None:
        query = query.where(WaitlistEntry.center_id == which.center_id)
    if which.patient_id is not None:
        query = query.where(WaitlistEntry.patient_id == which.patient_id)
    if which.status is not None:
        query = query.where(WaitlistEntry.status == which.status)
    order = [WaitlistEntry.created_at, WaitlistEntry.id]
    return await page(session, query, order, limit, cursor)


def _window(earliest: date, latest: date) -> None:
    if earliest > latest:
        raise Invalid("earliest: after latest")


async def _flush_live(session: AsyncSession) -> None:
    """Flush; the one-live-entry-per-course index turns a racing second entry into a 409."""
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise Duplicate(LIVE) from exc


@settle.use_case
async def add_entry(
    session: AsyncSession, data: WaitlistCreate, actor_id: uuid.UUID
) -> WaitlistEntry:
    """A waiting entry. 422 for a window that ends before it starts, or an unknown center,
    patient or course (or a course of another patient); 409 when the course already has one."""
    _window(data.earliest, data.latest)
    if await session.get(Center, data.center_id) is None:
        raise Invalid("center_id: no such center")
    if await session.get(Patient, data.patient_id) is None:
        raise Invalid("patient_id: no such patient")
    if data.course_id is not None:
        course = await session.get(Course, data.course_id)
        if course is None:
            raise Invalid("course_id: no such course")
        if course.patient_id != data.patient_id:
            raise Invalid("course_id: the course is another patient's")
        live = await session.scalar(
            select(WaitlistEntry.id).where(
                WaitlistEntry.course_id == data.course_id, WaitlistEntry.status == "waiting"
            )
        )
        if live is not None:
            raise Duplicate(LIVE)
    if data.appointment_id is not None:
        appt = await session.get(Appointment, data.appointment_id)
        if appt is None or appt.course_id is None or appt.course_id != data.course_id:
            raise Invalid("appointment_id: not a session of the course")
        if appt.status != "booked":
            raise Invalid("appointment_id: the session is not booked")
    entry = WaitlistEntry(
        id=uuid.uuid4(),
        center_id=data.center_id,
        patient_id=data.patient_id,
        course_id=data.course_id,
        appointment_id=data.appointment_id,
        earliest=data.earliest,
        latest=data.latest,
        duration_minutes=data.duration_minutes,
        chair_kind=data.chair_kind,
        priority=data.priority,
        status="waiting",
        note=data.note,
        created_by=actor_id,
    )
    session.add(entry)
    await _flush_live(session)
    return entry


@settle.use_case
async def update_entry(
    session: AsyncSession, entry: WaitlistEntry, data: WaitlistUpdate
) -> WaitlistEntry:
    """Change a waiting entry's window, priority or note, or remove it (final). 409 once the
    entry is booked or removed; 422 for a window that ends before it starts."""
    if entry.status != "waiting":
        raise IllegalTransition(f"cannot change a waitlist entry that is {entry.status}")
    earliest = entry.earliest if data.earliest is None else data.earliest
    latest = entry.latest if data.latest is None else data.latest
    _window(earliest, latest)
    entry.earliest, entry.latest = earliest, latest
    if data.priority is not None:
        entry.priority = data.priority
    if data.note is not None:
        entry.note = data.note
    if data.status is not None:
        entry.status = data.status
    await session.flush()
    if entry.status == "removed":
        await offers.withdraw_for(session, entry)
    return entry


async def fits(
    session: AsyncSession,
    center_id: uuid.UUID,
    day: date,
    start: time,
    duration_minutes: int,
    chair_kind: ChairKind,
    limit: int,
) -> list[WaitlistEntry]:
    """The waiting entries an opening fits, in the order it would be offered to them
    (`rank.ranked`), at most `limit`. 422 for an unknown center."""
    if await session.get(Center, center_id) is None:
        raise Invalid("center_id: no such center")
    opening = rank.Opening(center_id, day, start, duration_minutes, chair_kind)
    return (await repository.fitting(session, opening))[:limit]
