"""Drug shortages: the pharmacy's work queue (the `drug_shortfall` alerts), and a shortage plan
that proposes, and never applies, what to do for the sessions a product's stock will not
cover."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import replace
from typing import Literal

from fastapi import APIRouter
from pydantic import Field

from app.api.deps import DEFAULT_PAGE, Allowed, Audited, Cursor, Limit, Session
from app.api.insurance import Filters, alerts_out
from core.schemas import Input, LocalDate, Output, Page
from insurance import worklist
from insurance.schemas import AlertOut
from pharmacy import shortage_plan as use_case
from pharmacy.demand import Vials

router = APIRouter(prefix="/api/v1", tags=["pharmacy"])


@router.get("/pharmacy/alerts", response_model=Page[AlertOut])
async def pharmacy_alerts(
    session: Session,
    _: Allowed,
    trail: Audited,
    filters: Filters,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
) -> Page[AlertOut]:
    """The pharmacy's queue: booked doses the stock will not cover on their day, most urgent
    first (as `GET /alerts?queue=pharmacy`, which staff read)."""
    trail.saw(filters.patient_id)
    items, nxt = await worklist.list_alerts(
        session, replace(filters, queue="pharmacy"), limit, cursor
    )
    return Page[AlertOut](items=await alerts_out(session, items), next_cursor=nxt)


class ShortagePlanIn(Input):
    product_id: uuid.UUID
    start: LocalDate | None = Field(
        default=None, alias="from", description="first local day (default: today)"
    )
    end: LocalDate | None = Field(
        default=None,
        alias="to",
        description="last local day, inclusive (default: the end of the booking horizon)",
    )


class VialsOut(Output):
    vial_size_g: float
    count: int


class ProposalOut(Output):
    appointment_id: uuid.UUID
    patient_id: uuid.UUID
    course_id: uuid.UUID
    priority_rank: int = Field(description="1: the center's first indication; unlisted last")
    date: dt.date = Field(description="the session's local day")
    action: Literal["round_down", "switch_product", "move_later"]
    detail: str
    dose_g_before: float
    dose_g_after: float | None
    product_id_after: uuid.UUID | None
    product_name_after: str | None
    vials_after: list[VialsOut] = Field(description="what the proposal would draw, by size")
    move_to_date: dt.date | None


class UncoveredOut(Output):
    appointment_id: uuid.UUID
    patient_id: uuid.UUID
    course_id: uuid.UUID
    priority_rank: int
    date: dt.date
    dose_g: float
    short_vials: list[VialsOut] = Field(description="what is missing of its planned vials")
    reason: str


class ShortagePlanOut(Output):
    center_id: uuid.UUID
    product_id: uuid.UUID
    from_: dt.date = Field(serialization_alias="from")
    to: dt.date
    priority: list[str] = Field(description="the center's order of indications it followed")
    applied: Literal[False] = Field(
        default=False, description="a plan proposes: nothing was changed"
    )
    protected: list[uuid.UUID] = Field(
        description="the product's sessions in the range its stock covers as booked"
    )
    proposals: list[ProposalOut]
    uncovered: list[UncoveredOut] = Field(description="what stays uncovered even so")


def _vials(items: tuple[Vials, ...]) -> list[VialsOut]:
    return [VialsOut(vial_size_g=v.vial_size_g, count=v.count) for v in items]


@router.post("/centers/{center_id}/shortage-plan", response_model=ShortagePlanOut)
async def shortage_plan(
    center_id: uuid.UUID, data: ShortagePlanIn, session: Session, _: Allowed, trail: Audited
) -> ShortagePlanOut:
    """For the sessions of a product the stock will not cover, in the center's priority order
    of indications: round down, switch product, or move a maintenance session later in its
    window. It proposes; it changes nothing."""
    answer = await use_case.propose(session, center_id, data.product_id, data.start, data.end)
    plan = answer.plan
    trail.saw()  # a search over the center's sessions: no one patient (as GET /alerts)
    return ShortagePlanOut(
        center_id=answer.center_id,
        product_id=answer.product_id,
        from_=answer.start,
        to=answer.end,
        priority=answer.priority,
        protected=list(plan.protected),
        proposals=[
            ProposalOut(
                appointment_id=p.appointment_id,
                patient_id=p.patient_id,
                course_id=p.course_id,
                priority_rank=p.priority_rank,
                date=p.day,
                action=p.action,
                detail=p.detail,
                dose_g_before=p.dose_g_before,
                dose_g_after=p.dose_g_after,
                product_id_after=p.product_id_after,
                product_name_after=(
                    answer.product_names.get(p.product_id_after) if p.product_id_after else None
                ),
                vials_after=_vials(p.vials_after),
                move_to_date=p.move_to_date,
            )
            for p in plan.proposals
        ],
        uncovered=[
            UncoveredOut(
                appointment_id=u.appointment_id,
                patient_id=u.patient_id,
                course_id=u.course_id,
                priority_rank=u.priority_rank,
                date=u.day,
                dose_g=u.dose_g,
                short_vials=_vials(u.short),
                reason=u.reason,
            )
            for u in plan.uncovered
        ],
    )
