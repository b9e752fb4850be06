"""The jobs there are, how often they run, and how a run is recorded."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
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
from insurance.pas.client import Options as PayerOptions
from insurance.pas.jobs import pas_inquiry
from insurance.pas.service import Inquiry
from pharmacy.jobs import drug_check
from scheduling.jobs import auto_book, no_show_sweep, send_reminders
from scheduling.waitlist.jobs import offer_openings

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


async def _drug_check(db: Database, options: dict[str, Any]) -> dict[str, int]:
    return await drug_check(db, options.get("progress"))


async def _deliver(db: Database, _: dict[str, Any]) -> dict[str, int]:
    return await deliver(db, get_settings().webhook_retry_seconds)


async def _reminders(db: Database, _: dict[str, Any]) -> dict[str, int]:
    return await send_reminders(db, get_settings().reminder_hours)


async def _housekeeping(db: Database, _: dict[str, Any]) -> dict[str, int]:
    return await housekeeping(db)


async def _no_show_sweep(db: Database, options: dict[str, Any]) -> dict[str, int]:
    return await no_show_sweep(db, options.get("progress"))


async def _waitlist_offers(db: Database, _: dict[str, Any]) -> dict[str, int]:
    return await offer_openings(db)


async def _pas_inquiry(db: Database, _: dict[str, Any]) -> dict[str, int]:
    settings = get_settings()
    return await pas_inquiry(db, PayerOptions.of(settings), Inquiry.of(settings))


JOBS = {
    job.name: job
    for job in (
        Job("auto_book", "nightly, at each center's auto_book_at (local time)", _auto_book),
        Job("lapse_sweep", "hourly", _lapse_sweep),
        Job("no_show_sweep", "every 15 minutes, for centers that have closed", _no_show_sweep),
        Job("reminders", "every 5 minutes", _reminders),
        Job("webhook_delivery", "every tick (15 s)", _deliver),
        Job("housekeeping", "daily: old failed sign-ins", _housekeeping),
        Job("drug_check", "hourly: booked doses the stock will not cover", _drug_check),
        Job(
            "waitlist_offers",
            "every minute: waitlist offers past their hold expire, openings go to the next",
            _waitlist_offers,
        ),
        Job(
            "pas_inquiry",
            "every 5 minutes: pended prior authorizations whose inquiry is due ask the payer",
            _pas_inquiry,
        ),
    )
}


Fence = Callable[[AsyncSession], Awaitable[bool]]


class NotLeading(Conflict):
    """A scheduler's run its fence refused: the scheduler lost the lead (it froze past its
    lease, or its lock went) or its claim on the center, or the work was done meanwhile."""


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
    whoever starts it (the database refuses a second): Conflict while one is under way, saying
    when it may run again. A run whose process died (gone from this host, or its heartbeat
    stopped) is closed first. A scheduler's run passes its `fence`, asked in the transaction
    that records the run: NotLeading if it says this process may not run it now."""
    job = JOBS[name]
    run_id = uuid.uuid4()
    stale = timedelta(seconds=get_settings().job_stale_seconds)
    async with db.unit_of_work() as session:
        if fence is not None and not await fence(session):
            raise NotLeading(f"{name} was not started: its scheduler may not run it now")
        now = wall_now()
        await _close_dead_runs(session, name, scope, now - stale)
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
            raise await _already_running(session, name, scope, stale) from exc
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


def process_gone(runner: str) -> bool:
    """Whether the process named by a run's runner ("host:pid") is known to be gone: it ran
    on this host and no process has its pid. Elsewhere we cannot tell, and its heartbeat
    decides."""
    host, _, pid = runner.rpartition(":")
    if host != RUNNER.rpartition(":")[0] or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # a process of another user has that pid
    return False


async def _close_dead_runs(
    session: AsyncSession, name: str, scope: str | None, stale_before: datetime
) -> None:
    """Close the runs of this job and scope that died with their process: at once when it
    ran on this host and its pid is gone, or once its heartbeat has stopped."""
    running = await session.scalars(
        select(JobRun).where(
            JobRun.job == name,
            func.coalesce(JobRun.scope, "") == (scope or ""),
            JobRun.outcome == "running",
        )
    )
    for run in running:
        if process_gone(run.runner):
            error = "stopped without finishing: its process is gone"
        elif run.heartbeat_at < stale_before:
            error = "stopped without finishing: its heartbeat stopped"
        else:
            continue
        run.outcome, run.finished_at, run.error = "failed", wall_now(), error
    await session.flush()


async def _already_running(
    session: AsyncSession, name: str, scope: str | None, stale: timedelta
) -> Conflict:
    """The answer to a second run: which run is under way, and when this one may start."""
    other = await session.scalar(
        select(JobRun).where(
            JobRun.job == name,
            func.coalesce(JobRun.scope, "") == (scope or ""),
            JobRun.outcome == "running",
        )
    )
    if other is None:  # it finished in the meantime
        return Conflict(f"{name} was running a moment ago; run it again")
    free_by = other.heartbeat_at + stale
    return Conflict(
        f"{name} is already running (started {other.started_at:%Y-%m-%d %H:%M:%S} UTC by"
        f" {other.runner}); it may run again when that run ends, or from"
        f" {free_by:%H:%M:%S} UTC if its process has stopped",
        started_at=other.started_at.isoformat(),
        runner=other.runner,
        free_by=free_by.isoformat(),
    )


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
        # A run closed as dead while its process was frozen stays so when the process wakes
        # and finishes: another run has done (or is doing) that work and is the one counted.
        await session.execute(
            update(JobRun)
            .where(JobRun.id == run_id, JobRun.outcome == "running")
            .values(finished_at=wall_now(), outcome=outcome, counts=counts, error=error)
        )
        run = await session.scalar(select(JobRun).where(JobRun.id == run_id))
        assert run is not None
        return run
