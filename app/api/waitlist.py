"""The waitlist: patients waiting for an opening, and the entries an opening fits, ranked."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, cast

from fastapi import APIRouter, Query, Response, status

from app.api.deps import (
    DEFAULT_PAGE,
    Allowed,
    Audited,
    Cursor,
    IfMatch,
    Limit,
    Session,
    etag,
)
from core.problems import ensure_version
from core.schemas import HHMM, LocalDate, Page
from scheduling.centers import repository as center_repository
from scheduling.localtime import zone
from scheduling.waitlist import backfill, offers
from scheduling.waitlist import figures as waitlist_figures
from scheduling.waitlist import service as waitlist
from scheduling.waitlist.models import WaitlistEntry, WaitlistOffer, WaitlistOpening
from scheduling.waitlist.schemas import (
    ChairKind,
    FiguresOut,
    OfferOut,
    OfferStatus,
    OpeningCause,
    WaitlistCreate,
    WaitlistFits,
    WaitlistOut,
    WaitlistStatus,
    WaitlistUpdate,
)

router = APIRouter(prefix="/api/v1", tags=["waitlist"])


def entry_out(entry: WaitlistEntry, tz_name: str) -> WaitlistOut:
    return WaitlistOut(
        id=entry.id,
        center_id=entry.center_id,
        patient_id=entry.patient_id,
        course_id=entry.course_id,
        appointment_id=entry.appointment_id,
        earliest=entry.earliest,
        latest=entry.latest,
        duration_minutes=entry.duration_minutes,
        chair_kind=cast(ChairKind, entry.chair_kind),  # the column's checks hold it to these
        priority=entry.priority,
        status=cast(WaitlistStatus, entry.status),
        note=entry.note,
        created_at=entry.created_at.astimezone(zone(tz_name)),
        created_by=entry.created_by,
        version=entry.version,
    )


async def _many(session: Session, found: list[WaitlistEntry]) -> list[WaitlistOut]:
    zones = {
        c: await center_repository.timezone_of(session, c)
        for c in sorted({e.center_id for e in found}, key=str)
    }
    return [entry_out(e, zones[e.center_id]) for e in found]


async def _reply(session: Session, entry: WaitlistEntry, response: Response) -> WaitlistOut:
    response.headers["ETag"] = etag(entry.version)
    return entry_out(entry, await center_repository.timezone_of(session, entry.center_id))


@router.get("/waitlist", response_model=Page[WaitlistOut])
async def list_entries(
    session: Session,
    _: Allowed,
    trail: Audited,
    center_id: uuid.UUID | None = None,
    patient_id: uuid.UUID | None = None,
    status: WaitlistStatus | None = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
) -> Page[WaitlistOut]:
    """Entries in the order they were put on the list, the longest waiting first."""
    trail.saw(patient_id)
    which = waitlist.EntryFilter(center_id, patient_id, status)
    found, nxt = await waitlist.list_entries(session, which, limit, cursor)
    return Page[WaitlistOut](items=await _many(session, found), next_cursor=nxt)


@router.get("/waitlist/fits", response_model=WaitlistFits, summary="Entries that fit")
async def fits(
    session: Session,
    _: Allowed,
    center_id: uuid.UUID,
    date: LocalDate,
    start: Annotated[HHMM, Query(description="the opening's local start, HH:MM")],
    duration_minutes: Annotated[int, Query(ge=15, le=720)],
    chair_kind: ChairKind = "chair",
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> WaitlistFits:
    """The waiting entries an opening fits, in the order it would be offered to them: by
    priority, then the nearest deadline (`latest`), then the longest waiting, then id."""
    at = dt.time.fromisoformat(start)
    found = await waitlist.fits(session, center_id, date, at, duration_minutes, chair_kind, limit)
    return WaitlistFits(items=await _many(session, found))


@router.post("/waitlist", status_code=status.HTTP_201_CREATED, response_model=WaitlistOut)
async def add_entry(
    data: WaitlistCreate, session: Session, caller: Allowed, trail: Audited, response: Response
) -> WaitlistOut:
    """Put a patient on the waitlist. 422 when `earliest` is after `latest` or the center,
    patient or course is unknown; 409 when the course already has a waiting entry."""
    trail.saw(data.patient_id)
    entry = await waitlist.add_entry(session, data, caller.user_id)
    trail.saw(entry.patient_id, entry.id)
    response.headers["Location"] = f"/api/v1/waitlist/{entry.id}"
    return await _reply(session, entry, response)


def offer_out(
    offer: WaitlistOffer, opening: WaitlistOpening, entry: WaitlistEntry, tz_name: str
) -> OfferOut:
    tz = zone(tz_name)
    return OfferOut(
        id=offer.id,
        opening_id=opening.id,
        entry_id=entry.id,
        patient_id=entry.patient_id,
        center_id=opening.center_id,
        chair_id=opening.chair_id,
        start=offer.start_at.astimezone(tz),
        end=offer.end_at.astimezone(tz),
        duration_minutes=int((offer.end_at - offer.start_at).total_seconds() // 60),
        status=cast(OfferStatus, offer.status),
        offered_at=offer.offered_at.astimezone(tz),
        hold_until=offer.hold_until.astimezone(tz),
        answered_at=offer.answered_at.astimezone(tz) if offer.answered_at else None,
        appointment_id=offer.appointment_id,
        opening_start=opening.start_at.astimezone(tz),
        opening_end=opening.end_at.astimezone(tz),
        cause=cast(OpeningCause, opening.cause),
        version=offer.version,
    )


async def _offers(session: Session, found: list[WaitlistOffer]) -> list[OfferOut]:
    parts = await offers.offered(session, found)
    centers = {opening.center_id for opening, _ in parts.values()}
    zones = {c: await center_repository.timezone_of(session, c) for c in sorted(centers, key=str)}
    return [offer_out(o, *parts[o.id], zones[parts[o.id][0].center_id]) for o in found]


@router.get("/waitlist/offers", response_model=Page[OfferOut])
async def list_offers(
    session: Session,
    _: Allowed,
    center_id: uuid.UUID | None = None,
    status: OfferStatus | None = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
) -> Page[OfferOut]:
    """Offers in the order they were made."""
    which = offers.OfferFilter(center_id, status)
    found, nxt = await offers.list_offers(session, which, limit, cursor)
    return Page[OfferOut](items=await _offers(session, found), next_cursor=nxt)


@router.get("/waitlist/figures", response_model=FiguresOut, summary="Waitlist figures")
async def figures(
    session: Session,
    _: Allowed,
    center_id: uuid.UUID,
    from_: Annotated[LocalDate, Query(alias="from", description="the first local day")],
    to: Annotated[LocalDate, Query(description="the last local day")],
) -> FiguresOut:
    """Of the openings starting from..to: how many were offered and filled, the fill rate,
    the median minutes from opening to accept, and the chair hours recovered."""
    found = await waitlist_figures.figures(session, center_id, from_, to)
    return FiguresOut.model_validate(
        {"center_id": center_id, "from_": from_, "to": to, **vars(found)}
    )


async def _offer_reply(session: Session, offer: WaitlistOffer, response: Response) -> OfferOut:
    response.headers["ETag"] = etag(offer.version)
    (out,) = await _offers(session, [offer])
    return out


@router.get("/waitlist/offers/{offer_id}", response_model=OfferOut)
async def get_offer(
    offer_id: uuid.UUID, session: Session, _: Allowed, trail: Audited, response: Response
) -> OfferOut:
    """One waitlist offer: the opening offered, its hold and how it ended."""
    offer = await offers.get_offer(session, offer_id)
    trail.saw(await offers.patient_of(session, offer), offer.id)
    return await _offer_reply(session, offer, response)


@router.post("/waitlist/offers/{offer_id}/accept", response_model=OfferOut)
async def accept_offer(
    offer_id: uuid.UUID, session: Session, caller: Allowed, trail: Audited, response: Response
) -> OfferOut:
    """Book the offer, once: every booking rule holds (a course session is moved into it). 409
    once answered, after its hold, or when the booking rules refuse it now."""
    offer = await offers.get_offer(session, offer_id)
    trail.saw(await offers.patient_of(session, offer), offer.id)
    offer = await backfill.accept(session, offer_id, caller.user_id)
    return await _offer_reply(session, offer, response)


@router.post("/waitlist/offers/{offer_id}/decline", response_model=OfferOut)
async def decline_offer(
    offer_id: uuid.UUID, session: Session, caller: Allowed, trail: Audited, response: Response
) -> OfferOut:
    """The patient does not want it: the opening is offered to the next entry. 409 once
    answered or after its hold."""
    offer = await offers.get_offer(session, offer_id)
    trail.saw(await offers.patient_of(session, offer), offer.id)
    offer = await offers.decline(session, offer_id, caller.user_id)
    return await _offer_reply(session, offer, response)


@router.get("/waitlist/{entry_id}", response_model=WaitlistOut)
async def get_entry(
    entry_id: uuid.UUID, session: Session, _: Allowed, trail: Audited, response: Response
) -> WaitlistOut:
    """One waitlist entry, with its ETag for a later change."""
    entry = await waitlist.get_entry(session, entry_id)
    trail.saw(entry.patient_id, entry.id)
    return await _reply(session, entry, response)


@router.patch("/waitlist/{entry_id}", response_model=WaitlistOut)
async def update_entry(
    entry_id: uuid.UUID,
    data: WaitlistUpdate,
    version: IfMatch,
    session: Session,
    _: Allowed,
    trail: Audited,
    response: Response,
) -> WaitlistOut:
    """Change a waiting entry's window, priority or note, or remove it (`status: removed`,
    final). If-Match; 409 once it is booked or removed."""
    entry = await waitlist.get_entry(session, entry_id)
    trail.saw(entry.patient_id, entry.id)
    ensure_version(entry.version, version, "waitlist entry")
    entry = await waitlist.update_entry(session, entry, data)
    return await _reply(session, entry, response)
