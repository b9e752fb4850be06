"""Reading what the drug forecast and the vial planner need: a center's booked course sessions
and its stock, usable lots and what is on order (for `pharmacy.demand`), and one dose's vials
from the catalog or a center's lots. Reads only; the caller's unit of work is the one read
transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.clock import today
from core.problems import Invalid, NotFound
from pharmacy import drug_check
from pharmacy import service as pharmacy
from pharmacy.demand import Catalog, Demand, Dose, Group, Lot, demand
from scheduling.appointments.models import ACTIVE_STATUSES, Appointment
from scheduling.catalog.models import Product
from scheduling.catalog.vials import (
    NO_ROUNDING,
    Stock,
    Tolerance,
    VialPlan,
    catalog_stock,
    plan_vials,
)
from scheduling.centers.models import Center
from scheduling.courses.models import Course
from scheduling.localtime import local_date, zone

MOST_DAYS = 26 * 7  # the longest range a forecast covers (to - from), about six months


@dataclass(frozen=True)
class ProductFacts:
    name: str
    order_lead_days: int | None  # how many days an order takes to arrive; None: not known


@dataclass(frozen=True)
class Forecast:
    start: date
    end: date  # inclusive
    demand: Demand
    products: dict[uuid.UUID, ProductFacts]  # every product in the demand


def _range_problem(field: str, why: str) -> Invalid:
    return Invalid(
        f"{field}: {why}", errors=[{"loc": ["query", field], "msg": why, "type": "date_range"}]
    )


@dataclass(frozen=True)
class Inputs:
    """What the forecast is computed from, as plain values."""

    start: date
    end: date  # inclusive
    sessions: list[Dose]
    lots: list[Lot]
    catalogs: dict[uuid.UUID, Catalog]
    products: dict[uuid.UUID, ProductFacts]


async def drug_demand(
    session: AsyncSession,
    center_id: uuid.UUID,
    start: date | None,
    end: date | None,
    group: Group = "day",
) -> Forecast:
    """The center's active course sessions (booked, checked in or infusing, of active courses)
    on the local days `start` to `end` inclusive (default: today to the end of the booking
    horizon), against the lots usable there today and the orders expected by `end` (each from
    its day): `pharmacy.demand.demand`."""
    got = await demand_inputs(session, center_id, start, end)
    lines = demand(got.sessions, got.lots, got.catalogs, group)
    return Forecast(got.start, got.end, lines, got.products)


async def demand_inputs(
    session: AsyncSession, center_id: uuid.UUID, start: date | None, end: date | None
) -> Inputs:
    """The sessions, lots and catalogs `drug_demand` plans from (422 for a range out of
    bounds, 404 for an unknown center)."""
    found = (
        await session.execute(
            select(Center.timezone, Center.booking_horizon_days).where(Center.id == center_id)
        )
    ).one_or_none()
    if found is None:
        raise NotFound("no such center")
    tz = zone(found.timezone)
    on = today(tz)
    start = on if start is None else start
    end = on + timedelta(days=found.booking_horizon_days) if end is None else end
    if end < start:
        raise _range_problem("to", "the range ends before it starts")
    if (end - start).days > MOST_DAYS:
        raise _range_problem("to", f"a forecast covers at most {MOST_DAYS} days")

    first = datetime.combine(start, time(0), tzinfo=tz).astimezone(UTC)
    after = datetime.combine(end + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    rows = await session.execute(
        select(Appointment.start_at, Course.product_id, Appointment.dose_g)
        .join(Course, Course.id == Appointment.course_id)
        .where(
            Appointment.center_id == center_id,
            Appointment.start_at >= first,
            Appointment.start_at < after,
            Appointment.status.in_(ACTIVE_STATUSES),
            Appointment.dose_g > 0,
            Course.status == "active",
        )
    )
    sessions = [
        Dose(local_date(at, tz), product_id, float(dose))
        for at, product_id, dose in rows
        if dose is not None  # the query leaves none out; this tells mypy
    ]
    # The same stock the shortfall check burns down: lots, and orders from their day.
    lots = await drug_check.lots_at(session, center_id, max(on, start), end)
    wanted = {s.product_id for s in sessions}
    catalogs: dict[uuid.UUID, Catalog] = {}
    products: dict[uuid.UUID, ProductFacts] = {}
    if wanted:
        for product in await session.scalars(select(Product).where(Product.id.in_(wanted))):
            catalogs[product.id] = Catalog(
                tuple(float(v) for v in product.vial_sizes_g), product.billing_unit_mg
            )
            products[product.id] = ProductFacts(product.name, product.order_lead_days)
    return Inputs(start, end, sessions, lots, catalogs, products)


@dataclass(frozen=True)
class VialRequest:
    product_id: uuid.UUID
    dose_g: float
    center_id: uuid.UUID | None = None
    tolerance: Tolerance = NO_ROUNDING
    shortage: bool = False


async def vial_plan(session: AsyncSession, asked: VialRequest) -> VialPlan:
    """One dose's vials: from the catalog sizes, or, at a center, from its lots usable there
    today (first expiry first out; `short_g` says what they lack)."""
    product = await session.get(Product, asked.product_id)
    if product is None:
        raise Invalid("product_id: no such product")
    stock: tuple[Stock, ...]
    if asked.center_id is None:
        stock = catalog_stock(float(v) for v in product.vial_sizes_g)
    else:
        try:
            on = await pharmacy.center_today(session, asked.center_id)
        except NotFound as exc:
            raise Invalid("center_id: no such center") from exc
        lots = await pharmacy.usable_lots(session, asked.center_id, product.id, on)
        stock = tuple(
            Stock(float(lot.vial_size_g), lot.vials_on_hand, lot.id, lot.expires_on) for lot in lots
        )
    return plan_vials(
        asked.dose_g,
        stock,
        asked.tolerance,
        shortage=asked.shortage,
        billing_unit_mg=product.billing_unit_mg,
    )
