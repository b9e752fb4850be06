"""A realistic demo center: 24 chairs, two nursing shifts, ~60 patients and a week of sessions.

Everything is booked through the same booking service nurses use, so the demo obeys every
rule (opening hours, chairs, nurse capacity, staggered starts).
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from app.auth.models import User
from app.auth.service import create_user
from app.db import Database
from app.patients.schemas import PatientCreate
from app.patients.service import create_patient
from app.problems import Conflict, Invalid
from scheduling import booking, service
from scheduling.models import Center
from scheduling.schemas import AppointmentCreate, CenterCreate, ChairCreate, ClosureIn

DEMO_PASSWORD = "chairside-demo"  # noqa: S105 - printed for the demo's own users only
GIVEN = [
    "Ada",
    "Ben",
    "Carmen",
    "Dmitri",
    "Elena",
    "Farid",
    "Grace",
    "Hiro",
    "Ines",
    "Jamal",
    "Kofi",
    "Lena",
    "Mateo",
    "Nadia",
    "Omar",
    "Priya",
    "Quinn",
    "Rosa",
    "Samir",
    "Tessa",
]
FAMILY = [
    "Alvarez",
    "Brennan",
    "Chen",
    "Dubois",
    "Eriksen",
    "Fischer",
    "Gupta",
    "Hughes",
    "Ito",
    "Jensen",
    "Kowalski",
    "Larsen",
    "Moreau",
    "Nakamura",
    "Okafor",
    "Petrov",
    "Quintero",
    "Rossi",
    "Sato",
    "Tanaka",
    "Usman",
    "Varga",
    "Weber",
    "Yilmaz",
]


def _center() -> CenterCreate:
    weekdays = range(5)
    return CenterCreate.model_validate(
        {
            "name": "Riverside Infusion Center",
            "timezone": "America/New_York",
            "patients_per_nurse": 4,
            "opening_hours": [{"weekday": d, "opens": "07:00", "closes": "19:00"} for d in weekdays]
            + [{"weekday": 5, "opens": "08:00", "closes": "14:00"}],
            "staffing": [
                {"weekday": d, "start": "07:00", "end": "15:30", "nurses": 5} for d in weekdays
            ]
            + [{"weekday": d, "start": "11:00", "end": "19:00", "nurses": 3} for d in weekdays]
            + [{"weekday": 5, "start": "08:00", "end": "14:00", "nurses": 3}],
        }
    )


async def load_demo(database_url: str, *, only_if_empty: bool) -> str:
    db = Database(database_url)
    try:
        async with db.unit_of_work() as session:
            if await session.scalar(select(func.count()).select_from(Center)):
                if only_if_empty:
                    return "demo data not loaded: the database already has a center"
                raise Conflict("the database is not empty; the demo loads only into an empty one")
            rng = random.Random(20261124)
            center = await service.create_center(session, _center())
            chairs = []
            for i in range(1, 20):
                chairs.append(
                    await service.create_chair(session, center, ChairCreate(label=f"C{i:02d}"))
                )
            for i in range(1, 5):
                chairs.append(
                    await service.create_chair(
                        session, center, ChairCreate(label=f"B{i}", kind="bed")
                    )
                )
            chairs.append(
                await service.create_chair(
                    session, center, ChairCreate(label="ISO1", kind="isolation")
                )
            )

            admin_exists = await session.scalar(select(func.count()).select_from(User))
            if not admin_exists:
                for role in ("admin", "nurse", "billing"):
                    await create_user(session, f"{role}@chairside.local", role, DEMO_PASSWORD, None)

            patients = []
            for n in range(60):
                data = PatientCreate(
                    mrn=f"DEMO{n + 1:05d}",
                    given_name=GIVEN[n % len(GIVEN)],
                    family_name=FAMILY[(n * 7) % len(FAMILY)],
                    birth_date=date(
                        1940 + rng.randrange(60), rng.randrange(1, 13), rng.randrange(1, 28)
                    ),
                    sex=rng.choice(["female", "male"]),
                    weight_kg=Decimal(str(round(rng.uniform(48, 115), 1))),
                    height_cm=Decimal(str(round(rng.uniform(150, 192), 1))),
                )
                patients.append(await create_patient(session, data, None))
            first_patient = patients[0].id

            today = date.today()
            monday = today + timedelta(days=(7 - today.weekday()) % 7 or 7)
            await service.add_closure(
                session,
                center,
                ClosureIn(date=monday + timedelta(days=14), reason="staff training"),
            )
            booked = await _book_week(session, rng, monday, chairs, patients)
        return (
            f"demo loaded: 1 center, {len(chairs)} chairs, {len(patients)} patients, "
            f"{booked} appointments in the week of {monday.isoformat()}\n"
            f"sign in as admin@chairside.local, nurse@chairside.local or billing@chairside.local "
            f"with password {DEMO_PASSWORD!r} (POST /api/v1/auth/token)\n"
            f"a patient portal user can be added with: chairside users create --role patient "
            f"--patient-id {first_patient} --email patient@chairside.local"
        )
    finally:
        await db.dispose()


async def _book_week(session, rng, monday, chairs, patients) -> int:  # type: ignore[no-untyped-def]
    booked = 0
    times = [f"{h:02d}:{m:02d}" for h in range(7, 15) for m in (0, 15, 30, 45)]
    for offset in range(6):
        day = monday + timedelta(days=offset)
        todays = rng.sample(patients, 28 if offset < 5 else 8)
        for patient in todays:
            duration = rng.choice([150, 180, 210, 240, 270])
            for hhmm in rng.sample(times, len(times)):
                chair = rng.choice(chairs)
                try:
                    async with session.begin_nested():
                        await booking.book(
                            session,
                            AppointmentCreate(
                                patient_id=patient.id,
                                chair_id=chair.id,
                                local_date=day,
                                local_time=hhmm,
                                duration_minutes=duration,
                            ),
                            None,
                        )
                    booked += 1
                    break
                except (Conflict, Invalid):
                    continue
    return booked
