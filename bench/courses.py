"""Course booking benchmark: book 12 weeks for many courses over one busy center.

For each database kind: a fresh migrated database, one center (60 chairs, open Monday to
Friday 07:00-19:00, 15 nurses x 4 patients), 2,000 patients and 2,000 courses (a quarter CIDP
with a 5-day induction then every 21 days, the rest maintenance every 28 days), their start
dates spread over four weeks. Then every course is booked through 12 weeks, one transaction
per course, as the scheduler will. It prints the seconds, sessions booked, the share placed on
their target date, and the sessions that could not be placed.

    .venv/bin/python -m bench.courses [--db sqlite|postgresql|both] [--courses 2000]

It prints figures; it asserts nothing about timing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import tempfile
import time
import uuid
from collections import Counter
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from sqlalchemy import select

from app.migrate import upgrade
from core.db import Database
from patients.schemas import PatientCreate
from patients.service import create_patient
from scheduling.catalog.models import Product
from scheduling.centers import service as centers
from scheduling.centers.schemas import CenterCreate, ChairCreate
from scheduling.courses import booking as course_booking
from scheduling.courses import service as courses
from scheduling.courses import sessions as course_sessions
from scheduling.courses.schemas import CourseCreate
from scheduling.localtime import zone
from tests.support.databases import drop_database, fresh_database

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
FIRST_DAY = date(2027, 3, 1)  # a Monday
HORIZON = timedelta(weeks=12)


async def setup(url: str, count: int) -> list[str]:
    db = Database(url)
    rng = random.Random(7)
    try:
        async with db.unit_of_work() as session:
            center = await centers.create_center(
                session,
                CenterCreate.model_validate(
                    {
                        "name": "Bench center",
                        "timezone": "America/New_York",
                        "patients_per_nurse": 4,
                        "opening_hours": [
                            {"weekday": d, "opens": "07:00", "closes": "19:00"} for d in range(5)
                        ],
                        "staffing": [
                            {"weekday": d, "start": "07:00", "end": "19:00", "nurses": 15}
                            for d in range(5)
                        ],
                    }
                ),
            )
            for i in range(60):
                await centers.create_chair(session, center, ChairCreate(label=f"C{i:02d}"))
            product_id = await session.scalar(
                select(Product.id).where(Product.hcpcs_code == "J1561")
            )
            ids: list[str] = []
            for n in range(count):
                patient = await create_patient(
                    session,
                    PatientCreate(
                        mrn=f"BENCH{n:06d}",
                        given_name="Bench",
                        family_name=f"Patient{n}",
                        birth_date=date(1960, 1, 1) + timedelta(days=rng.randrange(9000)),
                        sex=rng.choice(["female", "male"]),
                        weight_kg=Decimal(str(round(rng.uniform(50, 110), 1))),
                        height_cm=Decimal(str(round(rng.uniform(150, 190), 1))),
                    ),
                    None,
                )
                cidp = n % 4 == 0
                start = FIRST_DAY + timedelta(days=rng.randrange(28))
                if cidp:  # a loading week starts on a Monday in a Monday-to-Friday center
                    start -= timedelta(days=start.weekday())
                order = {
                    "patient_id": patient.id,
                    "center_id": center.id,
                    "product_id": product_id,
                    "diagnosis_code": "G61.81" if cidp else "G61.82",
                    "start_date": start,
                    "preferred_weekdays": [rng.randrange(5)],
                    "preferred_start_time": rng.choice(["08:00", "09:00", "10:00", "11:00"]),
                }
                if not cidp:
                    order["induction"] = None
                course = await courses.create_course(
                    session, CourseCreate.model_validate(order), None
                )
                ids.append(str(course.id))
        return ids
    finally:
        await db.dispose()


async def book_all(url: str, course_ids: list[str]) -> tuple[float, Counter[str]]:
    db = Database(url)
    tally: Counter[str] = Counter()
    started = time.perf_counter()
    try:
        for course_id in course_ids:
            async with db.unit_of_work() as session:  # one transaction per course
                course = await courses.get_course(session, uuid.UUID(course_id))
                tz = zone((await course_sessions.center_of(session, course)).timezone)
                result = await course_booking.book_through(
                    session, course, FIRST_DAY + HORIZON, None
                )
                previous = None
                for appt in result.appointments:
                    tally["booked"] += 1
                    day = appt.start_at.astimezone(tz).date()
                    if (
                        appt.phase == "maintenance"
                        and previous is not None
                        and course.interval_days
                    ):
                        tally["maintenance"] += 1
                        if (day - previous).days == course.interval_days:
                            tally["at_target"] += 1
                    previous = day
                if result.unbookable is not None:
                    tally["unbookable"] += 1
                    tally[f"unbookable: {_short(result.unbookable.reason)}"] += 1
    finally:
        await db.dispose()
    return time.perf_counter() - started, tally


def _short(reason: str) -> str:
    return reason.split(" on ")[0][:60]


def run(kind: str, count: int, pg_url: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = fresh_database(kind, Path(tmp), pg_url, prefix="chairside_bench")
        try:
            upgrade(url)
            ids = asyncio.run(setup(url, count))
            seconds, tally = asyncio.run(book_all(url, ids))
        finally:
            drop_database(url, pg_url)
    spaced = tally["maintenance"]
    share = tally["at_target"] / spaced if spaced else float("nan")
    print(f"== {kind} ==")
    print(f"courses booked through 12 weeks : {count}")
    print(f"seconds                         : {seconds:.1f}")
    print(f"sessions booked                 : {tally['booked']}")
    print(
        f"maintenance sessions at target  : {share:.1%} ({tally['at_target']} of {spaced}, "
        "counted where the previous session was booked in the same run)"
    )
    print(f"courses with a session unbookable: {tally['unbookable']}")
    for key, n in sorted(tally.items()):
        if key.startswith("unbookable: "):
            print(f"    {n:5d}  {key.removeprefix('unbookable: ')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--db", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--courses", type=int, default=2000)
    parser.add_argument(
        "--pg-url", default=os.environ.get("CHAIRSIDE_TEST_POSTGRES_URL") or DEFAULT_PG_URL
    )
    args = parser.parse_args()
    print(
        f"Chairside course booking benchmark: {os.cpu_count()} CPU cores, 60 chairs, "
        f"15 nurses x 4, {args.courses} courses, 12 weeks"
    )
    kinds = ["postgresql", "sqlite"] if args.db == "both" else [args.db]
    for kind in kinds:
        run(kind, args.courses, args.pg_url)


if __name__ == "__main__":
    main()
