"""Day board and booking dialog benchmark (issue 13): what a nurse waits for on the board.

Targets: the day board of a 60-chair center with 200 visits renders in ≤ 150 ms (p95), and a
booking from the dialog answers in ≤ 200 ms (p95). For each database kind this builds a fresh,
migrated database in-process (bulk INSERTs; nothing here goes through the API while building):

* one center (America/New_York, open Monday to Friday 07:00-19:00, closed at the weekend,
  enough nurses x 4 patients for every chair, 15-minute turnover), --chairs chairs (every
  tenth a bed),
* the week of the board day (a Wednesday, the week after next): --visits visits on the board
  day and about as many on each other weekday, packed chair by chair from the morning on the
  15-minute grid (30 minutes to 5 hours; never more starts in 30 minutes than nurses on duty),
  about 4 % of them a 5-day IVIG loading course (a visit every weekday), about half IVIG
  maintenance sessions (with the two sessions before, 21 and 42 days earlier, given, and the
  next one, 21 days later, booked), the rest single visits (30 minutes to 3 hours); statuses
  as if it were 13:00 on the board day (earlier days given, missed or cancelled; the morning's
  visits given, the midday ones checked in or infusing, the afternoon's booked; a few
  cancelled everywhere),
* every course patient has a primary coverage and mostly an approved authorization (some
  pending, some none: the board shows their cover), and --others patients with nothing booked
  this week (the ones the dialog books).

Then the real server starts (uvicorn, one process, test settings), a nurse signs in to the web
app (POST /api/v1/auth/session: the session cookie and its CSRF token, as the browser does) and
one client sends requests one after another over a warm keep-alive connection, as board.js
does:

* render:  GET /api/v1/auth/me, GET /api/v1/centers?limit=200, GET /api/v1/centers/{id}/day
           (signedIn, loadCenters, refresh), --reps times; also the week view (…/week);
* dialog:  GET /api/v1/products?limit=100 (opening it: the infusion-time calculator's list,
           which the page then keeps, so it is left out of the dialog's sum),
           POST /api/v1/patients/search, GET /api/v1/courses?patient_id=…&status=active
           (choosing the patient), POST /api/v1/appointments/check, POST /api/v1/appointments,
           then the board's refresh (GET …/day), --bookings times, each into a distinct free
           slot of the board day for a patient with nothing else that day: --book-minutes long
           (the dialog's default, 180) while such slots are left, then 2 h, 1 h, 30 min;
* baseline: GET /api/v1/auth/me (the trivial signed-in read every request stands on) and
            GET /healthz (no sign-in, no database), one of each before every render.

Chairside sends no Server-Timing header, so latencies are taken at the client over the
loopback (server time plus well under a millisecond of loopback and parsing), with the server
process's CPU per request beside them (from /proc: on a shared machine the steadier figure;
PostgreSQL's own CPU is not in it). After the server
stops, the day board's query code (app.api.centers._day_board) is also timed in-process with
its SQL statements counted; --profile prints a cProfile of it.

    .venv/bin/python -m bench.board [--db sqlite|postgres|both] [--chairs 60] [--visits 200]
                                    [--others 300] [--reps 40] [--bookings 40] [--profile]

It prints figures, each next to the baseline and its ratio to it, and PASS/MISS against the
targets; it asserts nothing about timing. The database is dropped at the end, also after an
error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import json
import math
import os
import pstats
import random
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as wall_time
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import Table, event, insert, select, text
from sqlalchemy.exc import SQLAlchemyError

from app.api.centers import _day_board  # the day board route's own builder
from app.auth.service import create_user
from app.migrate import upgrade
from core.db import Database
from insurance.models import Authorization, Coverage, Payer
from patients.models import Patient
from scheduling.appointments.models import Appointment
from scheduling.catalog.models import Product
from scheduling.centers import repository as center_repository
from scheduling.centers import service as centers
from scheduling.centers.schemas import CenterCreate, ChairCreate
from scheduling.courses.models import Course
from tests.support.databases import drop_database, fresh_database
from tests.support.servers import free_port, server_command, server_env, wait_healthy

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
NURSE_EMAIL = "nurse@bench.local"
TIMEZONE = "America/New_York"
OPENS, CLOSES = wall_time(7), wall_time(19)
OPEN_WEEKDAYS = range(5)  # Monday to Friday
GRID = 15  # minutes: the board's grid
SLOTS_PER_DAY = (CLOSES.hour - OPENS.hour) * 60 // GRID
TURNOVER = 15  # minutes of cleaning after a visit (the center's default)
PATIENTS_PER_NURSE = 4
NOW_ON_BOARD_DAY = wall_time(13)  # statuses are as if it were this time on the board day
INTERVAL = 21  # days between maintenance sessions
IVIG_CODES = ("J1561", "J1459", "J1569", "J1568", "J1576")
TARGET_RENDER_P95_MS = 150.0
TARGET_BOOKING_P95_MS = 200.0

# Durations in grid steps (15 min) by kind of visit.
SINGLE = (2, 4, 4, 6, 8, 8, 12)  # 30 min to 3 h: transfusions, injections, iron, hydration
MAINTENANCE = (10, 12, 12, 14, 16, 18, 20)  # 2.5 to 5 h of IVIG
INDUCTION = (10, 12, 14, 16)  # a loading day: 2.5 to 4 h
FAMILY_NAMES = (
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez "
    "Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris "
    "Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill "
    "Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Gomez Phillips "
    "Evans Turner Diaz Parker Cruz Edwards Collins Reyes Stewart Morris Morales Murphy Cook Rogers"
)
GIVEN_NAMES = (
    "Mary James Patricia Robert Jennifer John Linda Michael Elizabeth David Barbara William Susan "
    "Richard Jessica Joseph Sarah Thomas Karen Charles Lisa Christopher Nancy Daniel Betty Matthew "
    "Sandra Anthony Margaret Mark Ashley Donald Kimberly Steven Emily Paul Donna Andrew Michelle"
)

Row = dict[str, Any]


def say(line: str = "") -> None:
    print(line, flush=True)


# --- the week's plan (pure: no database) -------------------------------------------------------


@dataclass
class Visit:
    day: date
    chair: int
    start: int  # grid steps after opening
    steps: int  # length in grid steps
    kind: str  # single, maintenance, induction
    patient: int = -1
    sequence: int | None = None
    status: str = "booked"


@dataclass
class DayGrid:
    """One day's chairs on the grid: what is taken (with the turnover after each visit), how
    many visits start in each step, and how many patients are in chairs."""

    chairs: int
    nurses: int
    busy: list[list[bool]] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)
    census: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.busy = [[False] * (SLOTS_PER_DAY + 1) for _ in range(self.chairs)]
        self.starts = [0] * SLOTS_PER_DAY
        self.census = [0] * SLOTS_PER_DAY

    def fits(self, chair: int, start: int, steps: int) -> bool:
        end = start + steps
        if start < 0 or end > SLOTS_PER_DAY:
            return False
        turnover_end = min(end + TURNOVER // GRID, SLOTS_PER_DAY + 1)
        if any(self.busy[chair][start:turnover_end]):
            return False
        # Any 30-minute window holds at most two grid steps: this one and a neighbour.
        before = self.starts[start - 1] if start > 0 else 0
        after = self.starts[start + 1] if start + 1 < SLOTS_PER_DAY else 0
        if self.starts[start] + max(before, after) + 1 > self.nurses:
            return False
        capacity = self.nurses * PATIENTS_PER_NURSE
        return all(self.census[i] + 1 <= capacity for i in range(start, end))

    def take(self, chair: int, start: int, steps: int) -> None:
        end = start + steps
        for i in range(start, min(end + TURNOVER // GRID, SLOTS_PER_DAY + 1)):
            self.busy[chair][i] = True
        self.starts[start] += 1
        for i in range(start, end):
            self.census[i] += 1


def nurses_for(chairs: int) -> int:
    """Enough nurses that every chair may be filled (the census rule never binds first)."""
    return max(1, math.ceil(chairs / PATIENTS_PER_NURSE))


def plan_day(
    rng: random.Random, day: date, count: int, chairs: int, loading: int
) -> tuple[list[Visit], DayGrid]:
    """Up to `count` visits, chair by chair in rounds from the morning on; the first `loading`
    are loading days of an IVIG course, the rest maintenance sessions or single visits."""
    grid = DayGrid(chairs, nurses_for(chairs))
    cursor = [rng.choice((0, 0, 0, 1, 2, 4)) for _ in range(chairs)]
    full: set[int] = set()
    visits: list[Visit] = []
    while len(visits) < count and len(full) < chairs:
        order = [c for c in range(chairs) if c not in full]
        rng.shuffle(order)
        for chair in order:
            if len(visits) >= count:
                break
            if len(visits) < loading:
                kind, steps = "induction", rng.choice(INDUCTION)
            elif rng.random() < 0.55:
                kind, steps = "maintenance", rng.choice(MAINTENANCE)
            else:
                kind, steps = "single", rng.choice(SINGLE)
            placed = False
            for kind_, steps_ in ((kind, steps), ("single", 4), ("single", 2)):
                if kind == "induction" and kind_ != "induction":
                    break
                for start in range(cursor[chair], SLOTS_PER_DAY - steps_ + 1):
                    if grid.fits(chair, start, steps_):
                        grid.take(chair, start, steps_)
                        visits.append(Visit(day, chair, start, steps_, kind_))
                        cursor[chair] = start + steps_ + TURNOVER // GRID
                        cursor[chair] += rng.choice((0, 0, 0, 1, 2))
                        placed = True
                        break
                if placed:
                    break
            if not placed:
                full.add(chair)
    return visits, grid


@dataclass
class Plan:
    board_day: date
    week: list[date]
    chairs: int
    visits: list[Visit]  # the week's and the course sessions before and after it
    patients: int
    course_patients: dict[int, str]  # patient -> induction | maintenance
    free_patients: list[int]  # nothing booked in the week
    board_grid: DayGrid
    counts: dict[date, int]


def board_day_after(today: date) -> date:
    """The Wednesday of the week after next: far enough ahead that every booking is ahead."""
    monday = today + timedelta(days=7 - today.weekday())
    return monday + timedelta(days=7 + 2)


def plan_week(rng: random.Random, board_day: date, chairs: int, visits: int, others: int) -> Plan:
    monday = board_day - timedelta(days=board_day.weekday())
    week = [monday + timedelta(days=n) for n in range(7)]
    loading = round(visits * 0.04)
    by_day: dict[date, list[Visit]] = {}
    board_grid: DayGrid | None = None
    for day in week:
        if day.weekday() not in OPEN_WEEKDAYS:
            continue
        count = visits if day == board_day else round(visits * rng.uniform(0.85, 1.05))
        planned, grid = plan_day(rng, day, count, chairs, loading)
        by_day[day] = planned
        if day == board_day:
            board_grid = grid
    assert board_grid is not None
    open_days = sorted(by_day)

    # Patients: the loading ones come every weekday (patient k on the k-th loading visit of
    # each day); everyone else once in the week.
    course_patients: dict[int, str] = {}
    loaders = min(len(by_day[d]) for d in open_days) if open_days else 0
    loaders = min(loading, loaders)
    for k in range(loaders):
        course_patients[k] = "induction"
    patient = loaders
    all_visits: list[Visit] = []
    for n, day in enumerate(open_days):
        for i, v in enumerate(by_day[day]):
            if v.kind == "induction" and i < loaders:
                v.patient, v.sequence = i, n + 1
            else:
                if v.kind == "induction":  # a short day left fewer loading patients
                    v.kind = "maintenance"
                v.patient = patient
                patient += 1
                if v.kind == "maintenance":
                    course_patients[v.patient] = "maintenance"
                    v.sequence = 3
            all_visits.append(v)
    # A maintenance patient's sessions before and after keep the same chair and start time
    # on the same weekday, 21 and 42 days before and 21 after: shifting a whole day's set of
    # visits never makes two of them meet.
    history: list[Visit] = []
    for v in all_visits:
        if v.kind == "maintenance":
            for weeks, sequence in ((-2, 1), (-1, 2), (1, 4)):
                day = v.day + timedelta(days=INTERVAL * weeks)
                history.append(Visit(day, v.chair, v.start, v.steps, v.kind, v.patient, sequence))
    free = list(range(patient, patient + others))
    plan = Plan(
        board_day=board_day,
        week=week,
        chairs=chairs,
        visits=all_visits + history,
        patients=patient + others,
        course_patients=course_patients,
        free_patients=free,
        board_grid=board_grid,
        counts={d: len(vs) for d, vs in by_day.items()},
    )
    set_statuses(rng, plan)
    return plan


def set_statuses(rng: random.Random, plan: Plan) -> None:
    """As if it were NOW_ON_BOARD_DAY on the board day."""
    now = NOW_ON_BOARD_DAY.hour * 60 + NOW_ON_BOARD_DAY.minute - OPENS.hour * 60
    for v in plan.visits:
        r = rng.random()
        start, end = v.start * GRID, (v.start + v.steps) * GRID
        if v.day < plan.board_day or (v.day == plan.board_day and end <= now):
            v.status = "completed" if r < 0.89 else "no_show" if r < 0.94 else "cancelled"
        elif v.day == plan.board_day and start <= now:
            v.status = "in_progress" if r < 0.9 else "checked_in"
        elif v.day == plan.board_day and start - now <= 60:
            v.status = "checked_in" if r < 0.3 else "booked" if r < 0.95 else "cancelled"
        else:
            v.status = "booked" if r < 0.94 else "cancelled"
        if v.day < plan.week[0] and v.status == "cancelled":
            v.status = "completed"  # the sessions given before the week: kept simple


@dataclass(frozen=True)
class Booking:
    chair: int
    start: int
    steps: int
    patient: int


def plan_bookings(rng: random.Random, plan: Plan, count: int, steps: int) -> list[Booking]:
    """Distinct free slots of the board day, spread over chairs and hours, each keeping every
    rule (chair and its turnover, starts per 30 minutes, census) with those before it; a
    patient with nothing booked this week for each. A busy day has few free spans as long as
    the dialog's default: once those are taken, shorter ones (2 h, 1 h, 30 min)."""
    grid = plan.board_grid  # planned as if no visit were cancelled: on the safe side
    patients = list(plan.free_patients)
    rng.shuffle(patients)
    wanted = min(count, len(patients))
    bookings: list[Booking] = []
    for length in sorted({steps, *(s for s in (8, 4, 2) if s < steps)}, reverse=True):
        candidates = [(c, s) for c in range(plan.chairs) for s in range(SLOTS_PER_DAY - length + 1)]
        rng.shuffle(candidates)
        for chair, start in candidates:
            if len(bookings) >= wanted:
                return bookings
            if grid.fits(chair, start, length):
                grid.take(chair, start, length)
                bookings.append(Booking(chair, start, length, patients[len(bookings)]))
    return bookings


