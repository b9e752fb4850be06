"""The jobs there are, how often they run, and how a run is recorded."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.jobs.housekeeping import housekeeping
from app.jobs.models import JobRun
from app.settings import get_settings
from core.clock import wall_now
from core.db import Database
from core.logs import describe
from core.outbox.delivery import deliver
from core.problems import Conflict
from insurance.jobs import lapse_sweep, review_now
from scheduling.jobs import auto_book, no_show_sweep, send_reminders

RUNNER = f"{socket.gethostname()}:{os.getpid()}"[:80]
log = logging.getLogger("chairside.jobs")


@dataclass(frozen=True)
class Job:
    name: str
    schedule: str  # for people: when it runs on its own
    run: Callable[[Database, dict[str, Any]], Awaitable[dict[str, int]]]


async def _auto_book(db: Database, options: dict[str, Any]) -> dict[str, int]:
    run = await auto_book(db, options.get("center_id"), options.get("progress"))
    await review_now(db, run.patients)  # whose cover the run changed, together
    return run.counts


async def _lapse_sweep(db: Database, _: dict[str, Any]) -> dict[str, int]:
    return await lapse_sweep(db)


async def _deliver(db: Database, _: dict[str, Any]) -> dict[str, int]:
    return await deliver(db, get_settings().webhook_retry_seconds)


async def _reminders(db: Database, _: dict[str, Any]) -> dict[str, int]:
    return await send_reminders(db, get_settings().reminder_hours)


async def _housekeeping(db: Database, _: dict[str, Any]) -> dict[str, int]:
    return await housekeeping(db)


async def _no_show_sweep(db: Database, options: dict[str, Any]) -> dict[str, int]:
    return await no_show_sweep(db, options.get("progress"))


JOBS = {
    job.name: job
    for job in (
        Job("auto_book", "nightly, at each center's auto_book_at (local time)", _auto_book),
        Job("lapse_sweep", "hourly", _lapse_sweep),
        Job("no_show_sweep", "every 15 minutes, for centers that have closed", _no_show_sweep),
        Job("reminders", "every 5 minutes", _reminders),
        Job("webhook_delivery", "every tick (15 s)", _deliver),
        Job("housekeeping", "daily: old failed sign-ins", _housekeeping),
    )
}


Fence = Callable[[AsyncSession], Awaitable[bool]]


class NotLeading(Conflict):
    """A scheduler that lost the lead (it froze past its lease, or its lock went) starts
    nothing more."""


async def run_job(
    db: Database,
    name: str,
    trigger: str,
    scope: str | None = None,
    *,
    fence: Fence | None = None,
    **options: Any,
) -> JobRun:
    """Run a job now and keep the record: started, finished, outcome, counts, error (the
    exception's type and place, never its message). One run of a job and scope at a time,
    whoever starts it (the database refuses a second): Conflict while one is under way. A
    run whose heartbeat stopped (its process died) is closed as failed first. A scheduler's run
    passes its `fence`, asked in the transaction that records the run: NotLeading if it says
    this process no longer leads."""
    job = JOBS[name]
    run_id = uuid.uuid4()
    stale = timedelta(seconds=get_settings().job_stale_seconds)
    async with db.unit_of_work() as session:
        if fence is not None and not await fence(session):
            raise NotLeading(f"{name} was not started: this scheduler no longer leads")
        now = wall_now()
        await session.execute(
            update(JobRun)
            .where(
                JobRun.job == name,
                func.coalesce(JobRun.scope, "") == (scope or ""),
                JobRun.outcome == "running",
                JobRun.heartbeat_at < now - stale,
            )
            .values(outcome="failed", finished_at=now, error="stopped without finishing")
        )
        try:
            async with session.begin_nested():
                session.add(
                    JobRun(
                        id=run_id,
                        job=name,
                        scope=scope,
                        trigger=trigger,
                        runner=RUNNER,
                        heartbeat_at=now,
                    )
                )
        except IntegrityError as exc:
            raise Conflict(f"{name} is already running") from exc
    beat = asyncio.create_task(_heartbeat(db, run_id, stale / 3))
    outcome, counts = "failed", {}
    error: str | None = "cancelled before it finished"
    try:
        counts = await job.run(db, options)
        outcome, error = "succeeded", None
    except Exception as exc:
        error = " < ".join(describe(exc))[:300]
    finally:
        beat.cancel()
        # Even when cancelled (a stopping scheduler), the record says how it ended.
        run = await asyncio.shield(_finish(db, run_id, outcome, counts, error))
    return run


async def _heartbeat(db: Database, run_id: uuid.UUID, every: timedelta) -> None:
    while True:
        await asyncio.sleep(every.total_seconds())
        try:
            async with db.unit_of_work() as session:
                await session.execute(
                    update(JobRun).where(JobRun.id == run_id).values(heartbeat_at=wall_now())
                )
        except Exception as exc:
            log.warning("job heartbeat failed", extra={"error": describe(exc)})


async def _finish(
    db: Database, run_id: uuid.UUID, outcome: str, counts: dict[str, int], error: str | None
) -> JobRun:
    async with db.unit_of_work() as session:
        await session.execute(
            update(JobRun)
            .where(JobRun.id == run_id)
            .values(finished_at=wall_now(), outcome=outcome, counts=counts, error=error)
        )
        run = await session.scalar(select(JobRun).where(JobRun.id == run_id))
        assert run is not None
        return run
