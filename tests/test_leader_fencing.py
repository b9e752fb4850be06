"""A scheduler frozen past its lease (SIGSTOP) must not run jobs when it wakes (SIGCONT).

Two real `chairside scheduler` processes on one database. The first leads; it is frozen
before its first jobs are due. On SQLite its lease runs out and the second takes over; on
PostgreSQL the advisory lock holds through the freeze (the second never leads), until the
frozen leader's lock backend is terminated. Then the first wakes up with its jobs overdue and
believing it still leads: the fence (the lease generation, or the lock's backend, checked in
the transaction that records the run) must stop every one of them.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select, text

from app.jobs.models import JobRun
from core import locks
from core.clock import wall_now
from core.db import Database
from tests.support.databases import backends
from tests.support.servers import ROOT, server_env
from tests.support.transactions import migrated_database
from tests.support.waiting import wait_for

SWEEPS = {"housekeeping", "lapse_sweep", "no_show_sweep", "reminders"}


@pytest.fixture(params=backends())
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from migrated_database(request.param, tmp_path)


def scheduler(url: str, log: Path, tick: float) -> subprocess.Popen[bytes]:
    env = {
        **server_env(url),
        "CHAIRSIDE_SCHEDULER_TICK_SECONDS": str(tick),
        "CHAIRSIDE_SCHEDULER": "true",
        "CHAIRSIDE_LOG_LEVEL": "INFO",
    }
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "app.cli", "scheduler"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def leads(log: Path) -> bool:
    return b"now runs the jobs" in log.read_bytes()


def runs_since(url: str, since: datetime) -> list[tuple[str, str]]:
    """(job, runner) of every run started since `since`."""

    async def read() -> list[tuple[str, str]]:
        db = Database(url)
        try:
            async with db.unit_of_work(write=False) as session:
                rows = await session.execute(
                    select(JobRun.job, JobRun.runner).where(JobRun.started_at >= since)
                )
                return [(job, runner) for job, runner in rows]
        finally:
            await db.dispose()

    return asyncio.run(read())


def terminate_lock_backend(url: str) -> int:
    """Terminate the PostgreSQL backend holding the scheduler's advisory lock, as an
    administrator (or a network fault) would: the lock goes with it."""
    key = locks.scheduler_leader_key()

    async def kill() -> int:
        db = Database(url)
        try:
            async with db.engine.connect() as connection:
                killed = await connection.scalar(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_locks"
                        " WHERE locktype = 'advisory' AND granted"
                        " AND classid = :high AND objid = :low AND objsubid = 1"
                        " AND database = (SELECT oid FROM pg_database"
                        "                 WHERE datname = current_database())"
                    ),
                    {"high": (key >> 32) & 0xFFFFFFFF, "low": key & 0xFFFFFFFF},
                )
                return int(killed or 0)
        finally:
            await db.dispose()

    return asyncio.run(kill())


def stop(*processes: subprocess.Popen[bytes]) -> None:
    for p in processes:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGCONT)
            p.terminate()
    for p in processes:
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


def test_a_frozen_leader_that_wakes_up_starts_no_job(database_url: str, tmp_path: Path) -> None:
    postgres = database_url.startswith("postgresql")
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    # The first ticks every second: its sweeps are due five ticks after it starts, its lease
    # lasts two. It is frozen as soon as it leads, before any sweep is due.
    first = scheduler(database_url, first_log, tick=1.0)
    second: subprocess.Popen[bytes] | None = None
    try:
        wait_for("the first scheduler to lead", lambda: leads(first_log))
        os.kill(first.pid, signal.SIGSTOP)
        frozen_at = wall_now()
        second = scheduler(database_url, second_log, tick=0.5)
        host = socket.gethostname()
        first_runner, second_runner = f"{host}:{first.pid}", f"{host}:{second.pid}"

        if postgres:
            # The advisory lock is held by the frozen process's open connection: no takeover.
            time.sleep(6)
            assert not leads(second_log)
            assert runs_since(database_url, frozen_at) == []
            assert terminate_lock_backend(database_url) == 1
        took_over = time.monotonic()
        wait_for("the second scheduler to take over", lambda: leads(second_log))
        takeover_seconds = time.monotonic() - took_over
        if not postgres:
            # Its sweeps come due soon after it starts; let it run them.
            wait_for(
                "the new leader's sweeps",
                lambda: {job for job, _ in runs_since(database_url, frozen_at)} >= SWEEPS,
            )

        # Frozen long enough for its own sweeps to be overdue when it wakes.
        time.sleep(max(0.0, 6 - (wall_now() - frozen_at).total_seconds()))
        len_before = len(first_log.read_bytes())
        os.kill(first.pid, signal.SIGCONT)
        # The woken process's sweeps are overdue and fire at once; give them time to try.
        wait_for(
            "the woken scheduler to notice", lambda: b"lead" in first_log.read_bytes()[len_before:]
        )
        time.sleep(3)
        runs = runs_since(database_url, frozen_at)
        print(
            f"\n{'postgresql' if postgres else 'sqlite'}: takeover {takeover_seconds:.1f} s, "
            f"runs since the freeze {sorted(runs)}"
        )
        assert [job for job, runner in runs if runner == first_runner] == []
        assert all(runner == second_runner for _, runner in runs)
        jobs = [job for job, _ in runs]
        assert len(jobs) == len(set(jobs))  # each sweep once
        assert first.poll() is None  # it woke and carried on as a follower
    finally:
        stop(first, *([second] if second else []))