# --- building the database -----------------------------------------------------------------


@dataclass(frozen=True)
class Built:
    center_id: uuid.UUID
    chair_ids: list[uuid.UUID]
    chair_labels: list[str]
    patient_ids: list[uuid.UUID]
    family_names: list[str]
    appointments: int
    rows: int


def table(model: Any) -> Table:
    t: Table = model.__table__
    return t


def local_instant(day: date, step: int, tz: ZoneInfo) -> datetime:
    wall = datetime.combine(day, OPENS, tzinfo=tz) + timedelta(minutes=step * GRID)
    return wall.astimezone(UTC)


def patient_rows(rng: random.Random, count: int, now: datetime) -> list[Row]:
    rows = []
    families, given = FAMILY_NAMES.split(), GIVEN_NAMES.split()
    for p in range(count):
        rows.append(
            {
                "id": uuid.uuid4(),
                "mrn": f"B{p:07d}",
                "given_name": rng.choice(given),
                "family_name": rng.choice(families),
                "birth_date": date(1940, 1, 1) + timedelta(days=rng.randrange(65 * 365)),
                "sex": rng.choice(("female", "male")),
                "weight_kg": Decimal(rng.randrange(500, 1100)) / 10,
                "height_cm": Decimal(rng.randrange(1500, 1950)) / 10,
                "version": 1,
                "created_at": now,
                "updated_at": now,
            }
        )
    return rows


