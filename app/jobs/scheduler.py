"""The scheduler: APScheduler in this process, running jobs only while it is the leader.

Any number of schedulers may run (one per API process, or `chairside scheduler` on its own);
only the one holding the leader lock runs jobs. On PostgreSQL the lock is an advisory lock held
by a dedicated connection: if the process dies, its connection closes and the lock is free at
once. On SQLite it is a lease row renewed every tick, taken over once it has expired (two
ticks). Jobs are idempotent, so a takeover in the middle of a run does no harm.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from app.jobs.models import JobRun, SchedulerLease
from app.jobs.registry import RUNNER, run_job
from app.settings import get_settings
from core import locks
from core.clock import wall_now
from core.db import Database
from core.logs import describe
from core.outbox.delivery import deliver
from core.problems import Conflict
from scheduling.jobs import centers_due_for_booking

log = logging.getLogger("chairside.scheduler")
LEASE = "jobs"


class Leader:
    """Whether this process may run jobs now."""

    def __init__(self, db: Database, tick: timedelta) -> None:
        self.db, self.tick = db, tick
        self._connection: AsyncConnection | None = None
        self.holds = False

    async def claim(self) -> bool:
        """Take or keep the leadership; called every tick."""
        try:
            if self.db.engine.dialect.name == "postgresql":
                self.holds = await self._claim_advisory()
            else:
                self.holds = await self._claim_lease()
        except Exception as exc:
            log.warning("scheduler: leader check failed", extra={"error": describe(exc)})
            self.holds = False
        return self.holds

    async def _claim_advisory(self) -> bool:
        if self._connection is not None:
            try:
                # A half-open connection must not hang the tick (and leave `holds` true).
                await asyncio.wait_for(self._connection.execute(text("SELECT 1")), 5)
                return True  # the connection, and so the lock, is still ours
            except Exception:
                await self._drop()
        # Autocommit: the connection holds the session-level lock and never a transaction.
        connection = await (await self.db.engine.connect()).execution_options(
            isolation_level="AUTOCOMMIT"
        )
        got = await connection.scalar(
            text("SELECT pg_try_advisory_lock(:key)"), {"key": locks.scheduler_leader_key()}
        )
        if got:
            self._connection = connection
            return True
        await connection.close()
        return False

    async def _claim_lease(self) -> bool:
        now = wall_now()
        until = now + 2 * self.tick
        async with self.db.unit_of_work() as session:
            lease = await session.get(SchedulerLease, LEASE)
            if lease is None:
                session.add(SchedulerLease(name=LEASE, holder=RUNNER, expires_at=until))
                return True
            if lease.holder == RUNNER or lease.expires_at <= now:
                lease.holder, lease.expires_at = RUNNER, until
                return True
            return False

    async def release(self) -> None:
        if self.db.engine.dialect.name == "postgresql":
            await self._drop()
        elif self.holds:
            async with self.db.unit_of_work() as session:
                await session.execute(
                    update(SchedulerLease)
                    .where(SchedulerLease.name == LEASE, SchedulerLease.holder == RUNNER)
                    .values(expires_at=wall_now())
                )
        self.holds = False

    async def _drop(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            try:
                # Never back into the pool: it may still hold the session-level lock.
                await connection.invalidate()
                await connection.close()
            except Exception as exc:
                log.warning(
                    "scheduler: closing the lock connection", extra={"error": describe(exc)}
                )


class JobScheduler:
    """Ticks to hold the leadership; runs the jobs on their schedules while it does."""

    def __init__(self, db: Database, tick_seconds: float = 15.0) -> None:
        self.db = db
        self.leader = Leader(db, timedelta(seconds=tick_seconds))
        self.tick_seconds = tick_seconds
        self._scheduler: AsyncIOScheduler | None = None
        self._running: set[tuple[str, str | None]] = set()  # (job, scope) under way here

    async def start(self) -> None:
        # A late run still runs (a busy event loop must not skip the hourly sweep), once.
        scheduler = AsyncIOScheduler(
            timezone="UTC", job_defaults={"misfire_grace_time": None, "coalesce": True}
        )
        soon = datetime.now().astimezone() + timedelta(seconds=5 * self.tick_seconds)
        scheduler.add_job(
            self._tick,
            "interval",
            seconds=self.tick_seconds,
            id="tick",
            next_run_time=datetime.now().astimezone(),
            max_instances=1,
        )
        # Jobs on a fixed interval; each starts soon after a restart rather than a whole
        # interval later.
        for name, every in (
            ("lapse_sweep", {"hours": 1}),
            ("no_show_sweep", {"minutes": 15}),
            ("reminders", {"minutes": 5}),
            ("housekeeping", {"hours": 24}),
        ):
            scheduler.add_job(
                self._guarded,
                "interval",
                id=name,
                args=[name],
                next_run_time=soon,
                max_instances=1,
                **every,
            )
        scheduler.add_job(
            self._deliver,
            "interval",
            seconds=self.tick_seconds,
            id="webhook_delivery",
            max_instances=1,
            coalesce=True,
        )
        # Each center books at its own local time: checked every tick, cheap when none is due.
        scheduler.add_job(
            self._book_due_centers,
            "interval",
            seconds=self.tick_seconds,
            id="auto_book",
            max_instances=1,
            coalesce=True,
        )
        scheduler.start()
        self._scheduler = scheduler

    async def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        await self.leader.release()

    async def _tick(self) -> None:
        was = self.leader.holds
        if await self.leader.claim() and not was:
            log.info("scheduler: this process now runs the jobs", extra={"runner": RUNNER})

    async def _guarded(self, name: str, scope: str | None = None, **options: Any) -> None:
        if not self.leader.holds or (name, scope) in self._running:
            return
        self._running.add((name, scope))
        try:
            await run_job(self.db, name, "schedule", scope, **options)
        except Conflict:
            pass  # under way elsewhere (an admin's run, or a leader that lost its lock)
        finally:
            self._running.discard((name, scope))

    async def _deliver(self) -> None:
        """Deliveries run every tick and are not recorded as job runs (they would swamp the
        record); each delivery keeps its own history."""
        if self.leader.holds:
            try:
                await deliver(self.db, get_settings().webhook_retry_seconds)
            except Exception as exc:
                log.warning("scheduler: webhook delivery failed", extra={"error": describe(exc)})

    async def _book_due_centers(self) -> None:
        if not self.leader.holds:
            return
        async with self.db.unit_of_work(write=False) as session:
            # Only a run that finished its work counts: one cut short is done again.
            rows = await session.execute(
                select(JobRun.scope, func.max(JobRun.started_at))
                .where(
                    JobRun.job == "auto_book",
                    JobRun.scope.is_not(None),
                    JobRun.outcome == "succeeded",
                )
                .group_by(JobRun.scope)
            )
            started = {scope: at for scope, at in rows}
        booked_since = {uuid.UUID(scope): at for scope, at in started.items() if scope}
        for center_id in await centers_due_for_booking(self.db, booked_since):
            await self._guarded("auto_book", str(center_id), center_id=center_id)


async def run_forever(db: Database, tick_seconds: float = 15.0) -> None:
    """`chairside scheduler`: the scheduler alone, until the process is stopped."""
    scheduler = JobScheduler(db, tick_seconds)
    await scheduler.start()
    try:
        await asyncio.Event().wait()
    finally:
        await scheduler.stop()
