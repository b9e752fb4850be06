"""Offering an opening to the waitlist, one entry at a time. Flushes; never commits.

An open opening is offered to the best-ranked waiting entry it fits (`rank.ranked`) that has
no open offer and was not offered this opening before, at the first start on the day's
15-minute grid where the entry's duration fits what is still free of it and the booking rules
(chair, patient, both nurse rules) allow it now. The offer holds the opening for the patient
for the center's `offer_hold_same_day_minutes` when the opening is on the center's local
today, else `offer_hold_minutes`, and never past the opening's start. Declined, expired or
withdrawn, the opening goes to the next entry; once its start has passed it lapses.

Accepting books it (`backfill.accept`): the hold is checked, and the offer claimed, by one
conditional UPDATE, so of two accepts at once exactly one goes on; the partial unique indexes
keep one open offer per opening and per entry, and one accepted offer per opening."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core import settle
from core.clock import today, utcnow
from core.outbox import events
from core.pagination import page
from core.problems import Conflict, IllegalTransition, NotFound, Problem
from core.repository import get_or_404
from scheduling.appointments import repository as appointment_repository
from scheduling.appointments.models import Appointment
from scheduling.appointments.placement import check_day
from scheduling.centers.models import Center, Chair
from scheduling.localtime import local_date, zone
from scheduling.waitlist import gaps, rank, repository
from scheduling.waitlist.models import WaitlistEntry, WaitlistOffer, WaitlistOpening
from scheduling.waitlist.openings import ChairDay, chair_day, free_now


async def get_offer(session: AsyncSession, offer_id: uuid.UUID) -> WaitlistOffer:
    return await get_or_404(session, WaitlistOffer, offer_id, "waitlist offer")


@dataclass(frozen=True)
class OfferFilter:
    center_id: uuid.UUID | None = None
    status: str | None = None


async def list_offers(
    session: AsyncSession, which: OfferFilter, limit: int, cursor: str | None
) -> tuple[list[WaitlistOffer], str | None]:
    """Offers in the order they were made."""
    query = select(WaitlistOffer)
    if which.center_id is not None:
        query = query.join(WaitlistOpening, WaitlistOpening.id == WaitlistOffer.opening_id).where(
            WaitlistOpening.center_id == which.center_id
        )
    if which.status is not None:
        query = query.where(WaitlistOffer.status == which.status)
    return await page(session, query, [WaitlistOffer.offered_at, WaitlistOffer.id], limit, cursor)


async def offered(
    session: AsyncSession, offers: list[WaitlistOffer]
) -> dict[uuid.UUID, tuple[WaitlistOpening, WaitlistEntry]]:
    """Each offer's opening and entry, for the replies."""
    openings = {
        o.id: o
        for o in await session.scalars(
            select(WaitlistOpening).where(WaitlistOpening.id.in_({f.opening_id for f in offers}))
        )
    }
    entries = {
        e.id: e
        for e in await session.scalars(
            select(WaitlistEntry).where(WaitlistEntry.id.in_({f.entry_id for f in offers}))
        )
    }
    return {f.id: (openings[f.opening_id], entries[f.entry_id]) for f in offers}


async def patient_of(session: AsyncSession, offer: WaitlistOffer) -> uuid.UUID:
    patient_id = await session.scalar(
        select(WaitlistEntry.patient_id).where(WaitlistEntry.id == offer.entry_id)
    )
    assert patient_id is not None
    return patient_id


def hold_until(center: Center, opening: WaitlistOpening, now: datetime) -> datetime:
    """How long an offer of the opening holds it: the same-day hold on the center's local
    today, else the usual one; never past the opening's start."""
    tz = zone(center.timezone)
    same_day = local_date(opening.start_at, tz) == today(tz)
    minutes = center.offer_hold_same_day_minutes if same_day else center.offer_hold_minutes
    return min(now + timedelta(minutes=minutes), opening.start_at)


def _close(opening: WaitlistOpening, status: str) -> None:
    opening.status, opening.closed_at = status, utcnow()


async def offer_next(session: AsyncSession, opening: WaitlistOpening) -> WaitlistOffer | None:
    """Offer the opening to the next entry it fits, if it is open and not on offer already;
    lapse it once its start has passed or nothing of it is free any more."""
    if opening.status != "open" or await _open_offer(session, opening.id) is not None:
        return None
    now = utcnow()
    if opening.start_at <= now:
        _close(opening, "lapsed")
        await session.flush()
        return None
    day = await chair_day(session, opening.chair_id, opening.start_at)
    parts = await free_now(session, day, opening.start_at, opening.end_at, besides=opening.id)
    if not parts:  # booked meanwhile by other means, blocked, or the center closed that day
        _close(opening, "lapsed")
        await session.flush()
        return None
    center = await session.get(Center, opening.center_id)
    chair = await session.get(Chair, opening.chair_id)
    assert center is not None and chair is not None
    for entry in await _candidates(session, opening, day, parts, chair.kind):
        span = await _place(session, day, parts, entry)
        if span is None:
            continue
        offer = WaitlistOffer(
            id=uuid.uuid4(),
            opening_id=opening.id,
            entry_id=entry.id,
            start_at=span[0],
            end_at=span[1],
            status="open",
            offered_at=now,
            hold_until=hold_until(center, opening, now),
        )
        try:
            async with session.begin_nested():  # a refused offer leaves with the savepoint
                session.add(offer)
                await session.flush()
        except IntegrityError:
            # The entry was offered another opening meanwhile (or this one went on offer).
            if await _open_offer(session, opening.id) is not None:
                return None
            continue
        await events.emit(
            session,
            "waitlist.offer",
            offer_id=offer.id,
            opening_id=opening.id,
            entry_id=entry.id,
            patient_id=entry.patient_id,
            center_id=opening.center_id,
            chair_id=opening.chair_id,
            start=offer.start_at,
            end=offer.end_at,
            hold_until=offer.hold_until,
        )
        return offer
    return None


