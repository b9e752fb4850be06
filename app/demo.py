"""A realistic demo center: 24 chairs, two nursing shifts, ~60 patients, a week of sessions and
a dozen IVIG treatment courses booked about eight weeks ahead.

Everything is booked through the same booking and course services nurses use, so the demo
obeys every rule (opening hours, chairs, nurse capacity, staggered starts, course windows).
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.service import create_user
from core import locks, settle
from core.db import Database
from core.problems import Conflict, Invalid
from core.users import User
from patients.models import Patient
from patients.schemas import PatientCreate
from patients.service import create_patient
from scheduling.appointments import booking
from scheduling.appointments.schemas import AppointmentCreate
from scheduling.catalog.models import Product
from scheduling.catalog.products import update_product
from scheduling.catalog.schemas import ProductUpdate
from scheduling.centers import service as centers
from scheduling.centers.models import Center
from scheduling.centers.schemas import CenterCreate, ChairCreate, ClosureIn
from scheduling.courses import booking as course_booking
from scheduling.courses import service as courses
from scheduling.courses import sessions as course_sessions
from scheduling.courses.models import Course
from scheduling.courses.schemas import CourseCreate

DEMO_PASSWORD = "chairside-demo"  # noqa: S105 - printed for the demo's own users only
COURSE_WEEKS = 8  # courses are booked this far ahead
# Each course: diagnosis, product (HCPCS), start as days after next Monday (never before
# tomorrow), then any further CourseCreate fields. A phase left out takes the diagnosis's usual
# regimen (as seeded, CIDP: 2 g/kg over 5 days, then 1 g/kg every 21 days; MMN: 1 g/kg every
# 28 days; GBS: 2 g/kg over 5 days); `None` means no such phase. An induction needs five
# open days in a row (Sunday is closed, and so is the training day two weeks after next
# Monday), so it starts on a Monday or a Tuesday away from that day.
COURSES: list[tuple[str, str, int, dict[str, object]]] = [
    ("G61.81", "J1561", 0, {"preferred_start_time": "08:00"}),
    ("G61.81", "J1459", 1, {"preferred_start_time": "12:00", "weight_basis": "adjusted"}),
    ("G61.81", "J1569", 7, {"preferred_start_time": "10:00", "vial_tolerance_pct": 5}),
    ("G61.81", "J1561", 15, {"preferred_start_time": "13:00"}),
    ("G61.81", "J1576", -6, {"induction": None, "preferred_weekdays": [1, 3]}),
    ("G61.82", "J1568", -5, {"induction": None, "preferred_weekdays": [2]}),
    ("G61.82", "J1561", 2, {"induction": None, "preferred_start_time": "14:00"}),
    ("G61.82", "J1459", 3, {"induction": None, "preferred_weekdays": [3, 4]}),
    ("G61.82", "J1569", 9, {"induction": None, "chair_kind": "bed"}),
    ("G61.0", "J1561", 1, {"maintenance": None, "chair_kind": "bed", "renal_risk": True}),
    ("G61.0", "J1576", 7, {"maintenance": None, "preferred_start_time": "11:00"}),
    ("G61.81", "J1568", 21, {"preferred_start_time": "09:30"}),
]
# Demo figures, not real prices: list prices in USD per 500 mg billing unit (one HCPCS unit)
# of the order published for 10 % IVIG, so billing's work queue shows money at risk. A center
# enters its own contracted prices. Infliximab stays unpriced: no demo course uses it, and an
# unknown price shows as no amount, never a guessed one.
DEMO_PRICES = {
    "J1561": Decimal("84.00"),  # Gamunex-C
    "J1459": Decimal("79.00"),  # Privigen
    "J1569": Decimal("88.00"),  # Gammagard Liquid
    "J1568": Decimal("72.00"),  # Octagam 10 %
    "J1576": Decimal("81.00"),  # Panzyga
}
# The demo supplier's lead times (days from order to delivery) for the reorder list; a center
# enters its own wholesaler's.
DEMO_LEAD_DAYS = {"J1561": 2, "J1459": 2, "J1569": 3, "J1568": 5, "J1576": 5}
COURSE_PATIENTS = len(COURSES)  # the last patients: on a course only, with no other session
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
            "address": "200 River Road, Suite 3, Springfield",
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
        # One transaction, settled once at its end (cover recomputed after every booking).
        async with db.unit_of_work() as session, settle.batch(session):
            if await session.scalar(select(func.count()).select_from(Center)):
                if only_if_empty:
                    return "demo data not loaded: the database already has a center"
                raise Conflict("the database is not empty; the demo loads only into an empty one")
            rng = random.Random(20261124)
            await _price_catalog(session)
            center = await centers.create_center(session, _center())
            chairs = []
            for i in range(1, 20):
                chairs.append(
                    await centers.create_chair(session, center, ChairCreate(label=f"C{i:02d}"))
                )
            for i in range(1, 5):
                chairs.append(
                    await centers.create_chair(
                        session, center, ChairCreate(label=f"B{i}", kind="bed")
                    )
                )
            chairs.append(
                await centers.create_chair(
                    session, center, ChairCreate(label="ISO1", kind="isolation")
                )
            )

            admin_exists = await session.scalar(select(func.count()).select_from(User))
            if not admin_exists:
                for role in ("admin", "nurse", "billing", "pharmacy"):
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
            week_patients, course_patients = (
                patients[:-COURSE_PATIENTS],
                patients[-COURSE_PATIENTS:],
            )

            today = course_sessions.today_at(center)
            monday = today + timedelta(days=(7 - today.weekday()) % 7 or 7)
            await centers.add_closure(
                session,
                center,
                ClosureIn(date=monday + timedelta(days=14), reason="staff training"),
            )
            # Courses first: a planner takes a center's planning lock before any of its days.
            through = today + timedelta(weeks=COURSE_WEEKS)
            sessions, unbookable = await _book_courses(
                session, center, course_patients, today, monday, through
            )
            booked = await _book_week(session, rng, monday, chairs, week_patients)
            portal_patient = course_patients[0].id
            if not admin_exists:  # a patient with a course, for the portal and FHIR reads
                await create_user(
                    session, "patient@chairside.local", "patient", DEMO_PASSWORD, portal_patient
                )
        return (
            f"demo loaded: 1 center, {len(chairs)} chairs, {len(patients)} patients, "
            f"{booked} appointments in the week of {monday.isoformat()}\n"
            f"{len(COURSES)} treatment courses (CIDP, MMN, GBS) with {sessions} sessions booked "
            f"through {through.isoformat()}"
            + (f", {unbookable} with a session left unbooked" if unbookable else "")
            + "\n"
            f"sign in as admin@chairside.local, nurse@chairside.local, billing@chairside.local, "
            f"pharmacy@chairside.local or patient@chairside.local (the portal, patient "
            f"{portal_patient}) with password {DEMO_PASSWORD!r} (POST /api/v1/auth/token)"
        )
    finally:
        await db.dispose()


async def _price_catalog(session: AsyncSession) -> None:
    """The demo's prices and supplier lead times on the seeded products, before any course is
    ordered."""
    products = await session.scalars(
        select(Product).where(Product.hcpcs_code.in_(DEMO_PRICES)).order_by(Product.name)
    )
    for product in products:
        code = product.hcpcs_code
        await update_product(
            session,
            product,
            ProductUpdate(price_per_unit=DEMO_PRICES[code], order_lead_days=DEMO_LEAD_DAYS[code]),
        )


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


async def _book_courses(
    session: AsyncSession,
    center: Center,
    patients: list[Patient],
    today: date,
    monday: date,
    through: date,
) -> tuple[int, int]:
    """Order the demo's courses and book each through `through`: (sessions, courses stuck)."""
    product_ids = {
        p.hcpcs_code: p.id
        for p in await session.scalars(select(Product).where(Product.active).order_by(Product.name))
    }
    ordered = []
    for patient, (diagnosis, hcpcs, offset, extra) in zip(patients, COURSES, strict=True):
        start = max(monday + timedelta(days=offset), today + timedelta(days=1))
        ordered.append(
            await courses.create_course(
                session,
                CourseCreate.model_validate(
                    {
                        "patient_id": patient.id,
                        "center_id": center.id,
                        "product_id": product_ids[hcpcs],
                        "diagnosis_code": diagnosis,
                        "start_date": start,
                        **extra,
                    }
                ),
                None,
            )
        )
    # Every course row, then the center's planning, before any day (core.locks): one
    # transaction books them all.
    await locks.courses(session, Course, [c.id for c in ordered])
    await locks.course_planning(session, [center.id])
    sessions = stuck = 0
    for course in ordered:
        result = await course_booking.book_through(session, course, through, None)
        settle.mark(session, settle.COVER, course.patient_id)
        sessions += len(result.appointments)
        stuck += result.unbookable is not None
    return sessions, stuck
