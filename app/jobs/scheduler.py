"""The scheduler: APScheduler in this process, running jobs while it is the leader, and on
PostgreSQL sharing the night's booking with every other scheduler, center by center.

Any number of schedulers may run (one per API process, or `chairside scheduler` on its own);
only the one holding the leader lock runs jobs. On PostgreSQL the lock is an advisory lock held
by a dedicated connection: if the process dies, its connection closes and the lock is free at
once. On SQLite it is a lease row renewed every tick, taken over once it has expired (two
ticks); each takeover raises the lease's generation. Before a job starts, the transaction that
records its run checks that this process still holds the lock (the fence), so a leader that
froze past its lease and woke up starts nothing; a tick that finds the lead lost stops the
jobs under way here. Jobs are idempotent, so a takeover in the middle of a run does no harm.

The nightly booking is the exception on PostgreSQL: every scheduler, leader or not, books the
centers whose night has come, claiming each for its run (`Claims`: an advisory lock per
center on a connection of the pass's own), so a health system's night spreads over its
processes. A center is booked by one process at a time, and recorded once a night: the run's
fence asks, in the transaction that records it, that the claim is still held and that nobody
has booked the center since its night came. SQLite is one machine: its leader books them all.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import exists, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.jobs.models import JobRun, SchedulerLease
from app.jobs.registry import RUNNER, Fence, run_job
from app.settings import get_settings
from core import heap, locks
from core.clock import wall_now
from core.db import Database
from core.logs import describe
from core.outbox.delivery import deliver
from core.problems import Conflict
from scheduling.jobs import centers_due_for_booking

log = logging.getLogger("chairside.scheduler")
LEASE = "jobs"
# How far back a booking run may still be tonight's: a center's night began within the last
# day (two, to be safe across a change of clocks), so older runs need not be read each tick.
NIGHT_LOOKBACK = timedelta(days=2)


async def _holds_advisory(session: AsyncSession, backend_pid: int, key: int) -> bool:
    """Whether that backend holds the session-level advisory lock `key`, asked in the
    caller's transaction (a terminated backend has lost it, even if its process has not
    noticed yet)."""
    held = await session.scalar(
        text(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND pid = :pid AND classid = :high AND objid = :low AND objsubid = 1"
        ),
        {"pid": backend_pid, "high": (key >> 32) & 0xFFFFFFFF, "low": key & 0xFFFFFFFF},
    )
    return bool(held)


async def _own_connection(db: Database) -> tuple[AsyncConnection, int]:
    """A connection for session-level locks, and its backend's pid. Autocommit: it holds
    locks and never a transaction."""
    connection = await (await db.engine.connect()).execution_options(isolation_level="AUTOCOMMIT")
    pid = await connection.scalar(text("SELECT pg_backend_pid()"))
    return connection, int(pid)


async def _discard(connection: AsyncConnection) -> None:
    try:
        # Never back into the pool: it may still hold session-level locks.
        await connection.invalidate()
        await connection.close()
    except Exception as exc:
        log.warning("scheduler: closing a lock connection", extra={"error": describe(exc)})


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
            ours = self._backend_pid is not None and await _holds_advisory(
                session, self._backend_pid, locks.scheduler_leader_key()
            )
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
        connection, pid = await _own_connection(self.db)
        got = await connection.scalar(
            text("SELECT pg_try_advisory_lock(:key)"), {"key": locks.scheduler_leader_key()}
        )
        if got:
            self._connection, self._backend_pid = connection, pid
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
            await _discard(connection)


class Claims:
    """The center this process is booking (PostgreSQL): a session-level advisory lock per
    center (`locks.center_booking_key`), held on one connection of its own for one pass over
    the centers that are due, and given back when the center's run ends.

    Chosen over a claim row because the database itself ties the lock to a live connection:
    killed, a process's connection closes and its center is free at once for another to
    take over (the dead run's record is closed as failed by the next run, see `run_job`);
    frozen (SIGSTOP, a stalled VM), it keeps the center and nobody else books it until it
    wakes. Should its backend go while it books (terminated, a network fault), the next tick
    finds the connection dead and cancels the run, and the next run's fence would refuse it.
    """

    def __init__(self, connection: AsyncConnection, backend_pid: int) -> None:
        self._connection, self.backend_pid = connection, backend_pid
        self._using = asyncio.Lock()  # the tick's check and the pass share the connection
        self.lost = False

    @classmethod
    @asynccontextmanager
    async def opened(cls, db: Database) -> AsyncIterator[Claims]:
        connection, pid = await _own_connection(db)
        claims = cls(connection, pid)
        try:
            yield claims
        finally:
            await _discard(connection)  # whatever it still holds goes with it

    async def take(self, center_id: uuid.UUID) -> bool:
        """Claim the center; False while another process books it (or the connection has
        gone: the pass ends, and the next tick's opens a new one)."""
        return bool(await self._ask("SELECT pg_try_advisory_lock(:key)", center_id))

    async def give_back(self, center_id: uuid.UUID) -> None:
        await self._ask("SELECT pg_advisory_unlock(:key)", center_id)

    async def _ask(self, sql: str, center_id: uuid.UUID) -> object:
        if self.lost:
            return None
        try:
            async with self._using:
                return await self._connection.scalar(
                    text(sql), {"key": locks.center_booking_key(center_id)}
                )
        except Exception as exc:
            self.lost = True  # and with the connection, every claim on it
            log.warning("scheduler: the claims connection failed", extra={"error": describe(exc)})
            return None

    async def alive(self) -> bool:
        """Whether the connection, and so every claim on it, is still there."""
        try:
            async with self._using:
                await asyncio.wait_for(self._connection.execute(text("SELECT 1")), 5)
        except Exception:
            self.lost = True
        return not self.lost

    async def held(self, session: AsyncSession, center_id: uuid.UUID) -> bool:
        """The fence: whether this claim still holds the center, asked in the caller's
        transaction."""
        return not self.lost and await _holds_advisory(
            session, self.backend_pid, locks.center_booking_key(center_id)
        )


async def _booked_tonight(session: AsyncSession, center_id: uuid.UUID, since: datetime) -> bool:
    """Whether a booking run of the center that started since its night came has finished."""
    return bool(
        await session.scalar(
            select(
                exists().where(
                    JobRun.job == "auto_book",
                    JobRun.scope == str(center_id),
                    JobRun.outcome == "succeeded",
                    JobRun.started_at >= since,
                )
            )
        )
    )


def _once_tonight(fence: Fence, center_id: uuid.UUID, since: datetime) -> Fence:
    """`fence`, and no booking of the center finished since its night came: the list of due
    centers was read before some other process (or an earlier center's run here) booked it."""

    async def fenced(session: AsyncSession) -> bool:
        return await fence(session) and not await _booked_tonight(session, center_id, since)

    return fenced


class JobScheduler:
    """Ticks to hold the leadership; runs the jobs on their schedules while it does, and (on
    PostgreSQL) books the centers it can claim whether it leads or not."""

    def __init__(self, db: Database, tick_seconds: float = 15.0) -> None:
        self.db = db
        self.leader = Leader(db, timedelta(seconds=tick_seconds))
        self.tick_seconds = tick_seconds
        # One machine's database has one writer: there, the leader books every center.
        self.shares_the_night = db.engine.dialect.name == "postgresql"
        self._scheduler: AsyncIOScheduler | None = None
        # The leader's (job, scope) under way here, and the task running it
        self._running: dict[tuple[str, str | None], asyncio.Task[Any]] = {}
        # The center this process is booking under a claim, and the task booking it
        self._claimed: dict[uuid.UUID, asyncio.Task[Any]] = {}
        self._claims: Claims | None = None  # the pass under way
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
        claims = self._claims
        if self._claimed and claims is not None and not await claims.alive():
            log.warning("scheduler: this process lost its claim on a center; stopping its run")
            for task in self._claimed.values():
                task.cancel()

    async def _guarded(self, name: str) -> None:
        if self.leader.holds:
            await self._run(self._running, (name, None), name, None, self.leader.fenced)

    async def _run(
        self,
        under_way: dict[Any, asyncio.Task[Any]],
        key: Any,
        name: str,
        scope: str | None,
        fence: Fence,
        **options: Any,
    ) -> None:
        """Run the job unless it is under way here already; what must stop it (a lost lead,
        a lost claim) finds it under `key` in `under_way`."""
        task = asyncio.current_task()
        if key in under_way or task is None:
            return
        under_way[key] = task
        try:
            await run_job(self.db, name, "schedule", scope, fence=fence, **options)
        except Conflict:
            pass  # under way elsewhere (an admin's run), or its fence refused it
        except asyncio.CancelledError:
            if self._scheduler is None:
                raise  # the scheduler is stopping
        finally:
            under_way.pop(key, None)

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
        if not (self.shares_the_night or self.leader.holds):
            return
        due = await centers_due_for_booking(self.db, await self._last_booked())
        if not due:
            return
        if not self.shares_the_night:
            for center_id, since in due.items():
                fence = _once_tonight(self.leader.fenced, center_id, since)
                if self.leader.holds:
                    scope = str(center_id)
                    key = ("auto_book", scope)
                    await self._run(
                        self._running, key, "auto_book", scope, fence, center_id=center_id
                    )
            return
        async with Claims.opened(self.db) as claims:
            self._claims = claims
            try:
                for center_id, since in due.items():
                    await self._book_claimed(claims, center_id, since)
            finally:
                self._claims = None

    async def _book_claimed(self, claims: Claims, center_id: uuid.UUID, since: datetime) -> None:
        if not await claims.take(center_id):
            return  # another process is booking it

        async def held(session: AsyncSession) -> bool:
            return await claims.held(session, center_id)

        try:
            await self._run(
                self._claimed,
                center_id,
                "auto_book",
                str(center_id),
                _once_tonight(held, center_id, since),
                center_id=center_id,
            )
        finally:
            await claims.give_back(center_id)

    async def _last_booked(self) -> dict[uuid.UUID, datetime]:
        """Each center's last finished booking run lately. Only a run that finished its work
        counts: one cut short is done again."""
        async with self.db.unit_of_work(write=False) as session:
            rows = await session.execute(
                select(JobRun.scope, func.max(JobRun.started_at))
                .where(
                    JobRun.job == "auto_book",
                    JobRun.scope.is_not(None),
                    JobRun.outcome == "succeeded",
                    JobRun.started_at >= wall_now() - NIGHT_LOOKBACK,
                )
                .group_by(JobRun.scope)
            )
            return {uuid.UUID(scope): at for scope, at in rows if scope}


async def run_forever(db: Database, tick_seconds: float = 15.0) -> None:
    """`chairside scheduler`: the scheduler alone, until the process is stopped."""
    scheduler = JobScheduler(db, tick_seconds)
    heap.freeze_loaded()  # before the first job: as an API worker does at startup
    await scheduler.start()
    try:
        await asyncio.Event().wait()
    finally:
        await scheduler.stop()
