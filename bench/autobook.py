"""Nightly booking benchmark: `scheduling.jobs.auto_book` over one busy center.

For each database kind and each size: a fresh migrated database, one center (60 chairs, open
every day 07:00-19:00, 15 nurses x 4 patients, a booking horizon of 84 days = 12 weeks), N
patients (weight, height, sex) and N active courses made through `courses.create_course`
(a quarter CIDP with a 5-day induction then every 21 days, the rest maintenance every 28
days), their start dates spread over the next four weeks, the earliest tomorrow. One course in
ten asks for a bed, which the center has none of: it is stuck every night, as a course ordered
for the wrong center or with a lapsed requirement is, and the re-run must skip it (nothing it
could use has changed). PostgreSQL statistics are refreshed (ANALYZE) after the load, as
autovacuum would in a running service.

Then `auto_book(db, center_id)` runs as the nightly job does (one transaction per course,
through today + the horizon) and is timed; then it runs again straight away, which should book
nothing and skip the stuck courses. Printed: both runs' seconds and counts, the courses stuck
and skipped, the share of booked sessions that start at least 7 days after they were booked
(appointments.created_at to start_at), and each goal with its figure and met / NOT met: the
first run at 2,000 courses in at most 20 s (other sizes against 20 s scaled to their size,
informative), the re-run at most 10 % of the first, and across sizes how the first run grows
(4,000 courses in at most 2.2 x the time of 2,000). Then the memory of this process, where
the job runs.

    .venv/bin/python -m bench.autobook [--db postgresql|sqlite|both] [--courses 2000]
                                       [--sizes 2000,4000]

--sizes defaults to the --courses figure and twice it. `--courses 200` is a quick check;
`--db sqlite --courses 10 --sizes 10` is the smoke run (its time is mostly imports and
migrating: each kind is migrated once, and each size runs on a copy).
It prints figures; it asserts nothing about timing. Every database is dropped at the end, also
after an error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from app.jobs.registry import JOBS
from app.migrate import upgrade
from bench import memory
from core import heap
from core.db import Database
from insurance import facts
from insurance.models import Alert
from patients.schemas import PatientCreate
from patients.service import create_patient
from scheduling.appointments.models import Appointment
from scheduling.catalog.models import Product
from scheduling.centers import service as centers
from scheduling.centers.schemas import CenterCreate, ChairCreate
from scheduling.courses import service as courses
from scheduling.courses.models import Course
from scheduling.courses.schemas import CourseCreate
from scheduling.jobs import Progress
from tests.support.databases import _pg_admin, drop_database, fresh_database

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
TIMEZONE = "America/New_York"
CHAIRS = 60
NURSES = 15
PATIENTS_PER_NURSE = 4
HORIZON_DAYS = 84  # 12 weeks
SPREAD_DAYS = 28  # start dates over the next four weeks
NOTICE = timedelta(days=7)
TARGET_FIRST_S = 20.0  # at 2,000 courses
TARGET_GROWTH = 1.1  # first-run time per course may grow by 10 % at most: 2.2 x for 2 x
TARGET_RERUN = 0.10  # of the first run
STUCK_EVERY = 10  # one course in ten asks for a bed, and the center has none


@dataclass
class Run:
    seconds: float
    counts: dict[str, int]


@dataclass
class Result:
    kind: str
    size: int
    first: Run
    second: Run


def say(line: str = "") -> None:
    print(line, flush=True)


async def setup(db: Database, count: int) -> uuid.UUID:
    """The center, its chairs, `count` patients and one active course each; the center's id."""
    rng = random.Random(7)
    tomorrow = datetime.now(ZoneInfo(TIMEZONE)).date() + timedelta(days=1)
    async with db.unit_of_work() as session:
        center = await centers.create_center(
            session,
            CenterCreate.model_validate(
                {
                    "name": "Bench center",
                    "timezone": TIMEZONE,
                    "patients_per_nurse": PATIENTS_PER_NURSE,
                    "booking_horizon_days": HORIZON_DAYS,
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
        for i in range(CHAIRS):
            await centers.create_chair(session, center, ChairCreate(label=f"C{i:02d}"))
        product_id = await session.scalar(select(Product.id).where(Product.hcpcs_code == "J1561"))
        assert product_id is not None, "the seeded J1561 product is missing"
        for n in range(count):
            # CIDP: the preset 5-day induction, then every 21 days; MMN: every 28 days
            cidp, stuck = n % 4 == 0, n % STUCK_EVERY == STUCK_EVERY // 2
            await a_course(
                session, rng, center.id, product_id, tomorrow, f"BENCH{n:06d}", cidp, stuck
            )
        center_id: uuid.UUID = center.id
    await analyze(db)
    return center_id


async def a_course(
    session: AsyncSession,
    rng: random.Random,
    center_id: uuid.UUID,
    product_id: uuid.UUID,
    tomorrow: date,
    mrn: str,
    cidp: bool,
    stuck: bool = False,
) -> None:
    """A patient (weight, height, sex) and one active course starting over the next four
    weeks: CIDP with the preset 5-day induction then every 21 days, or else MMN maintenance
    every 28 days. `stuck`: it asks for a bed (the benchmarks' centers have none)."""
    patient = await create_patient(
        session,
        PatientCreate(
            mrn=mrn,
            given_name="Bench",
            family_name=f"Patient {mrn}",
            birth_date=date(1960, 1, 1) + timedelta(days=rng.randrange(9000)),
            sex=rng.choice(["female", "male"]),
            weight_kg=Decimal(str(round(rng.uniform(50, 110), 1))),
            height_cm=Decimal(str(round(rng.uniform(150, 190), 1))),
        ),
        None,
    )
    order: dict[str, object] = {
        "patient_id": patient.id,
        "center_id": center_id,
        "product_id": product_id,
        "diagnosis_code": "G61.81" if cidp else "G61.82",
        "start_date": tomorrow + timedelta(days=rng.randrange(SPREAD_DAYS)),
        "preferred_weekdays": [rng.randrange(7)],
        "preferred_start_time": rng.choice(["08:00", "09:00", "10:00", "11:00"]),
    }
    if not cidp:
        order["induction"] = None
    if stuck:
        order["chair_kind"] = "bed"
    await courses.create_course(session, CourseCreate.model_validate(order), None)


async def analyze(db: Database) -> None:
    """PostgreSQL's statistics, as autovacuum would have them in a running service."""
    if db.dialect == "postgresql":
        async with db.engine.connect() as conn:
            auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await auto.execute(text("ANALYZE"))


def progress_printer(label: str) -> Progress:
    """Progress on stderr every tenth of the courses, so a long run shows it is moving."""
    started = time.perf_counter()

    def report(done: int, total: int) -> None:
        step = max(1, total // 10)
        if done % step == 0 or done == total:
            elapsed = time.perf_counter() - started
            print(f"  [{label}] {done}/{total} courses, {elapsed:.1f} s", file=sys.stderr)

    return report


async def timed_run(db: Database, center_id: uuid.UUID, label: str) -> Run:
    started = time.perf_counter()
    # As the scheduler runs it: the booking run, then the recompute of the patients it booked.
    job = JOBS["auto_book"]
    counts = await job.run(db, {"center_id": center_id, "progress": progress_printer(label)})
    return Run(time.perf_counter() - started, counts)


async def notice(db: Database, center_id: uuid.UUID) -> tuple[int, int]:
    """Course sessions booked, and those starting at least NOTICE after they were booked."""
    async with db.unit_of_work(write=False) as session:
        rows = (
            await session.execute(
                select(Appointment.created_at, Appointment.start_at).where(
                    Appointment.center_id == center_id, Appointment.course_id.is_not(None)
                )
            )
        ).all()
    ahead = sum(1 for created, start in rows if start - created >= NOTICE)
    return len(rows), ahead


async def unbookable_reasons(db: Database) -> Counter[str]:
    """Why courses could not be booked as planned, from their live course_unbookable alerts."""
    async with db.unit_of_work(write=False) as session:
        details = await session.scalars(
            select(Alert.detail).where(
                Alert.kind == "course_unbookable", Alert.status.in_(facts.LIVE)
            )
        )
        # "{phase} session {n} ({target}): {reason}"; the reason ends "... on {day}" at times
        return Counter(d.split("): ", 1)[-1].split(" on ")[0][:60] for d in details)


async def stuck(db: Database, center_id: uuid.UUID) -> int:
    """Active courses the last run could not book as planned."""
    async with db.unit_of_work(write=False) as session:
        return int(
            await session.scalar(
                select(func.count()).where(
                    Course.center_id == center_id,
                    Course.status == "active",
                    Course.unbookable.is_not(None),
                )
            )
            or 0
        )


def show_counts(counts: dict[str, int]) -> str:
    return (
        f"{counts['booked']} sessions booked, {counts['unbookable']} courses unbookable, "
        f"{counts['failed']} failed, {counts.get('skipped', 0)} stuck skipped "
        f"(of {counts['courses']} courses tried)"
    )


def verdict(met: bool) -> str:
    return "met" if met else "NOT met"


async def bench(url: str, kind: str, size: int) -> Result:
    db = Database(url)
    try:
        started = time.perf_counter()
        center_id = await setup(db, size)
        say(f"-- {kind}, {size} courses --")
        say(f"seconds to build                : {time.perf_counter() - started:.1f} (informative)")

        # The scheduler process freezes what it loaded before its first job (app.jobs.scheduler).
        heap.freeze_loaded()
        first = await timed_run(db, center_id, f"{kind} {size} first")
        goal = TARGET_FIRST_S * size / 2000
        at = "" if size == 2000 else f", scaled to {size} courses: {goal:.1f} s (informative)"
        say(
            f"first run seconds               : {first.seconds:.1f} (goal ≤ {TARGET_FIRST_S:g} s "
            f"at 2,000 courses{at}; ratio {first.seconds / goal:.2f}: "
            f"{verdict(first.seconds <= goal)})"
        )
        say(f"  {show_counts(first.counts)}")
        stuck_after_first = await stuck(db, center_id)
        say(f"  courses stuck after it        : {stuck_after_first}")
        say(f"  ms per course                 : {1000 * first.seconds / size:.1f}")
        total, ahead = await notice(db, center_id)
        share = ahead / total if total else float("nan")
        say(
            f"  booked with ≥ 7 days' notice  : {share:.1%} ({ahead} of {total} course sessions; "
            "created_at to start_at)"
        )
        for reason, n in (await unbookable_reasons(db)).most_common(6):
            say(f"    {n:5d}  unbookable: {reason}")

        second = await timed_run(db, center_id, f"{kind} {size} re-run")
        ratio = second.seconds / first.seconds
        say(f"re-run seconds                  : {second.seconds:.1f}")
        say(
            f"  sessions booked               : {second.counts['booked']} "
            f"(goal 0: {verdict(second.counts['booked'] == 0)})"
        )
        say(f"  {show_counts(second.counts)}")
        say(
            f"  stuck courses skipped         : {second.counts.get('skipped', 0)} of "
            f"{stuck_after_first} stuck"
        )
        say(
            f"  re-run / first                : {ratio:.1%} (goal ≤ {TARGET_RERUN:.0%}: "
            f"{verdict(ratio <= TARGET_RERUN)})"
        )
        return Result(kind, size, first, second)
    finally:
        await db.dispose()


def run(kind: str, sizes: list[int], pg_url: str) -> list[Result]:
    """Each size on a copy of one database migrated once (migrating takes seconds, which a
    smoke run at tiny sizes would spend mostly on that)."""
    with tempfile.TemporaryDirectory() as tmp:
        migrated = fresh_database(kind, Path(tmp), pg_url, prefix="chairside_bench")
        try:
            upgrade(migrated)
            results = []
            for size in sizes:
                url = copy_of(migrated, kind, Path(tmp), pg_url)
                try:
                    results.append(asyncio.run(bench(url, kind, size)))
                finally:
                    drop_database(url, pg_url)
            return results
        finally:
            drop_database(migrated, pg_url)


def copy_of(migrated: str, kind: str, tmp: Path, pg_url: str) -> str:
    """A new database, a copy of `migrated` (nothing is connected to it)."""
    if kind == "sqlite":
        url = fresh_database(kind, tmp, prefix="chairside_bench")
        shutil.copyfile(make_url(migrated).database or "", make_url(url).database or "")
        return url
    name = f"chairside_bench_{uuid.uuid4().hex[:12]}"
    template = make_url(migrated).database
    asyncio.run(_pg_admin(pg_url, f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    return make_url(pg_url).set(database=name).render_as_string(hide_password=False)


def summary(results: list[Result]) -> None:
    say("== summary ==")
    for kind in dict.fromkeys(r.kind for r in results):
        mine = [r for r in results if r.kind == kind]
        base = mine[0]
        for r in mine:
            share = r.second.seconds / r.first.seconds
            line = (
                f"{kind:10s} {r.size:6d} courses: first {r.first.seconds:7.1f} s, "
                f"re-run {r.second.seconds:6.1f} s ({share:.1%}, goal ≤ {TARGET_RERUN:.0%}: "
                f"{verdict(share <= TARGET_RERUN)}), {r.first.counts['booked']} booked, "
                f"{r.first.counts['unbookable']} stuck, {r.second.counts.get('skipped', 0)} "
                "skipped on the re-run"
            )
            if r is not base:
                growth = r.first.seconds / base.first.seconds
                target = TARGET_GROWTH * r.size / base.size
                line += (
                    f"; first run {growth:.2f} x the {base.size}-course one "
                    f"(goal ≤ {target:.2f} x: {verdict(growth <= target)})"
                )
            say(line)
    say(memory.describe("the scheduler"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--db", choices=["postgresql", "sqlite", "both"], default="both")
    parser.add_argument("--courses", type=int, default=2000)
    parser.add_argument(
        "--sizes",
        help="comma-separated course counts, smallest first (default: --courses and twice it)",
    )
    parser.add_argument(
        "--pg-url", default=os.environ.get("CHAIRSIDE_TEST_POSTGRES_URL") or DEFAULT_PG_URL
    )
    args = parser.parse_args()
    try:
        sizes = (
            [int(s) for s in args.sizes.split(",")]
            if args.sizes
            else [args.courses, 2 * args.courses]
        )
    except ValueError:
        parser.error("--sizes takes course counts separated by commas, e.g. 2000,4000")
    if not sizes or min(sizes) < 1:
        parser.error("give at least one course per size")
    say(
        f"Chairside auto_book benchmark: {os.cpu_count()} CPU cores, {CHAIRS} chairs, "
        f"{NURSES} nurses x {PATIENTS_PER_NURSE}, open 7 days 07:00-19:00, horizon "
        f"{HORIZON_DAYS} days, courses {', '.join(str(s) for s in sizes)}"
    )
    kinds = ["postgresql", "sqlite"] if args.db == "both" else [args.db]
    results: list[Result] = []
    for kind in kinds:
        say(f"== {kind} ==")
        results += run(kind, sizes, args.pg_url)
    summary(results)


if __name__ == "__main__":
    main()
