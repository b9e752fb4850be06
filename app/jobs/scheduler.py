"""The scheduler: APScheduler in this process, running jobs only while it is the leader.

Any number of schedulers may run (one per API process, or `chairside scheduler` on its own);
only the one holding the leader lock runs jobs. On PostgreSQL the lock is an advisory lock held
by a dedicated connection: if the process dies, its connection closes and the lock is free at
once. On SQLite it is a lease row renewed every tick, taken over once it has expired (two
ticks); each takeover raises the lease's generation. Before a job starts, the transaction that
records its run checks that this process still holds the lock (the fence), so a leader that
froze past its lease and woke up starts nothing; a tick that finds the lead lost stops the
jobs under way here. Jobs are idempotent, so a takeover in the middle of a run does no harm.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

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
    """Whether this process may run jobs now, and the fence a job run is checked against.

    `holds` is what the last tick found; a process frozen past its lease (SIGSTOP, a stalled
    VM) wakes believing it. So every job run asks `fenced` in the transaction that records
    the run, and a leader that has lost the lease starts nothing.
    """

    def __init__(self, db: Database, tick: timedelta) -> None:
        self.db, self.tick = db, tick
        self._connection: AsyncConnection | None = None
        self._backend_pid: int | None = None  # PostgreSQL: the lock connection's backend
        self.generation: int | None = None  # SQLite: the lease generation we took
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

    async def fenced(self, session: AsyncSession) -> bool:
        """Whether this process still leads, asked in the caller's transaction.

        SQLite: the lease row still names us, with the generation we took (a takeover raises
        it); the caller's write transaction holds the database lock, so no takeover can slip
        in before its commit. PostgreSQL: our lock connection's backend still holds the
        advisory lock (a terminated backend has lost it, even if we have not noticed yet).
        """
        if not self.holds:
            return False
        if self.db.engine.dialect.name == "postgresql":
            if self._backend_pid is None:
                return False
            key = locks.scheduler_leader_key()
            held = await session.scalar(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                    " AND pid = :pid AND classid = :high AND objid = :low AND objsubid = 1"
                ),
                {
                    "pid": self._backend_pid,
                    "high": (key >> 32) & 0xFFFFFFFF,
                    "low": key & 0xFFFFFFFF,
                },
            )
            ours = bool(held)
        else:
            lease = await session.get(SchedulerLease, LEASE, populate_existing=True)
            ours = (
                lease is not None and lease.holder == RUNNER and lease.generation == self.generation
            )
            if ours and lease is not None and lease.expires_at <= wall_now():
                # Late (a stalled loop) but not taken over: still ours, and renewed with the
                # run's record, so no one takes it over while this job starts.
                lease.expires_at = wall_now() + 2 * self.tick
        if not ours and self.holds:
            self.holds = False
            log.warning("scheduler: this process no longer leads; starting nothing")
        return ours

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
            self._backend_pid = await connection.scalar(text("SELECT pg_backend_pid()"))
            return True
        await connection.close()
        return False

    async def _claim_lease(self) -> bool:
        now = wall_now()
        until = now + 2 * self.tick
        async with self.db.unit_of_work() as session:
            lease = await session.get(SchedulerLease, LEASE)
            if lease is None:
                session.add(
                    SchedulerLease(name=LEASE, holder=RUNNER, expires_at=until, generation=1)
                )
                self.generation = 1
                return True
            if lease.holder == RUNNER and lease.generation == self.generation:
                lease.expires_at = until
                return True
            if lease.expires_at <= now:
                # A takeover: the new generation fences off the one before, should it wake.
                lease.holder, lease.expires_at = RUNNER, until
                lease.generation += 1
                self.generation = lease.generation
                return True
            return False

    async def release(self) -> None:
        if self.db.engine.dialect.name == "postgresql":
            await self._drop()
        elif self.holds:
            async with self.db.unit_of_work() as session:
                await session.execute(
                    update(SchedulerLease)
                    .where(
                        SchedulerLease.name == LEASE,
                        SchedulerLease.holder == RUNNER,
                        SchedulerLease.generation == self.generation,
                    )
                    .values(expires_at=wall_now())
                )
        self.holds = False

    async def _drop(self) -> None:
        self._backend_pid = None
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
        # (job, scope) under way here, and the task running it
        self._running: dict[tuple[str, str | None], asyncio.Task[Any]] = {}
        self._led = False  # what the last tick found

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
            ("drug_check", {"hours": 1}),
            ("waitlist_offers", {"minutes": 1}),
            ("pas_inquiry", {"minutes": 5}),
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
        was, holds = self._led, await self.leader.claim()
        self._led = holds
        if holds and not was:
            log.info("scheduler: this process now runs the jobs", extra={"runner": RUNNER})
        elif was and not holds:
            log.warning("scheduler: this process lost the lead", extra={"runner": RUNNER})
            # Jobs are idempotent and their runs are recorded, so stopping one is safe; letting
            # it go on beside the new leader's is not.
            for task in self._running.values():
                task.cancel()

    async def _guarded(self, name: str, scope: str | None = None, **options: Any) -> None:
        task = asyncio.current_task()
        if not self.leader.holds or (name, scope) in self._running or task is None:
            return
        self._running[(name, scope)] = task
        try:
            await run_job(self.db, name, "schedule", scope, fence=self.leader.fenced, **options)
        except Conflict:
            pass  # under way elsewhere (an admin's run), or this process no longer leads
        except asyncio.CancelledError:
            if self._scheduler is None:
                raise  # the scheduler is stopping
        finally:
            self._running.pop((name, scope), None)

    async def _deliver(self) -> None:
        """Deliveries run every tick and are not recorded as job runs (they would swamp the
        record); each delivery keeps its own history."""
        if not self.leader.holds:
            return
        try:
            async with self.db.unit_of_work() as session:  # the fence may renew the lease
                if not await self.leader.fenced(session):
                    return
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
