"""What a change implies is settled in one place: marks made by use cases are settled when the
outermost use case returns, and whatever is still marked before any commit."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core import settle
from core.db import Database
from insurance.models import CoverageReview
from scheduling.centers.models import Center
from tests.support.records import a_center, a_course, a_patient
from tests.support.transactions import in_transaction

MONDAY = date(2027, 1, 11)
SEEN: list[tuple[str, list[Any]]] = []


@settle.settles("test: first")
async def _first(session: AsyncSession, keys: list[Any]) -> None:
    SEEN.append(("first", keys))


@settle.settles("test: second")
async def _second(session: AsyncSession, keys: list[Any]) -> None:
    SEEN.append(("second", keys))
    settle.mark(session, "test: first", *[k * 10 for k in keys])  # a settler may mark more


@settle.use_case
async def _inner(session: AsyncSession, key: int) -> None:
    settle.mark(session, "test: second", key)


@settle.use_case
async def _outer(session: AsyncSession) -> list[tuple[str, list[Any]]]:
    await _inner(session, 1)
    await _inner(session, 1)  # marked twice, settled once
    await _inner(session, 2)
    return list(SEEN)  # what had been settled when the inner use cases returned


def test_the_outermost_use_case_settles_each_key_once_in_registration_order() -> None:
    SEEN.clear()
    session = AsyncSession()
    during: list[tuple[str, list[Any]]] = asyncio.run(_outer(session))  # type: ignore[arg-type]
    assert during == []  # nothing settled while the outer use case ran
    assert SEEN == [("second", [1, 2]), ("first", [10, 20])]
    assert settle.pending(session) == {}


def test_a_consequence_nobody_settles_is_an_error() -> None:
    session = AsyncSession()
    settle.mark(session, "test: nobody settles this", 1)
    with pytest.raises(RuntimeError, match="nothing settles test: nobody settles this"):
        asyncio.run(settle.settle(session))


def test_a_batch_of_use_cases_settles_once_at_its_end() -> None:
    SEEN.clear()

    async def body() -> list[tuple[str, list[Any]]]:
        session = AsyncSession()
        async with settle.batch(session):
            await _inner(session, 3)
            await _inner(session, 4)
            during = list(SEEN)
        return during

    assert asyncio.run(body()) == []
    assert SEEN == [("second", [3, 4]), ("first", [30, 40])]


async def _reviews(session: AsyncSession, patient_id: uuid.UUID) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(CoverageReview)
        .where(CoverageReview.patient_id == patient_id)
    )
    return int(count or 0)


def test_ordering_a_course_recomputes_the_patients_cover_before_it_returns(
    migrated_url: str,
) -> None:
    """No route asks for it: the use case marks the patient's cover, and it is settled (the
    recompute leaves the patient's next review date) by the time the use case returns."""

    async def body(session: AsyncSession) -> tuple[int, int, dict[str, list[Any]]]:
        center = await a_center(session)
        patient = await a_patient(session)
        before = await _reviews(session, patient.id)
        await a_course(session, center, patient, MONDAY)
        return before, await _reviews(session, patient.id), settle.pending(session)

    before, after, pending = in_transaction(migrated_url, body)
    assert (before, after, pending) == (0, 1, {})


def test_the_unit_of_work_settles_what_is_left_before_it_commits(migrated_url: str) -> None:
    """A job step or script that marks a consequence outside any use case still commits it
    settled."""

    async def body() -> int:
        db = Database(migrated_url)
        try:
            async with db.unit_of_work() as session:
                patient = await a_patient(session)
                settle.mark(session, settle.COVER, patient.id)
            async with db.unit_of_work(write=False) as session:
                return await _reviews(session, patient.id)
        finally:
            await db.dispose()

    assert asyncio.run(body()) == 1


def test_an_unsettled_consequence_stops_the_commit_and_nothing_is_kept(migrated_url: str) -> None:
    async def body() -> int:
        db = Database(migrated_url)
        name = f"Center {uuid.uuid4().hex[:6]}"
        try:
            with pytest.raises(RuntimeError, match="nothing settles"):
                async with db.unit_of_work() as session:
                    await a_center(session, name=name)
                    settle.mark(session, "test: nobody settles this either", 1)
            async with db.unit_of_work(write=False) as session:
                found = await session.scalar(select(func.count()).where(Center.name == name))
                return int(found or 0)
        finally:
            await db.dispose()

    assert asyncio.run(body()) == 0
