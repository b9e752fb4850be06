"""The pharmacy's background jobs."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict

from sqlalchemy import select

from core.db import Database
from core.logs import describe
from pharmacy import drug_check as checks
from scheduling.centers.models import Center

log = logging.getLogger("chairside.jobs")


async def drug_check(
    db: Database, progress: Callable[[int, int], None] | None = None
) -> dict[str, int]:
    """Every center's booked doses over its booking horizon against its stock: a
    `drug_shortfall` alert for each session the stock will not cover, resolved once it is
    covered. One transaction per center: one center's failure is counted, the rest go on."""
    async with db.unit_of_work(write=False) as session:
        centers = list(await session.scalars(select(Center.id).order_by(Center.id)))
    counts = {"centers": 0, "short": 0, "opened": 0, "updated": 0, "resolved": 0, "failed": 0}
    for done, center_id in enumerate(centers, 1):
        try:
            async with db.unit_of_work() as session:
                center = await session.get(Center, center_id)
                outcome = (
                    checks.Outcome()
                    if center is None
                    else await checks.check_center(session, center)
                )
        except Exception as exc:  # one center's failure must not stop the others
            counts["failed"] += 1
            log.warning("drug_check: a center failed", extra={"error": describe(exc)})
        else:
            counts["centers"] += 1
            for what, n in asdict(outcome).items():
                counts[what] += n
        if progress is not None:
            progress(done, len(centers))
    return counts
