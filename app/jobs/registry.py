"""The jobs there are, how often they run, and how a run is recorded."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update

from app.db import Database, utcnow
from app.jobs.models import JobRun
from app.jobs.no_shows import no_show_sweep
from app.logs import describe
from app.outbox.delivery import deliver
from app.outbox.reminders import send_reminders
from insurance.jobs import lapse_sweep
from scheduling.jobs import auto_book

RUNNER = f"{socket.gethostname()}:{os.getpid()}"[:80]


@dataclass(frozen=True)
class Job:
    name: str
    schedule: str  # for people: when it runs on its own
    run: Callable[[Database, dict[str, Any]], Awaitable[dict[str, int]]]


async def _auto_book(db: Database, options: dict[str, Any]) -> dict[str, int]:
    return await auto_book(db, options.get("center_id"), options.get("progress"))


async def _lapse_sweep(db: Database, _: dict[str, Any]) -> dict[str, int]:
    return await lapse_sweep(db)


async def _deliver(db: Database, _: dict[str, Any]) -> dict[str, int]:
    return await deliver(db)


async def _reminders(db: Database, _: dict[str, Any]) -> dict[str, int]:
    return await send_reminders(db)


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
    )
}


async def run_job(
    db: Database, name: str, trigger: str, scope: str | None = None, **options: Any
) -> JobRun:
    """Run a job now and keep the record: started, finished, outcome, counts, error (the
    exception's type and place, never its message)."""
    job = JOBS[name]
    run_id = uuid.uuid4()
    async with db.unit_of_work() as session:
        session.add(JobRun(id=run_id, job=name, scope=scope, trigger=trigger, runner=RUNNER))
    outcome, counts, error = "succeeded", {}, None
    try:
        counts = await job.run(db, options)
    except Exception as exc:
        outcome, error = "failed", " < ".join(describe(exc))[:300]
    async with db.unit_of_work() as session:
        await session.execute(
            update(JobRun)
            .where(JobRun.id == run_id)
            .values(finished_at=utcnow(), outcome=outcome, counts=counts, error=error)
        )
        run = await session.scalar(select(JobRun).where(JobRun.id == run_id))
        assert run is not None
    return run
