"""The night of a health system: several centers booked by one scheduler process, then by two.

On PostgreSQL: N centers in four US time zones (each with chairs, open every day 07:00-19:00,
a booking horizon of 84 days), M active courses at each (a quarter CIDP with a 5-day
induction then every 21 days, the rest maintenance every 28 days), built once into a template
database. Each run gets a copy of it (CREATE DATABASE ... TEMPLATE), starts that many real
`chairside scheduler` processes, waits until they are up, and then lets the night come: every
center's `auto_book_at` moves to 00:00, which has passed in every time zone. It is timed from
then until every center has a finished booking run tonight (the runs' own records). The other
jobs run as they would, on the leader.

Printed for each run: seconds, sessions booked (in the database and in the runs' counts), the
centers and sessions each process booked (the spread), sessions booked twice (always 0: the
database refuses them), and each process's memory. Then the goal: two processes finish faster
than one (the floor is the one-process run of the same invocation), the ratio, met/NOT met,
and whether both booked the same sessions.

    .venv/bin/python -m bench.night [--centers 8] [--courses 250] [--pg-url URL]

`--centers 2 --courses 5` is the smoke size. It prints figures; it asserts nothing about
timing. Every database is dropped at the end, also after an error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
from sqlalchemy import func, select, update
from sqlalchemy.engine import make_url

from app.jobs.models import JobRun
from app.migrate import upgrade
from bench import memory
from bench.autobook import a_course, analyze
from core.clock import wall_now
from core.db import Database
from scheduling.appointments.models import ACTIVE_STATUSES, Appointment
from scheduling.catalog.models import Product
from scheduling.centers import service as centers
from scheduling.centers.models import Center
from scheduling.centers.schemas import CenterCreate, ChairCreate
from tests.support.databases import drop_database, fresh_database
from tests.support.servers import ROOT, server_env

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
ZONES = ("America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles")
CHAIRS = 24
NURSES = 6
HORIZON_DAYS = 84  # 12 weeks
NOT_YET = "23:59"  # the booking time before the night comes (see `usable_zones`)
TICK_SECONDS = 0.5
STARTUP_GRACE_S = 2.0  # then every process has ticked, and the leader's first jobs have run


def say(line: str = "") -> None:
    print(line, flush=True)


def usable_zones() -> list[str]:
    """The zones where 23:59 has not come yet today (and will not in the next few minutes),
    so a center booking then waits for the night this benchmark brings."""
    return [z for z in ZONES if datetime.now(ZoneInfo(z)).time() < clock_time(23, 30)]


async def build(db: Database, center_count: int, courses_each: int) -> list[uuid.UUID]:
    """The centers and their courses, none due yet; the centers' ids."""
    return await build_centers(db, [courses_each] * center_count)


async def build_centers(db: Database, sizes: Sequence[int]) -> list[uuid.UUID]:
    """A center for each size, with that many active courses, none due yet; their ids."""
    rng = random.Random(7)
    zones = usable_zones()
    ids: list[uuid.UUID] = []
    async with db.unit_of_work() as session:
        product_id = await session.scalar(select(Product.id).where(Product.hcpcs_code == "J1561"))
        assert product_id is not None, "the seeded J1561 product is missing"
        for c, courses_each in enumerate(sizes):
            tz = zones[c % len(zones)]
            center = await centers.create_center(
                session,
                CenterCreate.model_validate(
                    {
                        "name": f"Night center {c}",
                        "timezone": tz,
                        "patients_per_nurse": 4,
                        "booking_horizon_days": HORIZON_DAYS,
                        "auto_book_at": NOT_YET,
                        "opening_hours": [
                            {"weekday": d, "opens": "07:00", "closes": "19:00"} for d in range(7)
                        ],
                        "staffing": [
                            {"weekday": d, "start": "07:00", "end": "19:00", "nurses": NURSES}
                            for d in range(7)
                        ],
                    }
                ),
            )
            ids.append(center.id)
            for i in range(CHAIRS):
                await centers.create_chair(session, center, ChairCreate(label=f"N{c}-{i:02d}"))
            tomorrow = datetime.now(ZoneInfo(tz)).date() + timedelta(days=1)
            for n in range(courses_each):
                mrn = f"NIGHT{c:02d}{n:05d}"
                await a_course(session, rng, center.id, product_id, tomorrow, mrn, n % 4 == 0)
    await analyze(db)
    return ids


