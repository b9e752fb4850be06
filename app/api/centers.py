"""Centers, closures, chairs, chair blocks, availability and the day board."""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.covers import coverage_out
from app.api.deps import (
    DEFAULT_PAGE,
    Allowed,
    Cursor,
    IfMatch,
    Limit,
    Session,
    etag,
)
from core.problems import ensure_version
from core.schemas import LocalDate, Page
from insurance import allocation
from scheduling.appointments import availability
from scheduling.appointments.schemas import (
    Availability,
    BoardAppointment,
    BoardChair,
    BoardSlot,
    DayBoard,
    Slot,
    WeekBoard,
)
from scheduling.centers import repository as center_repository
from scheduling.centers import service as centers
from scheduling.centers.models import Center, Chair, ChairBlock
from scheduling.centers.schemas import (
    CenterCreate,
    CenterOut,
    CenterUpdate,
    ChairBlockIn,
    ChairBlockOut,
    ChairCreate,
    ChairKind,
    ChairOut,
    ChairUpdate,
    ClosureIn,
    ClosureOut,
    OpeningHoursOut,
    StaffingOut,
)
from scheduling.courses import board as course_board
from scheduling.localtime import zone

router = APIRouter(prefix="/api/v1", tags=["centers"])


def center_out(center: Center) -> CenterOut:
    return CenterOut(
        id=center.id,
        name=center.name,
        address=center.address,
        timezone=center.timezone,
        patients_per_nurse=center.patients_per_nurse,
        turnover_minutes=center.turnover_minutes,
        checkin_opens_minutes=center.checkin_opens_minutes,
        max_session_minutes=center.max_session_minutes,
        coverage_policy=center.coverage_policy,
        prepare_policy=center.prepare_policy,
        booking_horizon_days=center.booking_horizon_days,
        auto_book_at=center.auto_book_at.strftime("%H:%M"),
        shortage_priority=list(center.shortage_priority),
        no_move_days=center.no_move_days,
        optimise_nightly=center.optimise_nightly,
        offer_hold_minutes=center.offer_hold_minutes,
        offer_hold_same_day_minutes=center.offer_hold_same_day_minutes,
        opening_hours=[
            OpeningHoursOut(
                weekday=h.weekday,
                opens=h.opens.strftime("%H:%M"),
                closes=h.closes.strftime("%H:%M"),
            )
            for h in center.opening_hours
        ],
        staffing=[
            StaffingOut(
                weekday=s.weekday,
                start=s.start.strftime("%H:%M"),
                end=s.end.strftime("%H:%M"),
                nurses=s.nurses,
            )
            for s in center.staffing
        ],
        version=center.version,
    )


@router.post("/centers", status_code=status.HTTP_201_CREATED, response_model=CenterOut)
async def create_center(
    data: CenterCreate, session: Session, _: Allowed, response: Response
) -> CenterOut:
    """Add an infusion center. Answers 201 with its Location and ETag."""
    center = await centers.create_center(session, data)
    center = await center_repository.get_center(session, center.id)
    response.headers["Location"] = f"/api/v1/centers/{center.id}"
    response.headers["ETag"] = etag(center.version)
    return center_out(center)


@router.get("/centers", response_model=Page[CenterOut])
async def list_centers(
    session: Session, _: Allowed, limit: Limit = DEFAULT_PAGE, cursor: Cursor = None
) -> Page[CenterOut]:
    """The centers, a page at a time (`limit`, then `cursor` from `next_cursor`)."""
    items, nxt = await centers.list_centers(session, limit, cursor)
    return Page[CenterOut](items=[center_out(c) for c in items], next_cursor=nxt)


@router.get("/centers/{center_id}", response_model=CenterOut)
async def get_center(
    center_id: uuid.UUID, session: Session, _: Allowed, response: Response
) -> CenterOut:
    """One center, with its ETag for a later change."""
    center = await center_repository.get_center(session, center_id)
    response.headers["ETag"] = etag(center.version)
    return center_out(center)


@router.patch("/centers/{center_id}", response_model=CenterOut)
async def update_center(
    center_id: uuid.UUID,
    data: CenterUpdate,
    version: IfMatch,
    session: Session,
    _: Allowed,
    response: Response,
) -> CenterOut:
    """Change a center's name, time zone, opening hours or rules. Send If-Match with the ETag
    you read: 428 without one, 412 when it is stale."""
    center = await center_repository.get_center(session, center_id)
    ensure_version(center.version, version, "center")
    await centers.update_center(session, center, data)
    session.expire(center)
    center = await center_repository.get_center(session, center_id)
    response.headers["ETag"] = etag(center.version)
    return center_out(center)


@router.post(
    "/centers/{center_id}/closures", status_code=status.HTTP_201_CREATED, response_model=ClosureOut
)
async def add_closure(
    center_id: uuid.UUID, data: ClosureIn, session: Session, _: Allowed, response: Response
) -> ClosureOut:
    """Close a center on a date (a holiday, a training day): nothing is booked there that
    day. 404 for an unknown center."""
    center = await center_repository.get_center(session, center_id)
    closure = await centers.add_closure(session, center, data)
    response.headers["Location"] = f"/api/v1/centers/{center_id}/closures/{closure.id}"
    return ClosureOut.model_validate(closure)


