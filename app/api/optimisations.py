"""Evening out a center's days: the optimiser proposes moves, a person applies them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, cast

from fastapi import APIRouter, Response, status

from app.api.deps import DEFAULT_PAGE, Allowed, Cursor, Limit, OwnTransactions, Session
from core.schemas import Page
from scheduling.centers import repository as center_repository
from scheduling.levelling import service as levelling
from scheduling.levelling.models import Optimisation
from scheduling.levelling.schemas import (
    DayCensus,
    Figures,
    Move,
    OptimisationOut,
    OptimiseIn,
)
from scheduling.localtime import zone

router = APIRouter(prefix="/api/v1", tags=["optimiser"])


def optimisation_out(o: Optimisation, tz_name: str) -> OptimisationOut:
    tz = zone(tz_name)
    figures: dict[str, Any] = o.figures

    def local(value: str) -> datetime:
        return datetime.fromisoformat(value).astimezone(tz)

    return OptimisationOut(
        id=o.id,
        center_id=o.center_id,
        from_=o.first_day,
        to=o.last_day,
        status=cast(Any, o.status),
        moves=[
            Move(
                appointment_id=m["appointment_id"],
                patient_id=m["patient_id"],
                from_start=local(m["from_start"]),
                from_chair_id=m["from_chair_id"],
                to_start=local(m["to_start"]),
                to_end=local(m["to_end"]),
                to_chair_id=m["to_chair_id"],
            )
            for m in o.moves
        ],
        before=Figures(**figures["before"]),
        after=Figures(**figures["after"]),
        lower_bound_peak=o.lower_bound_peak,
        optimal=o.optimal,
        feasible=figures["feasible"],
        movable_sessions=figures["movable_sessions"],
        fixed_sessions=figures["fixed_sessions"],
        solve_ms=o.solve_ms,
        time_limit_seconds=o.time_limit_seconds,
        days=[DayCensus(**d) for d in figures["days"]],
        created_at=o.created_at.astimezone(tz),
        applied_at=o.applied_at.astimezone(tz) if o.applied_at is not None else None,
    )


@router.post(
    "/centers/{center_id}/optimise",
    summary="Propose evening out the days",
    status_code=status.HTTP_201_CREATED,
    response_model=OptimisationOut,
    response_model_by_alias=True,
)
async def optimise(
    center_id: uuid.UUID,
    data: OptimiseIn,
    db: OwnTransactions,
    caller: Allowed,
    response: Response,
) -> OptimisationOut:
    """Propose how to even out the center's days from `from` to `to`: the lowest peak census
    first, then the fewest starts in 30 minutes, then sessions on their target day and at the
    preferred time, then the fewest moves. Only booked course sessions from the center's
    `no_move_days` on move, inside their windows and their authorizations' periods. Nothing
    changes until the proposal is applied. 422 for a range nothing in may move or longer
    than 14 days; 404 for an unknown center."""
    proposal_id = await levelling.propose(
        db, center_id, data.from_, data.to, data.time_limit_seconds, caller.user_id
    )
    async with db.unit_of_work(write=False) as session:
        proposal = await levelling.get_optimisation(session, proposal_id)
        tz_name = await center_repository.timezone_of(session, proposal.center_id)
    response.headers["Location"] = f"/api/v1/optimisations/{proposal_id}"
    return optimisation_out(proposal, tz_name)


@router.get("/optimisations", response_model=Page[OptimisationOut], response_model_by_alias=True)
async def list_optimisations(
    session: Session,
    _: Allowed,
    center_id: uuid.UUID | None = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
) -> Page[OptimisationOut]:
    """Proposals, the oldest first."""
    found, nxt = await levelling.list_optimisations(session, center_id, limit, cursor)
    zones = {
        c: await center_repository.timezone_of(session, c)
        for c in sorted({o.center_id for o in found}, key=str)
    }
    items = [optimisation_out(o, zones[o.center_id]) for o in found]
    return Page[OptimisationOut](items=items, next_cursor=nxt)


@router.get(
    "/optimisations/{optimisation_id}",
    response_model=OptimisationOut,
    response_model_by_alias=True,
)
async def get_optimisation(
    optimisation_id: uuid.UUID, session: Session, _: Allowed
) -> OptimisationOut:
    """One proposal of the optimiser: the moves it suggests and whether it was applied."""
    proposal = await levelling.get_optimisation(session, optimisation_id)
    tz_name = await center_repository.timezone_of(session, proposal.center_id)
    return optimisation_out(proposal, tz_name)


@router.post(
    "/optimisations/{optimisation_id}/apply",
    summary="Apply a proposal",
    response_model=OptimisationOut,
    response_model_by_alias=True,
)
async def apply(optimisation_id: uuid.UUID, session: Session, caller: Allowed) -> OptimisationOut:
    """Make every move of the proposal in one transaction, or none: 409 when it was applied
    already, when any of its days changed since it was made (`changed_days`), or when a move
    no longer keeps the booking rules. Each moved visit is rescheduled as a nurse's move is
    (its history, `appointment.rescheduled`, a new calendar SEQUENCE)."""
    proposal = await levelling.get_optimisation(session, optimisation_id)
    proposal = await levelling.apply(session, proposal, caller.user_id)
    tz_name = await center_repository.timezone_of(session, proposal.center_id)
    return optimisation_out(proposal, tz_name)
