"""Optimiser proposals: make one for a center's days, read it, apply it. Flushes; never commits.

Proposing reads the schedule (`schedule.read`), solves it in a worker thread (the solver
releases the interpreter; the event loop keeps serving) and stores every move with the
figures before and after. Applying is one transaction: the courses, appointments and days are
locked in the order of `core.locks`, every day must still be as it was proposed (409
otherwise), and each move is a real reschedule (`booking.move_span`: every booking rule,
history, the `appointment.rescheduled` event, a new calendar SEQUENCE). A move into a place
another move of the proposal still occupies waits until that one has gone; a cycle of such
moves (two visits swapping chairs) is broken by lifting one out first and putting it back last.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Hashable
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core import locks, settle
from core.clock import utcnow
from core.db import Database
from core.pagination import page
from core.problems import Conflict, IllegalTransition, Problem, ProposalStale
from core.repository import get_or_404
from scheduling import cover
from scheduling.appointments import booking
from scheduling.appointments.models import Appointment
from scheduling.centers import repository as center_repository
from scheduling.courses.models import Course
from scheduling.levelling import schedule as schedule_
from scheduling.levelling.models import Optimisation
from scheduling.localtime import zone
from scheduling.optimiser import (
    SLOT_MINUTES,
    Placement,
    Plan,
    census,
    figures,
    optimise,
)

SOLVER_WORKERS = 2
log = logging.getLogger("chairside.levelling")


async def get_optimisation(session: AsyncSession, optimisation_id: uuid.UUID) -> Optimisation:
    return await get_or_404(session, Optimisation, optimisation_id, "optimisation")


async def list_optimisations(
    session: AsyncSession, center_id: uuid.UUID | None, limit: int, cursor: str | None
) -> tuple[list[Optimisation], str | None]:
    query = select(Optimisation)
    if center_id is not None:
        query = query.where(Optimisation.center_id == center_id)
    return await page(session, query, [Optimisation.created_at, Optimisation.id], limit, cursor)


async def propose(
    db: Database,
    center_id: uuid.UUID,
    first: date,
    last: date,
    time_limit_seconds: int,
    actor_id: uuid.UUID | None,
) -> uuid.UUID:
    """The optimiser's proposal for the center's days from `first` to `last` (those the center
    lets it change), stored; its id. 422 for a range it may not change or longer than two
    weeks. The schedule is read in one transaction and the proposal stored in another: the
    solver's seconds hold no lock (a write transaction holds SQLite's only one), and the
    fingerprint of what was read is what applying checks against."""
    async with db.unit_of_work(write=False) as reader:
        sched = await schedule_.read(reader, center_id, first, last)
    plan = await asyncio.to_thread(optimise, sched.problem, time_limit_seconds, SOLVER_WORKERS)
    async with db.unit_of_work() as writer:
        proposal = await store(writer, sched, plan, time_limit_seconds, actor_id)
        return proposal.id


NIGHTLY_SECONDS = 10  # per two weeks of days the nightly run booked into


async def place_booked(db: Database, center_id: uuid.UUID, booked: set[uuid.UUID]) -> int:
    """Re-place what the nightly run just booked at a center that asks for it
    (`optimise_nightly`): the optimiser moves only those visits, two weeks of their days at a
    time, each applied in its own transaction. Where it finds no plan in its time, or a day
    changed before the moves could be made, the first-fit places stay. How many moved."""
    async with db.unit_of_work(write=False) as session:
        center = await center_repository.get_center(session, center_id)
        if not center.optimise_nightly or not booked:
            return 0
        tz = zone(center.timezone)
        starts = await session.scalars(
            select(Appointment.start_at).where(Appointment.id.in_(booked))
        )
        days = sorted({s.astimezone(tz).date() for s in starts})
    moved = 0
    while days:
        first = days[0]
        last = max(d for d in days if (d - first).days < schedule_.MAX_DAYS)
        days = [d for d in days if d > last]
        try:
            async with db.unit_of_work(write=False) as reader:
                sched = await schedule_.read(reader, center_id, first, last, only=booked)
            if not sched.movable:
                continue
            plan = await asyncio.to_thread(optimise, sched.problem, NIGHTLY_SECONDS, SOLVER_WORKERS)
            if not plan.feasible:
                continue
            async with db.unit_of_work() as writer:
                proposal = await store(writer, sched, plan, NIGHTLY_SECONDS, None)
                if proposal.moves:
                    await apply(writer, proposal, None)
                moved += len(proposal.moves)
        except Problem as problem:  # nothing in range may move, or a day changed meanwhile
            log.info(
                "nightly optimiser left first fit",
                extra={"center_id": str(center_id), "why": problem.slug},
            )
    return moved


async def store(
    session: AsyncSession,
    sched: schedule_.Schedule,
    plan: Plan,
    time_limit_seconds: int,
    actor_id: uuid.UUID | None,
) -> Optimisation:
    current = {s.id: s.current for s in sched.problem.sessions if s.current is not None}
    after = plan.placements if plan.feasible else current
    proposal = Optimisation(
        id=uuid.uuid4(),
        center_id=sched.center.id,
        first_day=sched.days[0],
        last_day=sched.days[-1],
        status="proposed",
        moves=_moves(sched, current, after),
        figures={
            "before": _summary(sched, current),
            "after": _summary(sched, after),
            "days": _days(sched, current, after),
            "movable_sessions": len(sched.movable),
            "fixed_sessions": len(sched.problem.sessions) - len(sched.movable),
            "feasible": plan.feasible,
        },
        fingerprint=sched.fingerprint,
        lower_bound_peak=plan.peak_bound if plan.feasible else 0,
        optimal=plan.optimal,
        solve_ms=round(plan.seconds * 1000),
        time_limit_seconds=time_limit_seconds,
        created_by=actor_id,
    )
    session.add(proposal)
    await session.flush()
    return proposal


def _moves(
    sched: schedule_.Schedule,
    current: dict[Hashable, Placement],
    after: dict[Hashable, Placement],
) -> list[dict[str, Any]]:
    out = []
    for sid in sorted(sched.movable, key=str):
        was, now = current[sid], after.get(sid)
        if now is None or now == was:
            continue
        appt = sched.appointments[sid]
        to_start = sched.instant(now.day, now.start)
        out.append(
            {
                "appointment_id": str(appt.id),
                "patient_id": str(appt.patient_id),
                "from_start": appt.start_at.isoformat(),
                "from_chair_id": str(appt.chair_id),
                "to_start": to_start.isoformat(),
                "to_end": (to_start + (appt.end_at - appt.start_at)).isoformat(),
                "to_chair_id": str(now.chair),
                "version": appt.version,
            }
        )
    return sorted(out, key=lambda m: (m["to_start"], m["appointment_id"]))


def _summary(sched: schedule_.Schedule, placements: dict[Hashable, Placement]) -> dict[str, Any]:
    peak, most, off, moved = figures(sched.problem, placements)
    last = 0
    for s in sched.problem.sessions:
        if (p := placements.get(s.id)) is not None:
            last = max(last, p.start + s.duration)
    return {
        "peak_census": peak,
        "max_starts_per_30_min": most,
        "off_target_day": off,
        "moves": moved,
        "last_finish": _hhmm(last) if last else None,
    }


def _days(
    sched: schedule_.Schedule,
    current: dict[Hashable, Placement],
    after: dict[Hashable, Placement],
) -> list[dict[str, Any]]:
    """Each day's census per slot before and after, with what the nurses on duty allow."""
    was, now = census(sched.problem, current), census(sched.problem, after)
    out = []
    ppn = sched.problem.patients_per_nurse
    for i, day in enumerate(sched.days):
        grid = sched.problem.days[i]
        slots = range(grid.opens, grid.closes)
        out.append(
            {
                "date": day.isoformat(),
                "opens": _hhmm(grid.opens) if grid.closes > grid.opens else None,
                "slot_minutes": SLOT_MINUTES,
                "before": [was.get((i, t), 0) for t in slots],
                "after": [now.get((i, t), 0) for t in slots],
                "capacity": [grid.nurses_in(t) * ppn for t in slots],
            }
        )
    return out


