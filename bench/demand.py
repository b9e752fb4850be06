"""Drug demand benchmark (issue 15): how long a center's 12-week drug forecast takes.

Target: at most 2 s for --courses active courses (2,000) with sessions over 12 weeks at one
center. For each database kind this builds a fresh, migrated database in-process (bulk
INSERTs; nothing goes through the API):

* one center (America/New_York, open Monday to Friday 07:00-19:00), --chairs chairs, four
  2.5-hour sessions a chair a day (07:00, 10:00, 13:00, 16:00),
* --courses maintenance courses, each a patient of 45-120 kg, one of the five seeded 10 % IVIGs,
  every 14, 21 or 28 days from a weekday in the first four weeks, 0.4, 1 or 2 g/kg (doses to
  the hundredth of a gram; half the courses with a 5 % vial tolerance, whose doses are
  rounded to whole vials, as booking does), all their sessions in the 12 weeks booked, a few
  checked in or cancelled,
* two to four lots of every size of every product, 10 to 200 vials each, expiring within the
  12 weeks or after them.

Timed in-process, each the median of --runs runs after one warm-up, in one read transaction:

* demand:   `pharmacy.demand_queries.drug_demand` (the query and the pure function), by day
            and by ISO week: what the route does;
* baseline: the query alone (`demand_inputs`), and the pure function alone on its result;
            and the vial plans without the per-dose cache (every session's dose planned on
            its own), which is what the cache saves.

    .venv/bin/python -m bench.demand [--db sqlite|postgres|both] [--courses 2000]
                                     [--chairs 80] [--runs 5] [--seed 7]

It prints figures; it asserts nothing about timing. PostgreSQL runs when
CHAIRSIDE_TEST_POSTGRES_URL is set (or --pg-url is given). The database is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as wall_time
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Table, insert, select, text
from sqlalchemy.exc import SQLAlchemyError

from app.migrate import upgrade
from core.db import Database
from patients.models import Patient
from pharmacy.demand import Group, demand, plan_dose
from pharmacy.demand_queries import demand_inputs, drug_demand
from pharmacy.models import DrugLot
from scheduling.appointments.models import Appointment
from scheduling.catalog.dose import round_to_vials
from scheduling.catalog.models import Product
from scheduling.centers import service as centers
from scheduling.centers.schemas import CenterCreate, ChairCreate
from scheduling.courses.models import Course
from tests.support.databases import drop_database, fresh_database

TIMEZONE = "America/New_York"
IVIG_CODES = ("J1561", "J1459", "J1569", "J1568", "J1576")
STARTS = (wall_time(7), wall_time(10), wall_time(13), wall_time(16))
MINUTES = 150
WEEKS = 12
TARGET_S = 2.0
T = TypeVar("T")
Row = dict[str, Any]


def say(line: str = "") -> None:
    print(line, flush=True)


@dataclass(frozen=True)
class Built:
    center_id: uuid.UUID
    start: date
    end: date
    courses: int
    sessions: int
    lots: int
    distinct_doses: int


def table(model: Any) -> Table:
    t: Table = model.__table__
    return t


def first_monday_after(day: date) -> date:
    return day + timedelta(days=7 - day.weekday())


async def build(url: str, courses: int, chairs: int, seed: int) -> Built:
    rng = random.Random(seed)
    tz = ZoneInfo(TIMEZONE)
    now = datetime.now(UTC)
    start = first_monday_after(now.astimezone(tz).date())
    end = start + timedelta(weeks=WEEKS) - timedelta(days=1)
    db = Database(url)
    try:
        async with db.unit_of_work() as session:
            hours = [{"weekday": d, "opens": "07:00", "closes": "19:00"} for d in range(5)]
            staffing = [
                {"weekday": d, "start": "07:00", "end": "19:00", "nurses": 80} for d in range(5)
            ]
            center = await centers.create_center(
                session,
                CenterCreate.model_validate(
                    {
                        "name": "Bench Demand Center",
                        "timezone": TIMEZONE,
                        "patients_per_nurse": 4,
                        "opening_hours": hours,
                        "staffing": staffing,
                    }
                ),
            )
            chair_ids = [
                (await centers.create_chair(session, center, ChairCreate(label=f"C{c:03d}"))).id
                for c in range(chairs)
            ]
            products = {
                p.id: [float(v) for v in p.vial_sizes_g]
                for p in await session.scalars(
                    select(Product).where(Product.hcpcs_code.in_(IVIG_CODES))
                )
            }
        assert len(products) == len(IVIG_CODES), "the seeded IVIG products are missing"

        patients: list[Row] = []
        course_rows: list[Row] = []
        appointments: list[Row] = []
        taken: Counter[date] = Counter()
        weekdays = [start + timedelta(days=d) for d in range(28) if d % 7 < 5]
        doses: set[tuple[uuid.UUID, float]] = set()
        for i in range(courses):
            patient_id, course_id = uuid.uuid4(), uuid.uuid4()
            weight = Decimal(rng.randrange(450, 1200)) / 10
            product_id = rng.choice(list(products))
            g_per_kg = rng.choice((Decimal("0.4"), Decimal("1.0"), Decimal("1.0"), Decimal("2.0")))
            tolerance = Decimal(5) if i % 2 else None
            interval = rng.choice((14, 21, 21, 28))
            first = rng.choice(weekdays)
            dose = float((weight * g_per_kg).quantize(Decimal("0.01")))
            if tolerance is not None:
                dose = round_to_vials(dose, products[product_id], float(tolerance))
            doses.add((product_id, dose))
            patients.append(
                {
                    "id": patient_id,
                    "mrn": f"D{i:07d}",
                    "given_name": "Bench",
                    "family_name": f"Demand{i}",
                    "birth_date": date(1960, 1, 1) + timedelta(days=i),
                    "sex": "female" if i % 2 else "male",
                    "weight_kg": weight,
                    "height_cm": Decimal(170),
                    "version": 1,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            course_rows.append(
                {
                    "id": course_id,
                    "patient_id": patient_id,
                    "center_id": center.id,
                    "product_id": product_id,
                    "diagnosis_code": "G61.81",
                    "status": "active",
                    "induction_total_g_per_kg": None,
                    "induction_days": None,
                    "induction_skips_closures": False,
                    "induction_booked_days": None,
                    "maintenance_g_per_kg": g_per_kg,
                    "interval_days": interval,
                    "window_min_days": interval - 7,
                    "window_max_days": interval + 7,
                    "cycles": 12,
                    "end_date": None,
                    "start_date": first,
                    "preferred_weekdays": [first.weekday()],
                    "preferred_start_time": STARTS[0],
                    "chair_kind": "chair",
                    "weight_basis": "actual",
                    "vial_tolerance_pct": tolerance,
                    "renal_risk": False,
                    "thrombosis_risk": False,
                    "tolerated_rate": None,
                    "dose_override_reason": None,
                    "unbookable": None,
                    "created_by": None,
                    "version": 1,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            day, sequence = first, 1
            while day <= end:
                k = taken[day]
                taken[day] += 1
                if k >= chairs * len(STARTS):
                    raise SystemExit(f"{day}: more sessions than chairs; raise --chairs")
                begins = datetime.combine(day, STARTS[k % len(STARTS)], tzinfo=tz).astimezone(UTC)
                r = rng.random()
                status = "cancelled" if r < 0.03 else "checked_in" if r < 0.04 else "booked"
                appointments.append(
                    {
                        "id": uuid.uuid4(),
                        "center_id": center.id,
                        "chair_id": chair_ids[k // len(STARTS)],
                        "patient_id": patient_id,
                        "start_at": begins,
                        "end_at": begins + timedelta(minutes=MINUTES),
                        "status": status,
                        "version": 1,
                        "booked_by": None,
                        "status_changed_at": now,
                        "course_id": course_id,
                        "phase": "maintenance",
                        "sequence": sequence,
                        "dose_g": Decimal(str(dose)),
                        "part": 1,
                        "turnover_minutes": 15,
                        "outside_window": False,
                        "pinned": False,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
                day, sequence = day + timedelta(days=interval), sequence + 1
        lots: list[Row] = []
        for product_id, sizes in products.items():
            for size in sizes:
                for n in range(rng.randint(2, 4)):
                    vials = rng.randint(20, 200)
                    lots.append(
                        {
                            "id": uuid.uuid4(),
                            "center_id": center.id,
                            "product_id": product_id,
                            "lot_number": f"B{n}{size:g}".replace(".", "_"),
                            "vial_size_g": Decimal(str(size)),
                            "vials_received": vials,
                            "vials_on_hand": rng.randint(vials // 2, vials),
                            "expires_on": start + timedelta(days=rng.randrange(7, 140)),
                            "storage": "refrigerated",
                            "room_temperature_since": None,
                            "status": "available" if rng.random() < 0.9 else "quarantined",
                            "location": None,
                            "received_at": now,
                            "version": 1,
                            "created_at": now,
                            "updated_at": now,
                        }
                    )
        async with db.unit_of_work() as session:
            conn = await session.connection()
            for model, rows in (
                (Patient, patients),
                (Course, course_rows),
                (Appointment, appointments),
                (DrugLot, lots),
            ):
                for i in range(0, len(rows), 1000):
                    await conn.execute(insert(table(model)), rows[i : i + 1000])
        if db.dialect == "postgresql":
            async with db.engine.connect() as conn:
                auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await auto.execute(text("ANALYZE"))
        return Built(center.id, start, end, courses, len(appointments), len(lots), len(doses))
    finally:
        await db.dispose()


async def median_seconds(runs: int, step: Callable[[], Awaitable[T]]) -> tuple[float, T]:
    result = await step()  # warm-up: the first run pays for connections and caches
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = await step()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def median_sync(runs: int, step: Callable[[], T]) -> tuple[float, T]:
    result = step()
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = step()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


async def measure(url: str, built: Built, runs: int) -> None:
    db = Database(url)
    try:
        async with db.unit_of_work(write=False) as session:

            async def by(group: Group) -> Any:
                return await drug_demand(session, built.center_id, built.start, built.end, group)

            async def load() -> Any:
                return await demand_inputs(session, built.center_id, built.start, built.end)

            day_s, forecast = await median_seconds(runs, lambda: by("day"))
            week_s, _ = await median_seconds(runs, lambda: by("week"))
            query_s, got = await median_seconds(runs, load)
        pure_s, _ = median_sync(runs, lambda: demand(got.sessions, got.lots, got.catalogs, "day"))
        uncached_s, _ = median_sync(
            runs, lambda: [plan_dose(s.dose_g, got.catalogs[s.product_id]) for s in got.sessions]
        )
    finally:
        await db.dispose()
    short = forecast.demand.short
    say(
        f"sessions read                  : {len(got.sessions):,} active ({built.sessions:,} "
        f"written), {len(got.lots)} usable lots, {built.distinct_doses:,} distinct doses"
    )
    say(
        f"demand lines (day)             : {len(forecast.demand.lines):,}; products short: "
        f"{len(short)}, first on {min((s.first_short_on for s in short), default='-')}"
    )
    verdict = "PASS" if day_s <= TARGET_S else "MISS"
    say(f"demand by day  (query + pure)  : {day_s:.3f} s  target <= {TARGET_S:.1f} s  {verdict}")
    say(f"demand by week (query + pure)  : {week_s:.3f} s")
    say(
        f"baseline: query alone          : {query_s:.3f} s  (demand/query = {day_s / query_s:.2f}x)"
    )
    say(f"          pure function alone  : {pure_s:.3f} s  (with the per-dose plan cache)")
    say(
        f"          plans without cache  : {uncached_s:.3f} s  (every session planned; "
        f"{uncached_s / pure_s:.1f}x the whole pure function)"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.demand", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--courses", type=int, default=2000)
    parser.add_argument("--chairs", type=int, default=80)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--pg-url", default=os.environ.get("CHAIRSIDE_TEST_POSTGRES_URL"))
    args = parser.parse_args(argv)
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    say(f"drug demand: {args.courses:,} courses over {WEEKS} weeks, median of {args.runs} runs")
    with tempfile.TemporaryDirectory() as tmp:
        for kind in kinds:
            if kind == "postgres" and not args.pg_url:
                say("\n== postgres == skipped: set CHAIRSIDE_TEST_POSTGRES_URL")
                continue
            try:
                url = fresh_database(kind, Path(tmp), args.pg_url, prefix="chairside_bench")
            except (OSError, SQLAlchemyError) as exc:
                say(f"\n== {kind} == skipped: cannot create a database ({exc})")
                continue
            try:
                say(f"\n== {kind} ==")
                upgrade(url)
                started = time.perf_counter()
                built = asyncio.run(build(url, args.courses, args.chairs, args.seed))
                say(
                    f"built in                       : {time.perf_counter() - started:.1f} s "
                    f"({built.start} to {built.end}; informative)"
                )
                asyncio.run(measure(url, built, args.runs))
            finally:
                drop_database(url, args.pg_url)


if __name__ == "__main__":
    main()
