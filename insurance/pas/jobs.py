"""The inquiry job: pended requests are asked about on a schedule that backs off, and billing
hears of payers past their decision clock."""

from __future__ import annotations

from core.db import Database
from core.problems import Problem
from insurance.pas import service
from insurance.pas.client import Options


async def pas_inquiry(
    db: Database, options: Options, inquiry: service.Inquiry | None = None
) -> dict[str, int]:
    """Ask about every pended request whose next inquiry is due ($inquire), one at a time,
    each in short transactions of its own around the call; then raise or clear the
    `payer_overdue` alerts."""
    async with db.unit_of_work(write=False) as session:
        due = await service.due(session)
    counts = {"due": len(due), "asked": 0, "failed": 0, "skipped": 0}
    for authorization_id in due:
        try:
            counts[await service.follow(db, authorization_id, options, inquiry)] += 1
        except Problem:  # e.g. its payer no longer takes electronic requests: the next one
            counts["failed"] += 1
    async with db.unit_of_work() as session:
        counts.update(await service.overdue(session))
    return counts