def start_scheduler(url: str, log: Path, **env: str) -> subprocess.Popen[bytes]:
    """A real `chairside scheduler` process, its log lines in `log`."""
    settings = {
        **server_env(url),
        "CHAIRSIDE_SCHEDULER_TICK_SECONDS": str(TICK_SECONDS),
        "CHAIRSIDE_SCHEDULER": "true",
        "CHAIRSIDE_LOG_LEVEL": "INFO",
        **env,
    }
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "app.cli", "scheduler"],
            cwd=ROOT,
            env=settings,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def stop_schedulers(processes: Sequence[subprocess.Popen[bytes]]) -> None:
    """At once (the databases are dropped after): SIGTERM ends a scheduler where it stands."""
    for p in processes:
        if p.poll() is None:
            p.terminate()
    for p in processes:
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


async def night_comes(db: Database) -> datetime:
    """Every center's booking time moves to midnight, which has passed: the night has come.
    When it did (the real clock, as job runs record theirs)."""
    async with db.unit_of_work() as session:
        await session.execute(update(Center).values(auto_book_at=clock_time(0, 0)))
    return wall_now()


@dataclass
class Night:
    """The booking runs of one night, read from their records."""

    runs: list[JobRun] = field(default_factory=list)

    def succeeded(self) -> list[JobRun]:
        return [r for r in self.runs if r.outcome == "succeeded"]

    def centers_done(self) -> set[str]:
        return {r.scope for r in self.succeeded() if r.scope is not None}

    def finished_at(self) -> datetime:
        return max(r.finished_at for r in self.succeeded() if r.finished_at is not None)

    def booked(self) -> int:
        return sum(int(r.counts.get("booked", 0)) for r in self.succeeded())

    def per_runner(self) -> dict[str, tuple[int, int]]:
        """Each process: centers booked, sessions booked."""
        spread: dict[str, tuple[int, int]] = {}
        for r in self.succeeded():
            centers_, booked = spread.get(r.runner, (0, 0))
            spread[r.runner] = (centers_ + 1, booked + int(r.counts.get("booked", 0)))
        return spread


async def night_runs(db: Database, since: datetime) -> Night:
    async with db.unit_of_work(write=False) as session:
        runs = await session.scalars(
            select(JobRun)
            .where(JobRun.job == "auto_book", JobRun.started_at >= since)
            .order_by(JobRun.started_at)
        )
        return Night(list(runs))


async def wait_for_night(db: Database, since: datetime, center_count: int) -> Night:
    """Until every center has a finished booking run since the night came (an hour at most)."""
    deadline = time.monotonic() + 3600
    while True:
        night = await night_runs(db, since)
        if len(night.centers_done()) >= center_count:
            return night
        if time.monotonic() > deadline:
            raise RuntimeError(f"the night did not finish: {len(night.centers_done())} centers")
        await asyncio.sleep(0.2)


async def sessions_booked(db: Database) -> tuple[int, int]:
    """Course sessions active in the database, and how many of them are one session twice
    (the same course, phase, sequence and part: always 0, the database refuses them)."""
    async with db.unit_of_work(write=False) as session:
        total = await session.scalar(
            select(func.count())
            .select_from(Appointment)
            .where(Appointment.course_id.is_not(None), Appointment.status.in_(ACTIVE_STATUSES))
        )
        copies = (
            select(func.count().label("n"))
            .where(Appointment.course_id.is_not(None), Appointment.status.in_(ACTIVE_STATUSES))
            .group_by(
                Appointment.course_id, Appointment.phase, Appointment.sequence, Appointment.part
            )
            .subquery()
        )
        twice = await session.scalar(select(func.coalesce(func.sum(copies.c.n - 1), 0)))
    return int(total or 0), int(twice or 0)


@dataclass
class Result:
    processes: int
    seconds: float
    booked_in_database: int
    booked_in_runs: int
    twice: int
    spread: dict[str, tuple[int, int]]
    memory: list[str]


def _pg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def copy_of(template_url: str, admin: str) -> str:
    """A new database made from the template (which nobody may be connected to)."""
    name = f"chairside_bench_{uuid.uuid4().hex[:12]}"
    template = make_url(template_url).database

    async def create() -> None:
        conn = await asyncpg.connect(_pg_dsn(admin))
        try:
            await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        finally:
            await conn.close()

    asyncio.run(create())
    return make_url(admin).set(database=name).render_as_string(hide_password=False)


@dataclass
class Crew:
    """Scheduler processes on one copy of the template."""

    url: str
    logs: list[Path]
    processes: list[subprocess.Popen[bytes]]

    @classmethod
    def start(cls, url: str, count: int, tmp: Path) -> Crew:
        logs = [tmp / f"night-{count}-{i}.log" for i in range(count)]
        return cls(url, logs, [start_scheduler(url, log) for log in logs])

    def name(self, runner: str) -> str:
        pid = runner.rpartition(":")[2]
        return next(
            (f"process {i + 1}" for i, p in enumerate(self.processes) if str(p.pid) == pid),
            runner,
        )


