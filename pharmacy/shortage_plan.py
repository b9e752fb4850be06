"""Reading what a shortage plan needs (a center's booked sessions, their windows, its lots and
the catalog) and asking `pharmacy.shortage` for proposals. Reads only: nothing is applied, the
caller's unit of work is one read transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.clock import today
from core.problems import Invalid, NotFound
from pharmacy import drug_check
from pharmacy.demand_queries import MOST_DAYS
from pharmacy.shortage import Product, Question, Session, ShortagePlan, shortage_plan
from scheduling.centers.models import Center, OpeningHours
from scheduling.courses.models import Course
from scheduling.courses.plan import plan as course_plan
from scheduling.localtime import zone

# HCPCS codes of immune globulins (J1459-J1599 and the subcutaneous ones): only these stand in
# for one another in a switch. A product with another code (infliximab) is never offered.
IMMUNE_GLOBULIN_HCPCS = frozenset(
    {
        "J1459",
        "J1551",
        "J1554",
        "J1555",
        "J1556",
        "J1557",
        "J1558",
        "J1559",
        "J1561",
        "J1562",
        "J1566",
        "J1568",
        "J1569",
        "J1572",
        "J1575",
        "J1576",
        "J1599",
    }
)


@dataclass(frozen=True)
class Answer:
    center_id: uuid.UUID
    product_id: uuid.UUID
    start: date
    end: date
    priority: list[str]
    plan: ShortagePlan
    product_names: dict[uuid.UUID, str]


def _range_problem(field: str, why: str) -> Invalid:
    return Invalid(
        f"{field}: {why}", errors=[{"loc": ["body", field], "msg": why, "type": "date_range"}]
    )


async def propose(
    session: AsyncSession,
    center_id: uuid.UUID,
    product_id: uuid.UUID,
    start: date | None,
    end: date | None,
) -> Answer:
    """What to do for the sessions of `product_id` at the center from `start` to `end`
    (default: today to the end of the booking horizon) the stock will not cover. 404 for an
    unknown center; 422 for an unknown product or a range out of bounds."""
    center = await session.get(Center, center_id)
    if center is None:
        raise NotFound("no such center")
    on = today(zone(center.timezone))
    start = on if start is None else start
    end = on + timedelta(days=center.booking_horizon_days) if end is None else end
    if end < start:
        raise _range_problem("to", "the range ends before it starts")
    if (end - start).days > MOST_DAYS:
        raise _range_problem("to", f"a plan covers at most {MOST_DAYS} days")
    catalog = await drug_check.products(session)
    if product_id not in catalog:
        raise Invalid("product_id: no such product")

    # What draws on the stock: every booked session from today (or the range's start) on.
    rows = await drug_check.booked_rows(session, center.id, center.timezone, min(on, start), end)
    lots = await drug_check.lots_at(session, center.id, on)
    latest = await _window_ends(session, rows, product_id, start, end, on)
    weekdays = set(
        await session.scalars(
            select(OpeningHours.weekday).where(OpeningHours.center_id == center.id)
        )
    )
    sessions = [
        Session(
            r.appointment_id,
            r.patient_id,
            r.course_id,
            r.day,
            r.start,
            r.product_id,
            r.dose_g,
            r.diagnosis_code,
            r.phase,
            latest.get(r.appointment_id),
            r.tolerance_pct,
        )
        for r in rows
    ]
    products = {
        pid: Product(
            p.name, p.catalog, p.hcpcs_code in IMMUNE_GLOBULIN_HCPCS, p.active, p.order_lead_days
        )
        for pid, p in catalog.items()
    }
    priority = list(center.shortage_priority)
    asked = Question(product_id, start, end, on, priority, weekdays)
    return Answer(
        center.id,
        product_id,
        start,
        end,
        priority,
        shortage_plan(sessions, lots, products, asked),
        {pid: p.name for pid, p in catalog.items()},
    )


async def _window_ends(
    session: AsyncSession,
    rows: list[drug_check.Row],
    product_id: uuid.UUID,
    start: date,
    end: date,
    on: date,
) -> dict[uuid.UUID, date]:
    """The last day of each maintenance session's window (of the product, in the range), from
    its course's plan: how far it may move."""
    courses = sorted(
        {
            r.course_id
            for r in rows
            if r.product_id == product_id and r.phase == "maintenance" and start <= r.day <= end
        },
        key=str,
    )
    ends: dict[uuid.UUID, date] = {}
    for course_id in courses:
        course = await session.get(Course, course_id)
        if course is None or not course.interval_days:
            continue
        for entry in (await course_plan(session, course, on, on)).entries:
            if entry.appointment is not None and entry.phase == "maintenance":
                ends[entry.appointment.id] = entry.window.latest
    return ends
