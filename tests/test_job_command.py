"""`chairside jobs run NAME` while another run of the job is under way, and after that run's
process died: one line saying when it may run again (no traceback); a run whose process is
gone from this host is closed at once, not after its heartbeat goes stale."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from app.jobs.models import JobRun
from core.clock import wall_now
from core.db import Database
from tests.support.databases import backends
from tests.support.servers import ROOT, server_env
from tests.support.transactions import migrated_database


@pytest.fixture(params=backends())
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from migrated_database(request.param, tmp_path)


def run_command(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=ROOT,
        env=server_env(url),
        capture_output=True,
        text=True,
        timeout=120,
    )


def record_running(url: str, runner: str) -> uuid.UUID:
    """What a `lapse_sweep` run leaves while it works: its record, heartbeat fresh."""
    run_id = uuid.uuid4()

    async def write() -> None:
        db = Database(url)
        try:
            async with db.unit_of_work() as session:
                now = wall_now()
                session.add(
                    JobRun(
                        id=run_id,
                        job="lapse_sweep",
                        trigger="command",
                        runner=runner,
                        started_at=now,
                        heartbeat_at=now,
                    )
                )
        finally:
            await db.dispose()

    asyncio.run(write())
    return run_id


def read_run(url: str, run_id: uuid.UUID) -> JobRun:
    async def read() -> JobRun:
        db = Database(url)
        try:
            async with db.unit_of_work(write=False) as session:
                run = await session.scalar(select(JobRun).where(JobRun.id == run_id))
                assert run is not None
                return run
        finally:
            await db.dispose()

    return asyncio.run(read())


def test_a_running_job_is_one_line_and_a_dead_runs_record_is_closed_at_once(
    database_url: str,
) -> None:
    # A real process on this host stands for the run's worker: alive, then killed.
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        run_id = record_running(database_url, f"{socket.gethostname()}:{worker.pid}")

        busy = run_command(database_url, "jobs", "run", "lapse_sweep")
        assert busy.returncode == 75, busy.stderr
        assert "Traceback" not in busy.stderr + busy.stdout
        lines = busy.stderr.strip().splitlines()
        assert len(lines) == 1, busy.stderr
        assert "lapse_sweep is already running" in lines[0]
        assert f":{worker.pid}" in lines[0] and "may run again" in lines[0]
        assert read_run(database_url, run_id).outcome == "running"
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)

    # Its heartbeat is seconds old (far from the 90 s that makes a run stale), but its
    # process is gone from this host: the next run closes it and goes ahead.
    after = run_command(database_url, "jobs", "run", "lapse_sweep")
    assert after.returncode == 0, after.stderr
    assert "succeeded" in after.stdout
    dead = read_run(database_url, run_id)
    assert dead.outcome == "failed"
    assert dead.error is not None and "process is gone" in dead.error
    assert dead.finished_at is not None


def test_a_run_on_another_host_waits_for_its_heartbeat(database_url: str) -> None:
    # Another host's pid means nothing here: only a stopped heartbeat frees the job.
    run_id = record_running(database_url, "another-host.example:1")
    busy = run_command(database_url, "jobs", "run", "lapse_sweep")
    assert busy.returncode == 75 and "already running" in busy.stderr
    assert read_run(database_url, run_id).outcome == "running"