def wait_until_up(crews: Sequence[Crew], timeout: float = 120) -> None:
    """Until every process has started (it prints so once its modules are loaded, just
    before its first tick) and one of each crew leads, then two ticks more."""
    deadline = time.monotonic() + timeout
    for crew in crews:
        while not (
            all(b"scheduler running" in log.read_bytes() for log in crew.logs)
            and any(b"now runs the jobs" in log.read_bytes() for log in crew.logs)
        ):
            dead = [
                log
                for log, p in zip(crew.logs, crew.processes, strict=True)
                if p.poll() is not None
            ]
            if dead or time.monotonic() > deadline:
                raise RuntimeError("a scheduler did not start; see " + ", ".join(map(str, dead)))
            time.sleep(0.1)
    time.sleep(STARTUP_GRACE_S)


def one_night(crew: Crew, center_count: int) -> Result:
    """The night at the crew's database, booked by its processes."""

    async def night() -> tuple[Night, datetime, tuple[int, int]]:
        db = Database(crew.url)
        try:
            came = await night_comes(db)
            done = await wait_for_night(db, came, center_count)
            return done, came, await sessions_booked(db)
        finally:
            await db.dispose()

    done, came, (in_database, twice) = asyncio.run(night())
    return Result(
        len(crew.processes),
        (done.finished_at() - came).total_seconds(),
        in_database,
        done.booked(),
        twice,
        {crew.name(runner): work for runner, work in done.per_runner().items()},
        [
            memory.describe(f"scheduler {i + 1} (pid {p.pid})", p.pid)
            for i, p in enumerate(crew.processes)
        ],
    )


def report(result: Result, center_count: int) -> None:
    say(f"-- {result.processes} scheduler process{'es' if result.processes > 1 else ''} --")
    say(f"seconds to book every center    : {result.seconds:.1f}")
    say(
        f"  sessions booked               : {result.booked_in_database} in the database, "
        f"{result.booked_in_runs} in the runs' counts"
    )
    say(f"  sessions booked twice         : {result.twice}")
    for who, (centers_, booked) in sorted(result.spread.items()):
        say(f"  {who:30s}: {centers_} of {center_count} centers, {booked} sessions")
    for line in result.memory:
        say(f"  {line}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--centers", type=int, default=8)
    parser.add_argument("--courses", type=int, default=250, help="active courses per center")
    parser.add_argument(
        "--pg-url", default=os.environ.get("CHAIRSIDE_TEST_POSTGRES_URL") or DEFAULT_PG_URL
    )
    args = parser.parse_args(argv)
    if args.centers < 1 or args.courses < 1:
        parser.error("give at least one center and one course")
    say(
        f"Chairside night benchmark (PostgreSQL): {os.cpu_count()} CPU cores, load "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}, {args.centers} centers x "
        f"{args.courses} courses, {CHAIRS} chairs and {NURSES} nurses each, horizon "
        f"{HORIZON_DAYS} days, scheduler tick {TICK_SECONDS} s"
    )
    made: list[str] = []
    crews: list[Crew] = []
    with tempfile.TemporaryDirectory() as tmp:
        try:
            template = fresh_database("postgresql", Path(tmp), args.pg_url, "chairside_bench")
            made.append(template)
            upgrade(template)

            async def load() -> None:
                db = Database(template)
                try:
                    await build(db, args.centers, args.courses)
                finally:
                    await db.dispose()

            started = time.perf_counter()
            asyncio.run(load())
            built = time.perf_counter() - started
            say(f"seconds to build                : {built:.1f} (informative)")
            # Both crews start together (starting takes seconds, loading every module): the
            # one not booking only ticks meanwhile.
            for count in (1, 2):
                made.append(copy_of(template, args.pg_url))
                crews.append(Crew.start(made[-1], count, Path(tmp)))
            wait_until_up(crews)
            results: list[Result] = []
            for crew in crews:
                results.append(one_night(crew, args.centers))
                report(results[-1], args.centers)
        finally:
            stop_schedulers([p for crew in crews for p in crew.processes])
            for url in made:
                drop_database(url, args.pg_url)
    one, two = results
    ratio = two.seconds / one.seconds if one.seconds else float("nan")
    say("== goal ==")
    say(
        f"two processes finish faster than one: {two.seconds:.1f} s against {one.seconds:.1f} s "
        f"(floor: one process), ratio {ratio:.2f} -> {'met' if ratio < 1 else 'NOT met'}"
    )
    same = (one.booked_in_database, one.twice) == (two.booked_in_database, two.twice)
    say(
        f"both booked the same: {one.booked_in_database} and {two.booked_in_database} sessions, "
        f"{one.twice} and {two.twice} twice -> {'yes' if same else 'NO'}"
    )
    say(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    say(memory.describe("the benchmark"))


if __name__ == "__main__":
    main()
