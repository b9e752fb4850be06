"""Two scheduler processes share a health system's night on PostgreSQL, center by center.

Six centers with active courses (the night benchmark's, `bench/night.py`, at a small size),
two real `chairside scheduler` processes; then the night comes (every center's booking time
moves to a midnight that has passed). Each process claims a center at a time (an advisory lock
per center) and books it. One of them is killed with SIGKILL in the middle of a center's run,
after it has booked one already: its center and those it had not reached go to the other.
Every center is booked by one finished run, each course session once, every course booked.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from app.jobs.models import JobRun
from bench import night
from core.clock import wall_now
from core.db import Database
from scheduling.appointments.models import ACTIVE_STATUSES, Appointment
from scheduling.courses.models import Course
from scheduling.jobs import centers_due_for_booking
from tests.support.databases import backends, postgres_admin_url
from tests.support.transactions import migrated_database
from tests.support.waiting import wait_for

postgresql_only = pytest.mark.skipif(
    postgres_admin_url() is None,
    reason="PostgreSQL only (schedulers share the night there): set CHAIRSIDE_TEST_POSTGRES_URL",
)

CENTERS = 6
COURSES = 24  # at each: a center's run takes a few seconds, long enough to be killed in


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    yield from migrated_database("postgresql", tmp_path)


@pytest.fixture(params=backends())
def any_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from migrated_database(request.param, tmp_path)


def test_due_centers_come_busiest_first_until_booked_tonight(any_database: str) -> None:
    """Schedulers go down this list claiming the next free center: the longest runs start
    first. A run started since a center's night came books it for tonight."""

    async def check() -> None:
        db = Database(any_database)
        try:
            small, big, middle = await night.build_centers(db, [1, 3, 2])
            assert await centers_due_for_booking(db, {}) == {}  # not yet night
            await night.night_comes(db)
            due = await centers_due_for_booking(db, {})
            assert list(due) == [big, middle, small]
            for since in due.values():
                assert since <= wall_now()
            tonight = {big: due[big], middle: due[middle] - timedelta(seconds=1)}
            assert list(await centers_due_for_booking(db, tonight)) == [middle, small]
        finally:
            await db.dispose()

    asyncio.run(check())


def runs_since(url: str, since: datetime) -> list[JobRun]:
    async def read() -> list[JobRun]:
        db = Database(url)
        try:
            return (await night.night_runs(db, since)).runs
        finally:
            await db.dispose()

    return asyncio.run(read())


def by(process: subprocess.Popen[bytes], runs: list[JobRun]) -> list[JobRun]:
    return [r for r in runs if r.runner.endswith(f":{process.pid}")]


def courses_without_a_session(url: str) -> int:
    """Active courses with nothing booked (each starts within the horizon: none should be)."""

    async def count() -> int:
        db = Database(url)
        try:
            async with db.unit_of_work(write=False) as session:
                booked = select(Appointment.course_id).where(
                    Appointment.course_id.is_not(None), Appointment.status.in_(ACTIVE_STATUSES)
                )
                found = await session.scalar(
                    select(func.count())
                    .select_from(Course)
                    .where(Course.status == "active", Course.id.not_in(booked))
                )
                return int(found or 0)
        finally:
            await db.dispose()

    return asyncio.run(count())


@postgresql_only
def test_two_schedulers_share_the_night_and_a_killed_ones_centers_go_to_the_other(
    database_url: str, tmp_path: Path
) -> None:
    async def build() -> None:
        db = Database(database_url)
        try:
            await night.build(db, CENTERS, COURSES)
        finally:
            await db.dispose()

    asyncio.run(build())
    crew = night.Crew.start(database_url, 2, tmp_path)
    first, second = crew.processes
    try:
        night.wait_until_up([crew])
        assert runs_since(database_url, datetime(2000, 1, 1, tzinfo=UTC)) == []  # not yet night

        async def comes() -> datetime:
            db = Database(database_url)
            try:
                return await night.night_comes(db)
            finally:
                await db.dispose()

        came = asyncio.run(comes())

        def booking_its_second_center() -> tuple[subprocess.Popen[bytes], JobRun] | None:
            runs = runs_since(database_url, came)
            for process in crew.processes:
                mine = by(process, runs)
                running = [r for r in mine if r.outcome == "running"]
                if running and any(r.outcome == "succeeded" for r in mine):
                    return process, running[0]
            return None

        victim, cut_short = wait_for(
            "a process booking its second center", booking_its_second_center
        )
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(10)
        survivor = second if victim is first else first
        killed = next(r for r in runs_since(database_url, came) if r.id == cut_short.id)
        assert killed.outcome == "running"  # killed mid-run, not between two

        def every_center_booked() -> list[JobRun] | None:
            runs = runs_since(database_url, came)
            done = {r.scope for r in runs if r.outcome == "succeeded"}
            return runs if len(done) == CENTERS else None

        runs = wait_for("the survivor to book the rest of the night", every_center_booked)
        assert survivor.poll() is None
    finally:
        night.stop_schedulers(crew.processes)

    succeeded = [r for r in runs if r.outcome == "succeeded"]
    spread = {p.pid: len(by(p, succeeded)) for p in crew.processes}
    print(f"\ncenters booked by each process: {spread} (killed: {victim.pid})")
    # Each center booked by one finished run: none twice, whoever read it as due.
    assert sorted(Counter(r.scope for r in succeeded).values()) == [1] * CENTERS
    # Both did some of the night's work.
    assert by(victim, succeeded) and by(survivor, succeeded)
    # The killed run is closed as failed (its process is gone), and its center was booked,
    # whole, by the survivor.
    dead = next(r for r in runs if r.id == killed.id)
    assert dead.outcome == "failed" and dead.error is not None and "gone" in dead.error
    (redone,) = [r for r in succeeded if r.scope == killed.scope]
    assert redone in by(survivor, succeeded) and redone.counts["failed"] == 0
    # No center was booked by two runs at once: each began after the one before had ended.
    for scope in {r.scope for r in runs}:
        mine = sorted((r for r in runs if r.scope == scope), key=lambda r: r.started_at)
        for earlier, later in itertools.pairwise(mine):
            assert earlier.finished_at is not None and earlier.finished_at <= later.started_at

    async def booked() -> tuple[int, int]:
        db = Database(database_url)
        try:
            return await night.sessions_booked(db)
        finally:
            await db.dispose()

    total, twice = asyncio.run(booked())
    assert twice == 0  # no course session booked twice
    # What the killed run booked before it died stays booked, counted in no run's record.
    assert total >= sum(int(r.counts["booked"]) for r in succeeded) > 0
    assert courses_without_a_session(database_url) == 0