@router.get("/centers/{center_id}/closures", response_model=Page[ClosureOut])
async def list_closures(
    center_id: uuid.UUID,
    session: Session,
    _: Allowed,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
) -> Page[ClosureOut]:
    """A center's closures, a page at a time."""
    await center_repository.get_center(session, center_id)
    items, nxt = await centers.list_closures(session, center_id, limit, cursor)
    return Page[ClosureOut](items=[ClosureOut.model_validate(c) for c in items], next_cursor=nxt)


@router.get("/centers/{center_id}/closures/{closure_id}", response_model=ClosureOut)
async def get_closure(
    center_id: uuid.UUID, closure_id: uuid.UUID, session: Session, _: Allowed
) -> ClosureOut:
    """One closure of a center (404 when it is another center's)."""
    return ClosureOut.model_validate(await centers.get_closure(session, center_id, closure_id))


@router.post(
    "/centers/{center_id}/chairs", status_code=status.HTTP_201_CREATED, response_model=ChairOut
)
async def create_chair(
    center_id: uuid.UUID, data: ChairCreate, session: Session, _: Allowed, response: Response
) -> ChairOut:
    """Add a chair (or bed) to a center. Answers 201 with its Location and ETag."""
    center = await center_repository.get_center(session, center_id)
    chair = await centers.create_chair(session, center, data)
    response.headers["Location"] = f"/api/v1/chairs/{chair.id}"
    response.headers["ETag"] = etag(chair.version)
    return ChairOut.model_validate(chair)


@router.get("/centers/{center_id}/chairs", response_model=Page[ChairOut])
async def list_chairs(
    center_id: uuid.UUID,
    session: Session,
    _: Allowed,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
) -> Page[ChairOut]:
    """A center's chairs, a page at a time."""
    await center_repository.get_center(session, center_id)
    items, nxt = await centers.list_chairs(session, center_id, limit, cursor)
    return Page[ChairOut](items=[ChairOut.model_validate(c) for c in items], next_cursor=nxt)


@router.get("/chairs/{chair_id}", response_model=ChairOut)
async def get_chair(
    chair_id: uuid.UUID, session: Session, _: Allowed, response: Response
) -> ChairOut:
    """One chair, with its ETag for a later change."""
    chair = await center_repository.get_chair(session, chair_id)
    response.headers["ETag"] = etag(chair.version)
    return ChairOut.model_validate(chair)


@router.patch("/chairs/{chair_id}", response_model=ChairOut)
async def update_chair(
    chair_id: uuid.UUID,
    data: ChairUpdate,
    version: IfMatch,
    session: Session,
    _: Allowed,
    response: Response,
) -> ChairOut:
    """Rename a chair, change its kind, or take it out of use. Send If-Match with the ETag you
    read: 428 without one, 412 when it is stale."""
    chair: Chair = await center_repository.get_chair(session, chair_id)
    ensure_version(chair.version, version, "chair")
    await centers.update_chair(session, chair, data)
    response.headers["ETag"] = etag(chair.version)
    return ChairOut.model_validate(chair)


@router.post(
    "/chairs/{chair_id}/blocks", status_code=status.HTTP_201_CREATED, response_model=ChairBlockOut
)
async def add_chair_block(
    chair_id: uuid.UUID, data: ChairBlockIn, session: Session, _: Allowed, response: Response
) -> ChairBlockOut:
    """Block a chair for a time (maintenance, cleaning): nothing is booked in it then.
    422 when start is not before end."""
    chair = await center_repository.get_chair(session, chair_id)
    block = await centers.add_chair_block(session, chair, data)
    response.headers["Location"] = f"/api/v1/chairs/{chair_id}/blocks/{block.id}"
    return block_out(block, await center_repository.timezone_of(session, chair.center_id))


def block_out(block: ChairBlock, tz_name: str) -> ChairBlockOut:
    tz = zone(tz_name)
    return ChairBlockOut(
        id=block.id,
        chair_id=block.chair_id,
        start=block.start_at.astimezone(tz),
        end=block.end_at.astimezone(tz),
        reason=block.reason,
    )


@router.get("/chairs/{chair_id}/blocks", response_model=Page[ChairBlockOut])
async def list_chair_blocks(
    chair_id: uuid.UUID,
    session: Session,
    _: Allowed,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
) -> Page[ChairBlockOut]:
    """A chair's blocks, a page at a time, in the center's time zone."""
    chair = await center_repository.get_chair(session, chair_id)
    tz = await center_repository.timezone_of(session, chair.center_id)
    items, nxt = await centers.list_chair_blocks(session, chair_id, limit, cursor)
    return Page[ChairBlockOut](items=[block_out(b, tz) for b in items], next_cursor=nxt)


