"""The waitlist's background job, every minute: offers whose hold has passed expire and their
openings go to the next entry; open openings not on offer (nobody fitted them, or the entries
came later) are offered again, and lapse once their start has passed. One transaction per
offer and per opening: one's failure is counted, the rest go on. Idempotent."""

from __future__ import annotations

import logging

from sqlalchemy import exists, select

from core.clock import utcnow
from core.db import Database
from core.logs import describe
from scheduling.waitlist import offers
from scheduling.waitlist.models import WaitlistOffer, WaitlistOpening

log = logging.getLogger("chairside.jobs")


async def offer_openings(db: Database) -> dict[str, int]:
    counts = {"expired": 0, "offered": 0, "lapsed": 0, "failed": 0}
    async with db.unit_of_work(write=False) as session:
        held = list(
            await session.scalars(
                select(WaitlistOffer.id)
                .where(WaitlistOffer.status == "open", WaitlistOffer.hold_until <= utcnow())
                .order_by(WaitlistOffer.hold_until, WaitlistOffer.id)
            )
        )
    for offer_id in held:
        try:
            async with db.unit_of_work() as session:
                if await offers.expire(session, offer_id):
                    counts["expired"] += 1
        except Exception as exc:  # one offer's failure must not stop the others
            counts["failed"] += 1
            log.warning("waitlist: an offer failed to expire", extra={"error": describe(exc)})
    on_offer = exists().where(
        WaitlistOffer.opening_id == WaitlistOpening.id, WaitlistOffer.status == "open"
    )
    async with db.unit_of_work(write=False) as session:
        idle = list(
            await session.scalars(
                select(WaitlistOpening.id)
                .where(WaitlistOpening.status == "open", ~on_offer)
                .order_by(WaitlistOpening.start_at, WaitlistOpening.id)
            )
        )
    for opening_id in idle:
        try:
            async with db.unit_of_work() as session:
                opening = await session.get(WaitlistOpening, opening_id)
                if opening is None:
                    continue
                if await offers.offer_next(session, opening) is not None:
                    counts["offered"] += 1
                elif opening.status == "lapsed":
                    counts["lapsed"] += 1
        except Exception as exc:
            counts["failed"] += 1
            log.warning("waitlist: an opening failed to be offered", extra={"error": describe(exc)})
    return counts
