"""What insurance settles when something it depends on changed, and its answer to the cover
check a `block` center makes. Importing `insurance` registers both (see `__init__.py`); the
settlers run in the order they are registered here."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from core import locks, settle
from insurance import allocation, usage, worklist
from scheduling import cover
from scheduling.courses.models import Course


@settle.settles(settle.SESSION_GIVEN)
async def draw_units(session: AsyncSession, given: list[tuple[uuid.UUID, Decimal | None]]) -> None:
    """A course session was given: it draws its units from the authorization that pays."""
    for appointment_id, dose_given_g in given:
        drawn = await usage.consume(session, appointment_id, dose_given_g)
        if drawn is not None:
            settle.mark(session, settle.COVER, drawn.patient_id)


@settle.settles(settle.COURSE_UNBOOKABLE)
async def flag_courses(session: AsyncSession, stuck: list[tuple[uuid.UUID, str]]) -> None:
    """These courses could not be booked as planned: the nurses hear of it (their queue)."""
    for course_id, problem in stuck:
        course = await session.get(Course, course_id)
        if course is not None:
            await worklist.course_unbookable(session, course, problem)


@settle.settles(settle.COURSE_BOOKED)
async def clear_courses(session: AsyncSession, course_ids: list[uuid.UUID]) -> None:
    await worklist.courses_booked(session, course_ids)


# Payers, products and centers whose change touches many patients: the next sweep recomputes
# those patients (one statement, however many).
settle.settles(settle.PAYER_CHANGED)(allocation.payers_changed)
settle.settles(settle.PRODUCT_CHANGED)(allocation.products_changed)
settle.settles(settle.CENTER_CHANGED)(allocation.centers_changed)


@settle.settles(settle.COVER_LATER)
async def review_later(session: AsyncSession, patient_ids: list[uuid.UUID]) -> None:
    """Under the patients' cover locks, so a recompute under way elsewhere cannot leave them
    marked reviewed on facts from before this change."""
    await locks.patient_cover(session, patient_ids)
    await allocation.mark_due(session, sorted(patient_ids))


@settle.settles(settle.COVER)
async def recompute(session: AsyncSession, patient_ids: list[uuid.UUID]) -> None:
    await locks.patient_cover(session, patient_ids)
    await allocation.recompute(session, patient_ids)


class _Check:
    async def uncovered(
        self, session: AsyncSession, patient_id: uuid.UUID, *, locked: bool = True
    ) -> dict[uuid.UUID, str]:
        return await allocation.uncovered(session, patient_id, locked=locked)

    async def why_uncovered(
        self, session: AsyncSession, patient_id: uuid.UUID, appointment_id: uuid.UUID
    ) -> str | None:
        return await allocation.uncovered_reason(session, patient_id, appointment_id)

    async def paid_periods(
        self, session: AsyncSession, appointment_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, tuple[date, date]]:
        return await allocation.paid_periods(session, appointment_ids)


cover.provide(_Check())
