"""Drug demand: what the booked sessions will draw from a center's stock, where it runs short,
what to order by when, and one dose's vials (the vial planner)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
from datetime import date, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from pydantic import Field, StrictBool

from app.api.deps import Allowed, Session
from core.schemas import Input, LocalDate, Output
from pharmacy import demand_queries as queries
from pharmacy.demand import Vials
from scheduling.catalog.vials import Tolerance

router = APIRouter(prefix="/api/v1", tags=["inventory"])

From = Annotated[
    LocalDate | None, Query(alias="from", description="first local day (default: today)")
]
To = Annotated[
    LocalDate | None,
    Query(description="last local day, inclusive (default: the end of the booking horizon)"),
]


class VialsOut(Output):
    vial_size_g: float
    count: int


class DemandLineOut(Output):
    date: dt.date = Field(description="the day, or the Monday of the ISO week")
    product_id: uuid.UUID
    sessions: int
    grams: float
    vials: list[VialsOut] = Field(description="the vials the doses are planned on, by size")
    on_hand_vials: list[VialsOut] = Field(
        description="usable on the period's first day, after what earlier days drew (stock on "
        "order included once its expected day has come)"
    )
    shortfall_vials: list[VialsOut] = Field(
        description="planned vials the stock cannot give, by size (another size does not "
        "stand in for a missing one)"
    )
    on_order_vials: list[VialsOut] = Field(
        description="vials on order expected on a day of the period, by size: stock from that "
        "day on"
    )


class ShortOut(Output):
    product_id: uuid.UUID
    first_short_on: date
    shortfall_vials: list[VialsOut] = Field(description="the whole range's shortfall, by size")


class DemandOut(Output):
    from_: date = Field(serialization_alias="from")
    to: date
    group: Literal["day", "week"]
    items: list[DemandLineOut]
    short: list[ShortOut]


class VialPlanIn(Input):
    product_id: uuid.UUID
    dose_g: float = Field(gt=0, le=1000)
    center_id: uuid.UUID | None = Field(
        default=None, description="plan from the center's lots usable today (first expiry first)"
    )
    tolerance_pct: float | None = Field(default=None, ge=0, le=100)
    tolerance_g: float | None = Field(default=None, ge=0, le=1000)
    shortage: StrictBool = Field(
        default=False, description="round down to whole vials below the dose"
    )


class PlannedVialOut(Output):
    vial_size_g: float
    count: int
    lot_id: uuid.UUID | None = Field(description="the lot to pull from; null from the catalog")
    expires_on: date | None


class VialPlanOut(Output):
    vials: list[PlannedVialOut]
    total_g: float
    given_g: float
    waste_g: float
    waste_units: int
    units_given: int
    modifier: Literal["JW", "JZ"]
    within_tolerance: bool
    short_g: float


def _vials(vials: tuple[Vials, ...]) -> list[VialsOut]:
    return [VialsOut(vial_size_g=v.vial_size_g, count=v.count) for v in vials]


@router.get("/centers/{center_id}/drug-demand", response_model=DemandOut)
async def drug_demand(
    center_id: uuid.UUID,
    session: Session,
    _: Allowed,
    start: From = None,
    to: To = None,
    group: Literal["day", "week"] = "day",
) -> DemandOut:
    """Per day (or ISO week) and product: the center's booked course sessions, their grams
    and vials, the usable stock at the period's start and what it cannot give; and each
    product that runs short, from when. At most 26 weeks (422)."""
    forecast = await queries.drug_demand(session, center_id, start, to, group)
    return DemandOut(
        from_=forecast.start,
        to=forecast.end,
        group=group,
        items=[
            DemandLineOut(
                date=line.date,
                product_id=line.product_id,
                sessions=line.sessions,
                grams=line.grams,
                vials=_vials(line.vials),
                on_hand_vials=_vials(line.on_hand_vials),
                shortfall_vials=_vials(line.shortfall_vials),
                on_order_vials=_vials(line.on_order_vials),
            )
            for line in forecast.demand.lines
        ],
        short=[
            ShortOut(
                product_id=s.product_id,
                first_short_on=s.first_short_on,
                shortfall_vials=_vials(s.shortfall_vials),
            )
            for s in forecast.demand.short
        ],
    )


REORDER_COLUMNS = (
    "product",
    "product_id",
    "first_short_on",
    "vials_short",
    "vials_short_total",
    "order_lead_days",
    "order_by",
)


@router.get(
    "/centers/{center_id}/reorder.csv",
    summary="Reorder list (CSV)",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "one row per short product"}},
)
async def reorder_csv(
    center_id: uuid.UUID, session: Session, _: Allowed, start: From = None, to: To = None
) -> Response:
    """Each product whose stock runs short in the range: the first short day, the vials short
    by size, the product's order lead time and the day to order by (the first short day less
    the lead time; empty when the lead time is not known). What is on order is not asked for
    again: it counts as stock from the day it is expected, so it covers the days from then."""
    forecast = await queries.drug_demand(session, center_id, start, to)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(REORDER_COLUMNS)
    for short in forecast.demand.short:
        product = forecast.products[short.product_id]
        lead = product.order_lead_days
        by_size = " + ".join(f"{v.count} x {v.vial_size_g:g} g" for v in short.shortfall_vials)
        writer.writerow(
            [
                _cell(product.name),
                short.product_id,
                short.first_short_on.isoformat(),
                by_size,
                sum(v.count for v in short.shortfall_vials),
                "" if lead is None else lead,
                "" if lead is None else (short.first_short_on - timedelta(days=lead)).isoformat(),
            ]
        )
    name = f"reorder-{forecast.start.isoformat()}-{forecast.end.isoformat()}.csv"
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _cell(text: str) -> str:
    # A spreadsheet runs cells that start like a formula: never let data do that.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


@router.post("/vial-plan", response_model=VialPlanOut)
async def vial_plan(data: VialPlanIn, session: Session, _: Allowed) -> VialPlanOut:
    """The vials for one dose, the waste and its billing: from the product's catalog sizes,
    or with `center_id` from that center's lots usable today, first expiry first out, with
    the lot to pull each from (`short_g` > 0 when they cannot make the dose)."""
    plan = await queries.vial_plan(
        session,
        queries.VialRequest(
            product_id=data.product_id,
            dose_g=data.dose_g,
            center_id=data.center_id,
            tolerance=Tolerance(pct=data.tolerance_pct, grams=data.tolerance_g),
            shortage=data.shortage,
        ),
    )
    return VialPlanOut(
        vials=[
            PlannedVialOut(
                vial_size_g=v.vial_size_g, count=v.count, lot_id=v.lot_id, expires_on=v.expires_on
            )
            for v in plan.vials
        ],
        total_g=plan.total_g,
        given_g=plan.given_g,
        waste_g=plan.waste_g,
        waste_units=plan.waste_units,
        units_given=plan.units_given,
        modifier=plan.modifier,
        within_tolerance=plan.within_tolerance,
        short_g=plan.short_g,
    )
