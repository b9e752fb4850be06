"""A course planner rehearses its booking against the days it keeps, then locks the days it
will use and reads them again, each in one statement, and books on what it read (issue 19):
no lock and read per session, the same choices, and the lock order kept."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event
from sqlalchemy.engine import make_url

from core import clock, locks
from core.db import Database
from core.locks import LockOrderError
from scheduling.appointments import placement
from scheduling.appointments.center_days import CenterDays
from scheduling.centers import repository as center_repository
from scheduling.centers.rules import Span
from scheduling.courses import booking as course_booking
from scheduling.courses import service as courses
from scheduling.courses import slots as course_slots
from scheduling.courses.sessions import Context, local_day
from scheduling.localtime import zone
from tests.support.records import a_center, a_chair, a_course, a_patient
from tests.support.transactions import rolled_back

MONDAY = date(2027, 1, 11)
DAY_READ = "AS what"  # the statement reading days (`center_days._days_query`)
INSERT = "INSERT INTO appointments"


async def _book_a_course(db: Database, statements: list[str]) -> list[tuple[Any, ...]]:
    """A loading course and its maintenance booked through eight weeks, in a transaction
    rolled back; what it booked (phase, number, start, chair) and, in `statements`, what it
    asked the database while booking."""
    # Committed, each in a transaction of its own (each settles the patient's cover, the
    # last lock of the order), as a nightly run finds them.
    async with db.unit_of_work() as session:
        center = await a_center(session)
        for _ in range(2):
            await a_chair(session, center)
    async with db.unit_of_work() as session:
        patient = await a_patient(session)
    soon = clock.today(zone(center.timezone)) + timedelta(days=7)
    start = soon + timedelta(days=-soon.weekday() % 7)  # a Monday: the loading week is open
    async with db.unit_of_work() as session:
        course_id = (await a_course(session, center, patient, start)).id
    async with rolled_back(db) as session:
        course = await courses.get_course(session, course_id, for_update=True)
        days = CenterDays(await center_repository.get_center(session, center.id))
        statements.clear()
        result = await course_booking.book_through(
            session, course, start + timedelta(weeks=8), None, days
        )
        assert result.problems == []
        return sorted(
            (a.phase, a.sequence, a.start_at, local_day(a, center.timezone))
            for a in result.appointments
        )


def _counting(db: Database) -> list[str]:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    return statements


def test_a_course_locks_and_reads_its_days_once_and_books_as_it_would_one_by_one(
    migrated_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def body() -> None:
        db = Database(migrated_url)
        statements = _counting(db)
        try:
            booked = await _book_a_course(db, statements)
            inserts = [
                i for i, s in enumerate(statements) if s.startswith("INSERT INTO appointments")
            ]
            assert len(inserts) == len(booked) > 5  # five loading days, then maintenance
            reads = [i for i, s in enumerate(statements) if DAY_READ in s]
            # Every day read comes before the first booking: none per session.
            assert reads and max(reads) < min(inserts)
            if db.dialect == "postgresql":
                day_locks = [i for i, s in enumerate(statements) if "unnest(" in s]
                assert len(day_locks) == 1  # every day it books on, in one statement
                assert reads[-1] > day_locks[0]  # and read again after it, not in it
                singles = [s for s in statements if "pg_advisory_xact_lock($1)" in s]
                assert len(singles) == 1  # the center's planning lock only

            # Without the rehearsal, the booking locks and reads each day as it goes: the
            # same sessions in the same places.
            async def no_rehearsal(*_: Any) -> None:
                return None

            monkeypatch.setattr(course_booking, "_lock_the_days_it_will_use", no_rehearsal)
            one_by_one = await _book_a_course(db, statements)
            assert one_by_one == booked  # same days, same times (another, identical center)
            assert len([s for s in statements if DAY_READ in s]) > len(reads)
        finally:
            await db.dispose()

    asyncio.run(body())


def test_several_days_are_locked_together_in_the_order_of_the_locks(migrated_url: str) -> None:
    async def body() -> None:
        db = Database(migrated_url)
        try:
            center_id = uuid.uuid4()
            week = [MONDAY + timedelta(days=n) for n in (3, 0, 1)]
            async with rolled_back(db) as session:
                await locks.course_planning(session, [center_id])
                await locks.center_days(session, center_id, week)
                assert all(locks.holds(session, "center_day", (center_id, d)) for d in week)
                if db.dialect == "postgresql":
                    await _taken_elsewhere(migrated_url, center_id, week)
                await locks.center_days(session, center_id, [])  # nothing: no statement
                # A planner may take its center's days after a patient's cover, as one by one.
                await locks.patient_cover(session, [uuid.uuid4()])
                await locks.center_days(session, center_id, [MONDAY + timedelta(days=7)])
            async with rolled_back(db) as session:
                await locks.patient_cover(session, [uuid.uuid4()])
                with pytest.raises(LockOrderError, match="center_day lock asked for after"):
                    await locks.center_days(session, center_id, week)
        finally:
            await db.dispose()

    asyncio.run(body())


async def _taken_elsewhere(url: str, center_id: uuid.UUID, days: list[date]) -> None:
    other = await asyncpg.connect(
        make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    )
    try:
        async with other.transaction():
            for day in days:
                key = locks._key(f"{center_id}/{day.isoformat()}")
                assert await other.fetchval("SELECT pg_try_advisory_xact_lock($1)", key) is False
    finally:
        await other.close()


def test_the_booking_takes_the_rehearsals_slots_only_when_its_days_read_the_same(
    migrated_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Days unchanged under their locks: no second search, the same bookings. A day that
    reads differently (someone booked there meanwhile): every session is searched afresh,
    and none lands on the newcomer's chair and time."""
    searched: list[bool] = []  # per search: whether it was the rehearsal's
    search = course_slots._best_slot

    def counting(ctx: Any, *args: Any) -> Any:
        searched.append(ctx.rehearsing)
        return search(ctx, *args)

    monkeypatch.setattr(course_slots, "_best_slot", counting)

    async def body() -> None:
        db = Database(migrated_url)
        try:
            booked = await _book_a_course(db, [])
            assert searched and all(searched)  # the rehearsal searched; the booking did not

            # A visit appears between the rehearsal and the read under the lock, in the chair
            # and time the rehearsal chose on the first day it booked.
            rehearsed, refresh = Context.rehearsed, CenterDays.refresh_all
            chosen: list[Span] = []

            def keeping(ctx: Context, sessions: list[Any]) -> list[date]:
                first = min(ctx.pencilled, key=lambda a: a.start_at)
                chosen.append(Span(uuid.uuid4(), first.start_at, first.end_at, first.chair_id))
                return rehearsed(ctx, sessions)

            async def someone_books(self: CenterDays, session: Any, days: list[date]) -> None:
                await refresh(self, session, days)
                self._days[days[0]].add(chosen[-1])

            tried: list[tuple[Any, Any]] = []  # chair and start of each booking tried
            book = placement.book_planned

            async def placing(*args: Any, **kwargs: Any) -> Any:
                tried.append((args[2], args[4]))  # chair_id, start
                return await book(*args, **kwargs)

            monkeypatch.setattr(placement, "book_planned", placing)
            searched.clear()
            monkeypatch.setattr(Context, "rehearsed", keeping)
            monkeypatch.setattr(CenterDays, "refresh_all", someone_books)
            again = await _book_a_course(db, [])
            assert not all(searched)  # searched again outside the rehearsal
            assert len(again) == len(booked)
            newcomer = chosen[-1]
            # Not even tried there (and refused under the lock): the plan was dropped.
            assert (newcomer.chair_id, newcomer.start) not in tried
            assert len(tried) == len(again)
        finally:
            await db.dispose()

    asyncio.run(body())