async def _open_offer(session: AsyncSession, opening_id: uuid.UUID) -> uuid.UUID | None:
    return await session.scalar(
        select(WaitlistOffer.id).where(
            WaitlistOffer.opening_id == opening_id, WaitlistOffer.status == "open"
        )
    )


async def _candidates(
    session: AsyncSession,
    opening: WaitlistOpening,
    day: ChairDay,
    parts: list[gaps.Part],
    chair_kind: str,
) -> list[WaitlistEntry]:
    """The waiting entries the opening fits, best first: none already holding an offer, none
    offered this opening before."""
    longest = max(int(p.length.total_seconds() // 60) for p in parts)
    local = parts[0].start.astimezone(zone(day.place.timezone))
    what = rank.Opening(opening.center_id, local.date(), local.time(), longest, chair_kind)
    return await repository.fitting(session, what, offering=opening.id)


async def _place(
    session: AsyncSession, day: ChairDay, parts: list[gaps.Part], entry: WaitlistEntry
) -> tuple[datetime, datetime] | None:
    """The first grid start in the free parts where the entry's visit keeps every booking rule
    now, or None. A course session to be brought forward does not count against itself; one
    already at or before the opening would not come sooner."""
    moving: Appointment | None = None
    if entry.appointment_id is not None:
        moving = await session.get(Appointment, entry.appointment_id)
        if moving is None or moving.status != "booked" or moving.start_at <= parts[0].start:
            return None
    minutes = moving_minutes(moving) if moving is not None else entry.duration_minutes
    assert day.rules.opens_at is not None
    spans = [s for s in day.spans if moving is None or s.id != moving.id]
    for part in parts:
        for start in gaps.grid_starts(part, minutes, day.rules.opens_at):
            end = start + timedelta(minutes=minutes)
            busy = await appointment_repository.patient_overlaps(
                session, entry.patient_id, start, end, moving.id if moving else None
            )
            try:
                check_day(day.rules, spans, day.place.chair_id, start, end, busy)
            except Problem:
                continue
            return start, end
    return None


def moving_minutes(appt: Appointment) -> int:
    return int((appt.end_at - appt.start_at).total_seconds() // 60)


async def claim(
    session: AsyncSession, offer_id: uuid.UUID, status: str, actor_id: uuid.UUID | None
) -> WaitlistOffer:
    """Answer an open offer whose hold has not passed: one conditional UPDATE, so of answers at
    once exactly one goes on. 404 for no such offer; 409 once answered, or after the hold."""
    now = utcnow()
    claimed = await session.execute(
        update(WaitlistOffer)
        .where(
            WaitlistOffer.id == offer_id,
            WaitlistOffer.status == "open",
            WaitlistOffer.hold_until > now,
        )
        .values(
            status=status,
            answered_at=now,
            answered_by=actor_id,
            version=WaitlistOffer.version + 1,
        )
        .execution_options(synchronize_session=False)
    )
    offer = await session.scalar(
        select(WaitlistOffer)
        .where(WaitlistOffer.id == offer_id)
        .execution_options(populate_existing=True)
    )
    if offer is None:
        raise NotFound("no such waitlist offer")
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        if offer.status == "open":
            raise Conflict("the offer's hold has passed")
        raise IllegalTransition(f"the offer is {offer.status} already")
    return offer


@settle.use_case
async def decline(
    session: AsyncSession, offer_id: uuid.UUID, actor_id: uuid.UUID | None
) -> WaitlistOffer:
    """The patient does not want it: the opening goes to the next entry."""
    offer = await claim(session, offer_id, "declined", actor_id)
    opening = await session.get(WaitlistOpening, offer.opening_id)
    assert opening is not None
    await offer_next(session, opening)
    return offer


async def withdraw_for(session: AsyncSession, entry: WaitlistEntry) -> None:
    """An entry taken off the list: its open offer is withdrawn, its opening offered on."""
    offer = await session.scalar(
        select(WaitlistOffer).where(
            WaitlistOffer.entry_id == entry.id, WaitlistOffer.status == "open"
        )
    )
    if offer is None:
        return
    offer.status, offer.answered_at = "withdrawn", utcnow()
    await session.flush()
    opening = await session.get(WaitlistOpening, offer.opening_id)
    assert opening is not None
    await offer_next(session, opening)


async def expire(session: AsyncSession, offer_id: uuid.UUID) -> bool:
    """An open offer whose hold has passed expires (False when it was answered meanwhile); its
    opening goes to the next entry."""
    now = utcnow()
    result = await session.execute(
        update(WaitlistOffer)
        .where(
            WaitlistOffer.id == offer_id,
            WaitlistOffer.status == "open",
            WaitlistOffer.hold_until <= now,
        )
        .values(status="expired", answered_at=now, version=WaitlistOffer.version + 1)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    opening_id = await session.scalar(
        select(WaitlistOffer.opening_id).where(WaitlistOffer.id == offer_id)
    )
    opening = await session.get(WaitlistOpening, opening_id)
    assert opening is not None
    await offer_next(session, opening)
    return True
