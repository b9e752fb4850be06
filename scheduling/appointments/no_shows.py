"""The no-show sweep: after a center closes for the day, booked appointments nobody checked in
become no-shows, and their courses are re-planned. It spans scheduling and insurance (the
cascade, the alerts), so it lives with the other use cases that do, in `app/`."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select

from app import session_changes
from core.clock import utcnow
from core.db import Database
from core.logs import describe
from core.problems import Problem
from scheduling.appointments.models import Appointment
from scheduling.appointments.rules import day_rules
from scheduling.centers import repository as center_repository
from scheduling.centers.models import Center
from scheduling.localtime import day_bounds, zone

log = logging.getLogger("chairside.jobs")


async def _cutoffs(db: Database, now: datetime) -> dict[uuid.UUID, datetime]:
    """Per center, the instant before which a booked appointment was missed: today's closing
    time once it has passed, else the start of today (every earlier day has closed)."""
    cutoffs: dict[uuid.UUID, datetime] = {}
    async with db.unit_of_work(write=False) as session:
        for center in await session.scalars(select(Center)):
            tz = zone(center.timezone)
            today = now.astimezone(tz).date()
            facts = center_repository.CenterFacts.of(center)
            rules = day_rules(
                await center_repository.center_calendar(session, facts, today, today), today
            )
            closes = rules.closes_at
            cutoffs[center.id] = (
                closes if closes is not None and now >= closes else day_bounds(today, tz)[0]
            )
    return cutoffs


async def no_show_sweep(
    db: Database, progress: Callable[[int, int], None] | None = None
) -> dict[str, int]:
    """Mark missed appointments as no-shows, one transaction each (with its course's cascade and
    its patient's alerts). Running it twice marks nothing twice: only `booked` ones change."""
    now = utcnow()
    cutoffs = await _cutoffs(db, now)
    async with db.unit_of_work(write=False) as session:
        missed: list[uuid.UUID] = []
        for center_id, cutoff in cutoffs.items():
            missed += await session.scalars(
                select(Appointment.id)
                .where(
                    Appointment.center_id == center_id,
                    Appointment.status == "booked",
                    Appointment.start_at < cutoff,
                )
                .order_by(Appointment.start_at)
            )
    counts = {"missed": len(missed), "marked": 0, "skipped": 0, "failed": 0}
    for done, appointment_id in enumerate(missed, start=1):
        try:
            async with db.unit_of_work() as session:
                await session_changes.progress(session, appointment_id, "no-show", None, None)
            counts["marked"] += 1
        except Problem:
            counts["skipped"] += 1  # checked in (or cancelled) since the list was read
        except Exception as exc:  # one appointment's failure must not stop the others
            counts["failed"] += 1
            log.warning("no_show_sweep: an appointment failed", extra={"error": describe(exc)})
        if progress is not None:
            progress(done, len(missed))
    return counts