async def build(url: str, plan: Plan, seed: int, password: str) -> Built:
    rng = random.Random(seed + 1)
    tz = ZoneInfo(TIMEZONE)
    now = datetime.now(UTC)
    db = Database(url)
    try:
        async with db.unit_of_work() as session:
            await create_user(session, NURSE_EMAIL, "nurse", password, None)
            hours = [
                {"weekday": d, "opens": OPENS.strftime("%H:%M"), "closes": CLOSES.strftime("%H:%M")}
                for d in OPEN_WEEKDAYS
            ]
            staffing = [
                {
                    "weekday": d,
                    "start": OPENS.strftime("%H:%M"),
                    "end": CLOSES.strftime("%H:%M"),
                    "nurses": nurses_for(plan.chairs),
                }
                for d in OPEN_WEEKDAYS
            ]
            center = await centers.create_center(
                session,
                CenterCreate.model_validate(
                    {
                        "name": "Bench Infusion Center",
                        "timezone": TIMEZONE,
                        "patients_per_nurse": PATIENTS_PER_NURSE,
                        "turnover_minutes": TURNOVER,
                        "opening_hours": hours,
                        "staffing": staffing,
                    }
                ),
            )
            chairs = []
            for c in range(plan.chairs):
                kind = "bed" if c % 10 == 9 else "chair"
                chair = await centers.create_chair(
                    session, center, ChairCreate(label=f"C{c + 1:02d}", kind=kind)
                )
                chairs.append(chair)
            products = [
                (pid, code)
                for pid, code in await session.execute(select(Product.id, Product.hcpcs_code))
            ]
        chair_ids = [c.id for c in chairs]
        ivig = [(pid, code) for pid, code in products if code in IVIG_CODES]
        assert ivig, "the seeded IVIG products are missing"

        patients = patient_rows(rng, plan.patients, now)
        payers = [
            {
                "id": uuid.uuid4(),
                "name": name,
                "turnaround_days": 14,
                "expedited_turnaround_days": 3,
                "renewal_margin_days": 7,
                "default_units_type": "visits",
                "max_auth_days": 365,
                "alert_days": 14,
                "version": 1,
                "created_at": now,
                "updated_at": now,
            }
            for name in ("Bench Health", "Bench Mutual", "Bench Medicare Advantage")
        ]
        coverages, courses, auths = [], [], []
        course_of: dict[int, uuid.UUID] = {}
        weight: dict[int, Decimal] = {p: row["weight_kg"] for p, row in enumerate(patients)}
        first_visit: dict[int, Visit] = {}
        for v in sorted(plan.visits, key=lambda v: (v.day, v.start)):
            first_visit.setdefault(v.patient, v)
        for p, kind in sorted(plan.course_patients.items()):
            patient_id = patients[p]["id"]
            coverage_id, course_id = uuid.uuid4(), uuid.uuid4()
            course_of[p] = course_id
            product_id, code = rng.choice(ivig)
            first = first_visit[p]
            coverages.append(
                {
                    "id": coverage_id,
                    "patient_id": patient_id,
                    "payer_id": rng.choice(payers)["id"],
                    "member_id": f"M{p:09d}",
                    "group_number": f"G{p % 97:03d}",
                    "priority": "primary",
                    "effective_from": plan.board_day - timedelta(days=400),
                    "effective_to": None,
                    "version": 1,
                    "created_at": now,
                    "updated_at": now,
                }
            )
            loading = kind == "induction"
            courses.append(
                {
                    "id": course_id,
                    "patient_id": patient_id,
                    "center_id": center.id,
                    "product_id": product_id,
                    "diagnosis_code": "G61.81",
                    "status": "active",
                    "induction_total_g_per_kg": Decimal("2.000") if loading else None,
                    "induction_days": 5 if loading else None,
                    "induction_skips_closures": False,
                    "induction_booked_days": 5 if loading else None,
                    "maintenance_g_per_kg": Decimal("1.000"),
                    "interval_days": INTERVAL,
                    "window_min_days": 21,
                    "window_max_days": 28,
                    "cycles": 6,
                    "end_date": None,
                    "start_date": first.day,
                    "preferred_weekdays": [first.day.weekday()],
                    "preferred_start_time": (
                        datetime.combine(first.day, OPENS) + timedelta(minutes=first.start * GRID)
                    ).time(),
                    "chair_kind": "chair",
                    "weight_basis": "actual",
                    "vial_tolerance_pct": None,
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
            r = rng.random()
            if r < 0.93:
                approved = r < 0.85
                auths.append(
                    {
                        "id": uuid.uuid4(),
                        "patient_id": patient_id,
                        "coverage_id": coverage_id,
                        "course_id": None,
                        "service_code": code,
                        "auth_number": f"PA{p:07d}",
                        "status": "approved" if approved else "pending",
                        "valid_from": plan.board_day - timedelta(days=60),
                        "valid_to": plan.board_day + timedelta(days=180),
                        "units_type": "visits",
                        "units_approved": 12,
                        "units_used": 2 if kind == "maintenance" else 0,
                        "requested_on": plan.board_day - timedelta(days=75),
                        "decided_on": plan.board_day - timedelta(days=62) if approved else None,
                        "notes": None,
                        "version": 1,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
        appointments = []
        for v in plan.visits:
            start = local_instant(v.day, v.start, tz)
            of_course = course_of.get(v.patient) if v.kind != "single" else None
            g_per_kg = Decimal("0.4") if v.kind == "induction" else Decimal("1.0")
            dose = (g_per_kg * weight[v.patient]).quantize(Decimal("0.01"))
            appointments.append(
                {
                    "id": uuid.uuid4(),
                    "center_id": center.id,
                    "chair_id": chair_ids[v.chair],
                    "patient_id": patients[v.patient]["id"],
                    "start_at": start,
                    "end_at": start + timedelta(minutes=v.steps * GRID),
                    "status": v.status,
                    "version": 1,
                    "booked_by": None,
                    "status_changed_at": now,
                    "course_id": of_course,
                    "phase": v.kind if of_course else None,
                    "sequence": v.sequence if of_course else None,
                    "dose_g": dose if of_course else None,
                    "part": 1,
                    "turnover_minutes": TURNOVER,
                    "outside_window": False,
                    "pinned": False,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        written = 0
        async with db.unit_of_work() as session:
            conn = await session.connection()
            for model, rows in (
                (Patient, patients),
                (Payer, payers),
                (Coverage, coverages),
                (Course, courses),
                (Authorization, auths),
                (Appointment, appointments),
            ):
                for i in range(0, len(rows), 1000):
                    await conn.execute(insert(table(model)), rows[i : i + 1000])
                written += len(rows)
        if db.dialect == "postgresql":
            async with db.engine.connect() as conn:
                auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await auto.execute(text("ANALYZE"))
        return Built(
            center_id=center.id,
            chair_ids=chair_ids,
            chair_labels=[c.label for c in chairs],
            patient_ids=[row["id"] for row in patients],
            family_names=[row["family_name"] for row in patients],
            appointments=len(appointments),
            rows=written,
        )
    finally:
        await db.dispose()


# --- one client, one keep-alive connection -----------------------------------------------------


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    ms: float
    cpu_ms: float  # the server process's CPU meanwhile (in clock ticks: exact on average only)

    def json(self) -> Any:
        return json.loads(self.body)


class Client:
    """One keep-alive HTTP/1.1 connection with the web app's session cookie, sending what the
    browser's fetch() sends (Accept, Cookie; for changes Content-Type, Origin, X-CSRF-Token).
    Requests are written and replies read by hand: httpx would add its own milliseconds of CPU
    to every figure."""

    def __init__(self, base: str, cookie: str, csrf: str, server_pid: int) -> None:
        self.pid = server_pid
        url = httpx.URL(base)
        self.host, self.port = url.host, url.port or 80
        self.common = (
            f"Host: {self.host}:{self.port}\r\nAccept: application/json\r\nCookie: {cookie}\r\n"
        )
        self.change = (
            f"Content-Type: application/json\r\nOrigin: {base}\r\nX-CSRF-Token: {csrf}\r\n"
        )
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, path: str, payload: Any = None) -> Reply:
        body = b"" if payload is None else json.dumps(payload).encode()
        head = f"{method} {path} HTTP/1.1\r\n{self.common}"
        if method != "GET":
            head += f"{self.change}Content-Length: {len(body)}\r\n"
        raw = (head + "\r\n").encode() + body
        if self.reader is None or self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        cpu = cpu_seconds(self.pid)
        started = time.perf_counter()
        self.writer.write(raw)
        status, content, close = await self._read(self.reader)
        ms = (time.perf_counter() - started) * 1000
        cpu_ms = (cpu_seconds(self.pid) - cpu) * 1000
        if close:
            await self.close()
        return Reply(status, content, ms, cpu_ms)

    @staticmethod
    async def _read(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        headers: dict[bytes, bytes] = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        close = headers.get(b"connection", b"").lower() == b"close"
        if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            parts: list[bytes] = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")
                    return status, b"".join(parts), close
                parts.append(await reader.readexactly(size))
                await reader.readexactly(2)
        length = int(headers.get(b"content-length", b"0"))
        return status, await reader.readexactly(length), close

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far (NaN without /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return math.nan
    fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": utime, stime are 14th, 15th
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def sign_in(base: str, password: str) -> tuple[str, str]:
    """The session cookie (name=value) and its CSRF token, as the sign-in page gets them."""
    async with httpx.AsyncClient(base_url=base, timeout=60) as c:
        r = await c.post(
            "/api/v1/auth/session",
            data={"username": NURSE_EMAIL, "password": password},
            headers={"Origin": base},
        )
        r.raise_for_status()
        cookie = next(
            h.split(";", 1)[0]
            for h in r.headers.get_list("set-cookie")
            if h.startswith("chairside_session=")
        )
        csrf: str = r.json()["csrf_token"]
        return cookie, csrf


# --- figures -----------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest rank (no interpolation: a latency some request really had)."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


@dataclass
class Series:
    name: str
    ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)

    def add(self, reply: Reply) -> Reply:
        self.ms.append(reply.ms)
        self.cpu_ms.append(reply.cpu_ms)
        self.statuses[reply.status] += 1
        return reply

    def add_sum(self, replies: Sequence[Reply]) -> None:
        """One sample made of requests sent one after another (a render, a dialog)."""
        self.ms.append(sum(r.ms for r in replies))
        self.cpu_ms.append(sum(r.cpu_ms for r in replies))

    @property
    def mean_cpu(self) -> float:
        return sum(self.cpu_ms) / len(self.cpu_ms) if self.cpu_ms else math.nan

    def p(self, q: float) -> float:
        return percentile(self.ms, q)


@dataclass
class Result:
    kind: str
    plan: Plan
    built: Built
    series: dict[str, Series]
    facts: list[str]
    warnings: list[str]
    in_process: dict[str, Series]
    statements: float
    profile: str | None = None


def series(names: Sequence[str]) -> dict[str, Series]:
    return {n: Series(n) for n in names}


# --- the timed phases --------------------------------------------------------------------------


def expect(reply: Reply, status: int, what: str, warnings: list[str]) -> Reply:
    if reply.status != status and len(warnings) < 20:
        warnings.append(f"{what} answered {reply.status}: {reply.body[:300]!r}")
    return reply


async def run_client(
    server: Server, password: str, plan: Plan, built: Built, args: Options, warnings: list[str]
) -> tuple[dict[str, Series], list[str]]:
    cookie, csrf = await sign_in(server.base, password)
    client = Client(server.base, cookie, csrf, server.pid)
    s = series(
        (
            "healthz",
            "me",
            "render.me",
            "render.centers",
            "render.day",
            "render",
            "week.me",
            "week.centers",
            "week.week",
            "week",
            "products",
            "search",
            "courses",
            "check",
            "book",
            "dialog",
            "refresh",
        )
    )
    center = built.center_id
    day_path = f"/api/v1/centers/{center}/day?date={plan.board_day.isoformat()}"
    monday = plan.week[0].isoformat()
    week_path = f"/api/v1/centers/{center}/week?start={monday}"
    centers_path = "/api/v1/centers?limit=200"
    facts: list[str] = []
    try:
        # Warm-up (not counted): the server's first requests compile and cache.
        for _ in range(args.warmup):
            for path in ("/healthz", "/api/v1/auth/me", centers_path, day_path, week_path):
                await client.request("GET", path)

        first = expect(await client.request("GET", day_path), 200, "the day board", warnings)
        if first.status == 200:
            facts.append(fact(f"day board of {plan.board_day}", board_facts(first)))

        for _ in range(args.reps):
            s["healthz"].add(await client.request("GET", "/healthz"))
            s["me"].add(await client.request("GET", "/api/v1/auth/me"))
            replies = []
            for name, path in (
                ("render.me", "/api/v1/auth/me"),
                ("render.centers", centers_path),
                ("render.day", day_path),
            ):
                reply = s[name].add(await client.request("GET", path))
                replies.append(expect(reply, 200, f"GET {path}", warnings))
            s["render"].add_sum(replies)
        for _ in range(args.reps):
            replies = []
            for name, path in (
                ("week.me", "/api/v1/auth/me"),
                ("week.centers", centers_path),
                ("week.week", week_path),
            ):
                reply = s[name].add(await client.request("GET", path))
                replies.append(expect(reply, 200, f"GET {path}", warnings))
            s["week"].add_sum(replies)

        bookings = plan_bookings(
            random.Random(args.seed + 2), plan, args.bookings, args.book_minutes // GRID
        )
        if len(bookings) < args.bookings:
            warnings.append(
                f"only {len(bookings)} free slots (or free patients) for the {args.bookings} "
                "bookings asked"
            )
        tz = ZoneInfo(TIMEZONE)
        booked = 0
        for b in bookings:
            patient_id = built.patient_ids[b.patient]
            # Opening the dialog loads the products for its infusion-time calculator (once a
            # page: timed every time, left out of the dialog's sum).
            products = s["products"].add(await client.request("GET", "/api/v1/products?limit=100"))
            expect(products, 200, "the products", warnings)
            q = built.family_names[b.patient][:5]
            search = s["search"].add(
                await client.request("POST", "/api/v1/patients/search", {"q": q, "limit": 8})
            )
            expect(search, 200, "the patient search", warnings)
            query = urlencode({"patient_id": str(patient_id), "status": "active"})
            courses = s["courses"].add(await client.request("GET", f"/api/v1/courses?{query}"))
            expect(courses, 200, "the patient's courses", warnings)
            start = local_instant(plan.board_day, b.start, tz).astimezone(tz)
            body = {
                "patient_id": str(patient_id),
                "chair_id": str(built.chair_ids[b.chair]),
                "local_date": plan.board_day.isoformat(),
                "local_time": start.strftime("%H:%M"),
                "duration_minutes": b.steps * GRID,
            }
            check = s["check"].add(await client.request("POST", "/api/v1/appointments/check", body))
            expect(check, 200, "the booking check", warnings)
            if check.status == 200 and not check.json().get("bookable"):
                warnings.append(f"the check refused a planned free slot: {check.body[:300]!r}")
            book = s["book"].add(await client.request("POST", "/api/v1/appointments", body))
            booked += expect(book, 201, "the booking", warnings).status == 201
            s["dialog"].add_sum([search, courses, check, book])
            refresh = s["refresh"].add(await client.request("GET", day_path))
            expect(refresh, 200, "the board's refresh", warnings)
        lengths = Counter(b.steps * GRID for b in bookings)
        mix = ", ".join(f"{n} of {m} min" for m, n in sorted(lengths.items(), reverse=True))
        facts.append(
            fact(
                "bookings from the dialog",
                f"{booked} booked of {len(bookings)} tried, each into a distinct free slot of "
                f"the board day ({mix or 'none'})",
            )
        )
        last = await client.request("GET", day_path)
        if last.status == 200:
            facts.append(fact("after the bookings", board_facts(last)))
    finally:
        await client.close()
    return s, facts


def fact(label: str, text: str) -> str:
    return f"{label:<31}: {text}"


def board_facts(reply: Reply) -> str:
    board = reply.json()
    visits = [a for c in board["chairs"] for a in c["appointments"]]
    statuses = Counter(a["status"] for a in visits)
    covered = Counter(
        (a["coverage"] or {}).get("state", "not shown") for a in visits if a["phase"] is not None
    )
    sessions = sum(1 for a in visits if a["phase"])
    listed = ", ".join(f"{k} {n}" for k, n in sorted(statuses.items()))
    cover = ", ".join(f"{k} {n}" for k, n in sorted(covered.items()))
    return (
        f"{len(board['chairs'])} chairs, {len(visits)} visits ({listed}); {sessions} course "
        f"sessions (cover: {cover}); {len(board['slots'])} slots; "
        f"{len(reply.body) / 1024:.0f} KiB of JSON"
    )


# --- the day board's query code, in-process ---------------------------------------------------


async def in_process(
    url: str, center_id: uuid.UUID, day: date, reps: int, profile: bool
) -> tuple[dict[str, Series], float, str | None]:
    """`_day_board` (the route's work after sign-in: queries, rules, cover) and the reply's
    JSON, timed in this process on the same database (wall, and this process's CPU, which on
    SQLite includes the queries); SQL statements counted."""
    db = Database(url)
    counted = [0]

    def count(*_: Any) -> None:
        counted[0] += 1

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    s = series(("build", "json", "cpu"))
    profiler = cProfile.Profile() if profile else None
    try:
        for n in range(reps + 1):
            async with db.unit_of_work(write=False) as session:
                center = await center_repository.get_center(session, center_id)
                before = counted[0]
                cpu = time.process_time()
                started = time.perf_counter()
                if profiler is not None and n > 0:
                    profiler.enable()
                board = await _day_board(session, center, day)
                built = time.perf_counter()
                cpu = time.process_time() - cpu
                board.model_dump_json()
                done = time.perf_counter()
                if profiler is not None:
                    profiler.disable()
                statements = counted[0] - before
            if n > 0:  # the first is a warm-up
                s["build"].ms.append((built - started) * 1000)
                s["json"].ms.append((done - built) * 1000)
                s["cpu"].ms.append(cpu * 1000)
    finally:
        await db.dispose()
    text_out = None
    if profiler is not None:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("cumulative").print_stats(30)
        text_out = out.getvalue()
    return s, float(statements), text_out


# --- one database kind ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    base: str
    pid: int


@contextmanager
def running(url: str) -> Iterator[Server]:
    port = free_port()
    process = subprocess.Popen(server_command(port), cwd=ROOT, env=server_env(url))
    try:
        base = f"http://127.0.0.1:{port}"
        wait_healthy(process, base, "Chairside")
        yield Server(base, process.pid)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def run_kind(kind: str, url: str, args: Options) -> Result:
    rng = random.Random(args.seed)
    board_day = board_day_after(datetime.now(ZoneInfo(TIMEZONE)).date())
    plan = plan_week(rng, board_day, args.chairs, args.visits, args.others)
    password = f"bench-{uuid.uuid4().hex}"
    upgrade(url)
    started = time.perf_counter()
    built = asyncio.run(build(url, plan, args.seed, password))
    seconds = time.perf_counter() - started
    facts = [
        f"built in                       : {seconds:.1f} s ({built.rows:,} rows; informative)",
        f"center                         : {args.chairs} chairs, open Mon-Fri 07:00-19:00, "
        f"{nurses_for(args.chairs)} nurses x {PATIENTS_PER_NURSE} patients",
        "visits in the week             : "
        + ", ".join(f"{d:%a} {n}" for d, n in sorted(plan.counts.items()))
        + f" (board day {plan.board_day:%a %Y-%m-%d})",
        f"appointments in all            : {built.appointments:,} (with the course sessions "
        "before and after the week)",
        f"patients                       : {plan.patients:,} ({len(plan.course_patients)} on "
        f"courses, {len(plan.free_patients)} with nothing booked in the week)",
    ]
    warnings: list[str] = []
    with running(url) as server:
        say(f"[{kind}] built; timing the board and the dialog over HTTP")
        s, more = asyncio.run(run_client(server, password, plan, built, args, warnings))
    say(f"[{kind}] timing the day board's query code in-process")
    local, statements, profile = asyncio.run(
        in_process(url, built.center_id, plan.board_day, args.reps, args.profile)
    )
    return Result(kind, plan, built, s, facts + more, warnings, local, statements, profile)


# --- report ------------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(result: Result) -> None:
    s, base = result.series, result.series["me"]
    say(f"\n== {result.kind} ==")
    for line in result.facts:
        say(line)
    say(
        "Latencies in ms at the client: one keep-alive connection over the loopback, requests one "
        "after another (no Server-Timing header exists); ratio = p50 / baseline p50 and "
        "p95 / baseline p95, the baseline being GET /api/v1/auth/me measured in the same run; "
        "srv CPU = the uvicorn process's mean CPU ms a request (from /proc, in 10 ms ticks, so "
        "exact on average only; PostgreSQL's own CPU not included)."
    )
    head = (
        f"{'measure':<44}{'n':>4}{'p50':>8}{'p95':>8}{'p99':>8}{'max':>8}"
        f"{'x base p50':>11}{'x base p95':>11}{'srv CPU':>9}  target"
    )
    say(head)
    say("-" * len(head))

    def row(label: str, name: str, target: float | None = None) -> None:
        f = s[name]
        if not f.ms:
            say(f"{label:<44}{0:>4}  (no samples)")
            return
        p50, p95 = f.p(0.50), f.p(0.95)
        r50 = p50 / base.p(0.50) if base.ms else math.nan
        r95 = p95 / base.p(0.95) if base.ms else math.nan
        goal = f"p95 <= {target:.0f} ms: {verdict(p95 <= target)}" if target else ""
        say(
            f"{label:<44}{len(f.ms):>4}{p50:>8.1f}{p95:>8.1f}{f.p(0.99):>8.1f}{max(f.ms):>8.1f}"
            f"{r50:>11.2f}{r95:>11.2f}{f.mean_cpu:>9.1f}  {goal}"
        )

    row("baseline  GET /healthz (no sign-in)", "healthz")
    row("baseline  GET /api/v1/auth/me", "me")
    row("render    GET /api/v1/auth/me", "render.me")
    row("          GET /api/v1/centers?limit=200", "render.centers")
    row("          GET /api/v1/centers/{id}/day", "render.day")
    row("          the three, one after another", "render", TARGET_RENDER_P95_MS)
    row("week      GET /api/v1/auth/me", "week.me")
    row("          GET /api/v1/centers?limit=200", "week.centers")
    row("          GET /api/v1/centers/{id}/week", "week.week")
    row("          the three, one after another", "week")
    row("dialog    GET /api/v1/products?limit=100", "products")
    row("          POST /api/v1/patients/search", "search")
    row("          GET /api/v1/courses?patient_id=…", "courses")
    row("          POST /api/v1/appointments/check", "check", TARGET_BOOKING_P95_MS)
    row("          POST /api/v1/appointments", "book", TARGET_BOOKING_P95_MS)
    row("          search, courses, check, book", "dialog")
    row("          GET …/day (the refresh after)", "refresh")
    local = result.in_process
    say(
        f"in-process, no HTTP (app.api.centers._day_board on the same database, "
        f"{result.statements:.0f} SQL statements a board):"
    )
    for label, name in (
        ("build the board (wall)", "build"),
        ("build the board (CPU of this process)", "cpu"),
        ("its JSON (wall)", "json"),
    ):
        f = local[name]
        if f.ms:
            say(
                f"  {label:<42}{len(f.ms):>4}{f.p(0.50):>8.1f}{f.p(0.95):>8.1f}"
                f"{f.p(0.99):>8.1f}{max(f.ms):>8.1f}"
            )
    for w in result.warnings:
        say(f"WARNING: {w}")
    if result.profile:
        say("cProfile of the in-process board builds (cumulative):")
        say(result.profile)


# --- command line ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    kinds: list[str]
    chairs: int
    visits: int
    others: int
    reps: int
    bookings: int
    book_minutes: int
    warmup: int
    seed: int
    profile: bool
    pg_url: str


def parse(argv: Sequence[str] | None) -> Options:
    p = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n", 1)[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--db", choices=["sqlite", "postgres", "postgresql", "both"], default="both")
    p.add_argument("--chairs", type=int, default=60)
    p.add_argument("--visits", type=int, default=200, help="visits on the board day")
    p.add_argument("--others", type=int, default=300, help="patients with nothing this week")
    p.add_argument("--reps", type=int, default=40, help="board and week renders timed")
    p.add_argument("--bookings", type=int, default=40, help="bookings from the dialog timed")
    p.add_argument("--book-minutes", type=int, default=180, help="chair time of each booking")
    p.add_argument("--warmup", type=int, default=3, help="untimed rounds of every GET")
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--profile", action="store_true", help="cProfile the in-process builds")
    p.add_argument(
        "--pg-url", default=os.environ.get("CHAIRSIDE_TEST_POSTGRES_URL") or DEFAULT_PG_URL
    )
    ns = p.parse_args(argv)
    if min(ns.chairs, ns.visits, ns.reps) < 1 or min(ns.others, ns.bookings, ns.warmup) < 0:
        p.error("--chairs, --visits and --reps are >= 1; --others, --bookings, --warmup >= 0")
    if ns.book_minutes < GRID or ns.book_minutes % GRID:
        p.error(f"--book-minutes is a multiple of {GRID}")
    kinds = {"both": ["sqlite", "postgresql"], "postgres": ["postgresql"]}.get(ns.db, [ns.db])
    return Options(
        kinds,
        ns.chairs,
        ns.visits,
        ns.others,
        ns.reps,
        ns.bookings,
        ns.book_minutes,
        ns.warmup,
        ns.seed,
        ns.profile,
        ns.pg_url,
    )


def main(argv: Sequence[str] | None = None) -> None:
    args = parse(argv)
    say(
        f"Chairside day board benchmark: {os.cpu_count()} CPU cores shared by client, server and "
        f"database; {args.chairs} chairs, {args.visits} visits on the board day, "
        f"{args.others} other patients; {args.reps} renders, {args.bookings} bookings"
    )
    say("load average before: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    with tempfile.TemporaryDirectory(prefix="chairside-bench-") as tmp:
        for kind in args.kinds:
            try:
                url = fresh_database(kind, Path(tmp), args.pg_url, prefix="chairside_bench")
            except (OSError, SQLAlchemyError) as exc:
                say(f"\n== {kind} == skipped: cannot create a database ({exc})")
                continue
            try:
                report(run_kind(kind, url, args))
            finally:
                drop_database(url, args.pg_url)
    say("load average after: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))


if __name__ == "__main__":
    main()