@router.get("/chairs/{chair_id}/blocks/{block_id}", response_model=ChairBlockOut)
async def get_chair_block(
    chair_id: uuid.UUID, block_id: uuid.UUID, session: Session, _: Allowed
) -> ChairBlockOut:
    """One block of a chair (404 when it is another chair's)."""
    chair = await center_repository.get_chair(session, chair_id)
    block = await centers.get_chair_block(session, chair_id, block_id)
    return block_out(block, await center_repository.timezone_of(session, chair.center_id))


@router.get("/centers/{center_id}/availability", response_model=Availability)
async def get_availability(
    center_id: uuid.UUID,
    session: Session,
    _: Allowed,
    date: Annotated[LocalDate, Query()],
    duration_minutes: Annotated[int, Query(ge=1, le=24 * 60)],
    chair_kind: Annotated[ChairKind | None, Query()] = None,
) -> Availability:
    """The open slots of `duration_minutes` at a center on a local date, chair by chair, in
    the center's time zone; only chairs of `chair_kind` when given. Closures, blocks and
    booked appointments are left out."""
    center = await center_repository.get_center(session, center_id)
    tz = zone(center.timezone)
    slots = await availability.open_slots(
        session, center, date, timedelta(minutes=duration_minutes), chair_kind
    )
    labels = {c.id: c.label for c in await center_repository.chairs_of(session, center_id)}
    return Availability(
        slots=[
            Slot(
                chair_id=s.chair_id,
                chair_label=labels[s.chair_id],
                start=s.start.astimezone(tz),
                end=s.end.astimezone(tz),
            )
            for s in slots
        ]
    )


@router.get("/centers/{center_id}/day", response_model=DayBoard)
async def get_day(
    center_id: uuid.UUID, session: Session, _: Allowed, date: Annotated[LocalDate, Query()]
) -> DayBoard:
    """Every chair's appointments for the day, with each patient's name and MRN and each
    course session's product, dose, phase and number, and the nurse load every 15 minutes."""
    center = await center_repository.get_center(session, center_id)
    return await _day_board(session, center, date)


@router.get("/centers/{center_id}/week", response_model=WeekBoard)
async def get_week(
    center_id: uuid.UUID, session: Session, _: Allowed, start: Annotated[LocalDate, Query()]
) -> WeekBoard:
    """Seven day boards from `start`."""
    center = await center_repository.get_center(session, center_id)
    days = await _day_boards(session, center, [start + timedelta(days=n) for n in range(7)])
    return WeekBoard(center_id=center.id, start=start, days=days)


async def _day_board(session: AsyncSession, center: Center, day: date) -> DayBoard:
    return (await _day_boards(session, center, [day]))[0]


async def _day_boards(session: AsyncSession, center: Center, days: list[date]) -> list[DayBoard]:
    """The boards of these days. Cover and seats are read once for all of them: a week's
    patients are mostly the same from day to day (a loading course's, every day)."""
    boards = [await availability.day_board(session, center, day) for day in days]
    visits = [a for board in boards for a in board.appointments]
    covers = await allocation.covers_of(session, [a.id for a in visits if a.course_id])
    who = await course_board.seats(session, [a.id for a in visits])
    return [
        _board_out(center, day, board, covers, who) for day, board in zip(days, boards, strict=True)
    ]


def _board_out(
    center: Center,
    day: date,
    board: availability.Board,
    covers: dict[uuid.UUID, allocation.SessionPayment],
    who: dict[uuid.UUID, course_board.Seat],
) -> DayBoard:
    tz = zone(center.timezone)
    by_chair: dict[uuid.UUID, list[BoardAppointment]] = {c.id: [] for c in board.chairs}
    for a in board.appointments:
        seat = who[a.id]
        by_chair.setdefault(a.chair_id, []).append(
            BoardAppointment(
                id=a.id,
                patient_id=a.patient_id,
                patient_name=seat.patient_name,
                mrn=seat.mrn,
                start=a.start_at.astimezone(tz),
                end=a.end_at.astimezone(tz),
                status=a.status,
                product=seat.product,
                dose_g=float(a.dose_g) if a.dose_g is not None else None,
                phase=a.phase,
                sequence=a.sequence,
                coverage=coverage_out(covers.get(a.id)),
                version=a.version,
                outside_window=a.outside_window,
            )
        )
    rules = board.rules
    return DayBoard(
        center_id=center.id,
        date=day,
        opens=rules.opens_at.astimezone(tz) if rules.opens_at else None,
        closes=rules.closes_at.astimezone(tz) if rules.closes_at else None,
        closed_reason=rules.closed_reason,
        chairs=[
            BoardChair(
                id=c.id, label=c.label, kind=c.kind, active=c.active, appointments=by_chair[c.id]
            )
            for c in board.chairs
        ],
        slots=[
            BoardSlot(
                start=s.start.astimezone(tz),
                census=s.census,
                nurses=s.nurses,
                nurse_capacity=s.nurse_capacity,
                starts=s.starts,
            )
            for s in board.slots
        ],
    )