def _hhmm(slot: int) -> str:
    minutes = slot * SLOT_MINUTES
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


# --- applying ----------------------------------------------------------------------------------


STALE = "the schedule changed since this proposal was made; ask for a new one"


@settle.use_case
async def apply(
    session: AsyncSession, proposal: Optimisation, actor_id: uuid.UUID | None
) -> Optimisation:
    """Make every move of the proposal, or none: 409 when it was applied already, when any of
    its days changed since it was made, or when a move no longer keeps the booking rules or
    would leave a session its authorization paid for unpaid."""
    if proposal.status != "proposed":
        raise IllegalTransition(f"this proposal was {proposal.status} already")
    moves = proposal.moves
    ids = [uuid.UUID(m["appointment_id"]) for m in moves]
    course_ids = sorted(
        c
        for c in await session.scalars(
            select(Appointment.course_id).where(Appointment.id.in_(ids)).distinct()
        )
        if c is not None
    )
    await locks.courses(session, Course, course_ids)
    await locks.course_planning(session, [proposal.center_id])
    appts: dict[uuid.UUID, Appointment] = {}
    for appointment_id in sorted(ids):
        appts[appointment_id] = await booking.get_appointment(
            session, appointment_id, for_update=True
        )
    first, last = proposal.first_day, proposal.last_day
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    for day in days:
        await locks.center_day(session, proposal.center_id, day)
    now = await schedule_.fingerprint_now(session, proposal.center_id, days)
    changed = sorted(d for d, digest in proposal.fingerprint.items() if now.get(d) != digest)
    if changed:
        raise ProposalStale(STALE, changed_days=changed)
    if moves:
        patients = sorted({a.patient_id for a in appts.values()})
        paid_before = await _paid(session, patients, set(ids))
        await _make_moves(session, proposal, appts, actor_id)
        unpaid = set()
        for patient_id in patients:
            unpaid |= set(await cover.check().uncovered(session, patient_id))
        if newly := sorted(paid_before & unpaid, key=str):
            raise Conflict(
                f"insurance would not pay for {len(newly)} moved session(s) after this proposal; "
                "ask for a new one"
            )
        settle.mark(session, settle.COVER, *patients)
    # The proposal is applied once however many ask at the same time: the status changes
    # only from `proposed`, and only one transaction sees it so.
    done = await session.execute(
        update(Optimisation)
        .where(Optimisation.id == proposal.id, Optimisation.status == "proposed")
        .values(status="applied", applied_at=utcnow(), applied_by=actor_id)
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise IllegalTransition("this proposal was applied already")
    await session.refresh(proposal)
    return proposal


async def _paid(
    session: AsyncSession, patients: list[uuid.UUID], moved: set[uuid.UUID]
) -> set[uuid.UUID]:
    """Which of the moved sessions an authorization pays for now (read before the moves)."""
    unpaid: set[uuid.UUID] = set()
    for patient_id in patients:
        unpaid |= set(await cover.check().uncovered(session, patient_id, locked=False))
    return moved - unpaid


async def _make_moves(
    session: AsyncSession,
    proposal: Optimisation,
    appts: dict[uuid.UUID, Appointment],
    actor_id: uuid.UUID | None,
) -> None:
    reason = f"evened out by optimiser proposal {proposal.id}"
    todo = list(proposal.moves)
    for move in todo:
        appt = appts[uuid.UUID(move["appointment_id"])]
        if appt.version != move["version"] or appt.status != "booked":
            raise ProposalStale(STALE, changed_days=[])
    lifted: list[dict[str, Any]] = []
    while todo:
        left: list[dict[str, Any]] = []
        for move in todo:
            if not await _try_move(session, appts, move, actor_id, reason):
                left.append(move)
        if len(left) == len(todo):
            # Each waits for a place another still holds: lift one out until the rest are done.
            lift = left.pop(0)
            appt = appts[uuid.UUID(lift["appointment_id"])]
            appt.status = "cancelled"
            await session.flush()
            lifted.append(lift)
        todo = left
    for move in lifted:
        appt = appts[uuid.UUID(move["appointment_id"])]
        try:
            # Booked again only where it goes: flushed at its old place, it would clash there.
            with session.no_autoflush:
                appt.status = "booked"
                await _move(session, appt, move, actor_id, reason)
        except Problem as problem:
            raise Conflict(f"this proposal no longer fits: {problem.detail}") from problem


async def _try_move(
    session: AsyncSession,
    appts: dict[uuid.UUID, Appointment],
    move: dict[str, Any],
    actor_id: uuid.UUID | None,
    reason: str,
) -> bool:
    appt = appts[uuid.UUID(move["appointment_id"])]
    savepoint = await session.begin_nested()
    try:
        await _move(session, appt, move, actor_id, reason)
    except Problem:
        await savepoint.rollback()
        await session.refresh(appt)
        return False
    await savepoint.commit()
    return True


async def _move(
    session: AsyncSession,
    appt: Appointment,
    move: dict[str, Any],
    actor_id: uuid.UUID | None,
    reason: str,
) -> None:
    place = await center_repository.chair_at_center(session, uuid.UUID(move["to_chair_id"]))
    start = datetime.fromisoformat(move["to_start"])
    end = datetime.fromisoformat(move["to_end"])
    await booking.move_span(session, appt, place, start, end, actor_id, reason)
