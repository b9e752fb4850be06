"""A center's days as the optimiser sees them: read from the schedule, on its 15-minute grid.

What may move (`movable`): a booked course session, not pinned by a person, not placed outside
its window on purpose, in a chair of its course's kind, on a day at least the center's
`no_move_days` from today. Each may go to the days of the range that are
- inside its clinical window (`scheduling.courses.windows.session_window`), and keep the next
  session of its course inside that one's window (a maintenance session's window runs from
  its predecessor): moving one session never pushes another out of its window;
- inside the valid period of the authorization paying for it, when one does;
- free of the patient's visits at other centers.
A course moves at most one session in a proposal (its first movable one in the range): the
windows above are read from the others as they stand. Everything else at the center in the
range stays where it is and still counts: other visits, checked-in and started ones, pinned
ones, later sessions of a course. A chair out of service at any time in the range keeps its
visits and takes no new one.

The grid: slot k of a day is [k x 15, k x 15 + 15) minutes of local wall time; a day is open
from the first whole slot after it opens to the last whole slot before it closes, and a slot's
nurses are the fewest on duty at any moment of it. A visit that does not lie on the grid
occupies every slot it touches. Applying re-checks every booking rule on the real times, so
the grid only ever makes a plan more careful than the rules.

`fingerprint` is what each day looked like when read (its appointments' ids, versions and
statuses, the center's and chairs' versions, chair blocks): a proposal is only applied to the
days it was made for.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.problems import Invalid
from scheduling import cover
from scheduling.appointments.center_days import CenterDays
from scheduling.appointments.models import ACTIVE_STATUSES, CHAIR_HOLDING_STATUSES, Appointment
from scheduling.centers import repository as center_repository
from scheduling.centers.models import Center, ChairBlock
from scheduling.centers.models import Chair as ChairRow
from scheduling.centers.rules import DayRules
from scheduling.courses.models import Course
from scheduling.courses.recurrence import Window
from scheduling.courses.sessions import (
    Context,
    follows_its_first_day,
    load_context,
    local_day,
    today_at,
    window_after,
)
from scheduling.courses.windows import course_order, in_course_order, session_window
from scheduling.localtime import day_bounds, lenient_instant, zone
from scheduling.optimiser import SLOT_MINUTES, Chair, DayGrid, Placement, Problem, Session

SLOT = timedelta(minutes=SLOT_MINUTES)
OUT_OF_SERVICE = "out of service"  # the kind of a chair no session may take
MAX_DAYS = 14  # a proposal covers at most two weeks: the solver's time goes a long way there


@dataclass
class Schedule:
    center: Center
    days: list[date]  # the problem's days; a day's index is its index here
    problem: Problem
    appointments: dict[uuid.UUID, Appointment]  # every visit in the problem, by id
    movable: set[uuid.UUID] = field(default_factory=set)
    fingerprint: dict[str, str] = field(default_factory=dict)

    @property
    def tz(self) -> ZoneInfo:
        return zone(self.center.timezone)

    def instant(self, day: int, slot: int) -> datetime:
        minutes = slot * SLOT_MINUTES
        return lenient_instant(self.days[day], time(minutes // 60, minutes % 60), self.tz)


def slot_of(instant: datetime, tz: ZoneInfo) -> int:
    """The slot holding `instant` (local wall time)."""
    local = instant.astimezone(tz)
    return (local.hour * 60 + local.minute) // SLOT_MINUTES


def slots_spanned(start: datetime, end: datetime, tz: ZoneInfo) -> tuple[int, int]:
    """(first slot, how many) of every slot [start, end) touches."""
    first = slot_of(start, tz)
    local_end = end.astimezone(tz)
    end_minutes = local_end.hour * 60 + local_end.minute + (local_end.second > 0)
    if local_end.date() > start.astimezone(tz).date():
        end_minutes += 24 * 60
    return first, max(1, math.ceil(end_minutes / SLOT_MINUTES) - first)


def grid_of(rules: DayRules, tz: ZoneInfo) -> DayGrid:
    """The day's open slots and the nurses on duty in each (the fewest at any moment)."""
    if rules.closed_reason is not None or rules.opens_at is None or rules.closes_at is None:
        return DayGrid(0, 0, ())
    opens = math.ceil(_minutes(rules.opens_at, tz) / SLOT_MINUTES)
    closes = _minutes(rules.closes_at, tz) // SLOT_MINUTES
    nurses = []
    boundaries = rules.boundaries()
    for k in range(opens, max(opens, closes)):
        minutes = k * SLOT_MINUTES
        a = lenient_instant(rules.day, time(minutes // 60, minutes % 60), tz)
        moments = [a, *(b for b in boundaries if a < b < a + SLOT)]
        nurses.append(min(rules.nurses_at(t) for t in moments))
    return DayGrid(opens, max(opens, closes), tuple(nurses))


def _minutes(instant: datetime, tz: ZoneInfo) -> int:
    local = instant.astimezone(tz)
    return local.hour * 60 + local.minute


def days_to_plan(center: Center, first: date, last: date) -> list[date]:
    """The days of [first, last] the optimiser may change: from `no_move_days` after today."""
    if last < first:
        raise Invalid("to: before from")
    if (last - first).days >= MAX_DAYS:
        raise Invalid(f"to: a proposal covers at most {MAX_DAYS} days")
    start = max(first, today_at(center) + timedelta(days=center.no_move_days))
    if start > last:
        why = (
            f"the center leaves the visits of the next {center.no_move_days} day(s), today "
            "included, where they are"
            if center.no_move_days
            else "those days are past"
        )
        raise Invalid(f"nothing from {first.isoformat()} to {last.isoformat()} may move: {why}")
    return [start + timedelta(days=i) for i in range((last - start).days + 1)]


async def read(
    session: AsyncSession,
    center_id: uuid.UUID,
    first: date,
    last: date,
    only: set[uuid.UUID] | None = None,
) -> Schedule:
    """The center's days from `first` to `last` that may change; `only`: of what may move,
    just these visits (the nightly run re-places what it booked, nothing else)."""
    center = await center_repository.get_center(session, center_id)
    tz = zone(center.timezone)
    days = days_to_plan(center, first, last)
    index = {d: i for i, d in enumerate(days)}
    center_days = CenterDays(center)
    grids = [grid_of(await center_days.rules(session, d), tz) for d in days]
    begin, end = day_bounds(days[0], tz)[0], day_bounds(days[-1], tz)[1]

    chair_rows, blocks, everything = await _read_days(session, center, days)
    blocked = {b.chair_id for b in blocks}
    chairs = [
        Chair(c.id, c.kind if c.active and c.id not in blocked else OUT_OF_SERVICE)
        for c in chair_rows
    ]
    kind_of = {c.id: c.kind for c in chair_rows}

    fingerprint = _fingerprint(center, chair_rows, blocks, everything, days, tz)
    held = [a for a in everything if a.status in CHAIR_HOLDING_STATUSES]

    candidates = _candidates([a for a in held if only is None or a.id in only], kind_of)
    contexts: dict[uuid.UUID, Context] = {}
    courses = {
        c.id: c
        for c in await session.scalars(
            select(Course).where(Course.id.in_({a.course_id for a in candidates.values()}))
        )
    }
    for course_id, course in courses.items():
        contexts[course_id] = await load_context(session, course, center_days)
    paid = await cover.check().paid_periods(session, [a.id for a in candidates.values()])
    elsewhere = await _visits_elsewhere(session, center.id, candidates.values(), begin, end, tz)

    sessions: list[Session] = []
    movable: set[uuid.UUID] = set()
    for appt in held:
        own = index[local_day(appt, center.timezone)]
        first_slot, length = slots_spanned(appt.start_at, appt.end_at, tz)
        current = Placement(own, first_slot, appt.chair_id)
        kind = kind_of.get(appt.chair_id, OUT_OF_SERVICE)
        allowed: set[int] = set()
        target, preferred = own, first_slot
        if appt.course_id in candidates and candidates[appt.course_id].id == appt.id:
            ctx = contexts[appt.course_id]
            window, allowed = await _allowed_days(session, ctx, appt, days)
            if kind != ctx.course.chair_kind:
                allowed = set()  # a person seated it in another kind of chair: theirs to move
            if (period := paid.get(appt.id)) is not None:
                allowed = {i for i in allowed if period[0] <= days[i] <= period[1]}
            allowed -= elsewhere.get(appt.patient_id, set())
            target = index.get(window.target, own)
            preferred = slot_of(lenient_instant(days[own], ctx.course.preferred_start_time, tz), tz)
        if allowed:
            movable.add(appt.id)
        sessions.append(
            Session(
                id=appt.id,
                patient=appt.patient_id,
                duration=length,
                kinds=frozenset({kind}),
                days=frozenset(allowed or {own}),
                target_day=target,
                preferred_start=preferred,
                current=current,
                movable=bool(allowed),
            )
        )
    problem = Problem(
        days=grids,
        chairs=chairs,
        sessions=sessions,
        patients_per_nurse=center.patients_per_nurse,
        turnover_minutes=center.turnover_minutes,
    )
    return Schedule(center, days, problem, {a.id: a for a in held}, movable, fingerprint)


async def _read_days(
    session: AsyncSession, center: Center, days: Sequence[date]
) -> tuple[list[ChairRow], list[ChairBlock], list[Appointment]]:
    """The center's chairs, their blocks and every appointment (any status) on these days."""
    tz = zone(center.timezone)
    begin, end = day_bounds(days[0], tz)[0], day_bounds(days[-1], tz)[1]
    chair_rows = await center_repository.chairs_of(session, center.id)
    blocks = list(
        await session.scalars(
            select(ChairBlock).where(
                ChairBlock.chair_id.in_([c.id for c in chair_rows]),
                ChairBlock.start_at < end,
                ChairBlock.end_at > begin,
            )
        )
    )
    appointments = list(
        await session.scalars(
            select(Appointment)
            .where(
                Appointment.center_id == center.id,
                Appointment.start_at >= begin,
                Appointment.start_at < end,
            )
            .order_by(Appointment.start_at, Appointment.id)
        )
    )
    return chair_rows, blocks, appointments


async def fingerprint_now(
    session: AsyncSession, center_id: uuid.UUID, days: Sequence[date]
) -> dict[str, str]:
    """What these days look like now (to compare with a proposal's `fingerprint`)."""
    center = await center_repository.get_center(session, center_id)
    await session.refresh(center)  # its version as committed, not as first read
    chair_rows, blocks, appointments = await _read_days(session, center, days)
    return _fingerprint(center, chair_rows, blocks, appointments, days, zone(center.timezone))


def _candidates(
    held: Sequence[Appointment], kind_of: dict[uuid.UUID, str]
) -> dict[uuid.UUID, Appointment]:
    """Per course, the first of its sessions in the range that may move."""
    out: dict[uuid.UUID, Appointment] = {}
    for appt in sorted(held, key=course_order):
        if (
            appt.course_id is None
            or appt.status != "booked"
            or appt.pinned
            or appt.outside_window
            or kind_of.get(appt.chair_id) is None
            or appt.course_id in out
        ):
            continue
        out[appt.course_id] = appt
    return out


async def _allowed_days(
    session: AsyncSession, ctx: Context, appt: Appointment, days: list[date]
) -> tuple[Window, set[int]]:
    """The session's window and the day indexes it may go to as far as its course says."""
    window = await session_window(session, ctx, appt)
    course = ctx.course
    allowed = {i for i, d in enumerate(days) if d in window}
    ordered = in_course_order(ctx.sessions)
    later = [a for a in ordered if course_order(a) > course_order(appt)]
    if later:
        nxt = later[0]
        if follows_its_first_day(nxt, appt):
            # A dose's second day is the day after its first: they move together or not at all.
            own = local_day(appt, ctx.center.timezone)
            allowed = {i for i in allowed if days[i] == own}
        elif nxt.phase == "maintenance" and course.interval_days:
            nxt_day = local_day(nxt, ctx.center.timezone)
            allowed = {i for i in allowed if nxt_day in window_after(course, days[i])}
    return window, allowed


async def _visits_elsewhere(
    session: AsyncSession,
    center_id: uuid.UUID,
    appts: Iterable[Appointment],
    begin: datetime,
    end: datetime,
    tz: ZoneInfo,
) -> dict[uuid.UUID, set[int]]:
    """The days (local to this center) on which these patients have visits at other centers."""
    patients = {a.patient_id for a in appts}
    if not patients:
        return {}
    rows = await session.execute(
        select(Appointment.patient_id, Appointment.start_at).where(
            Appointment.patient_id.in_(patients),
            Appointment.center_id != center_id,
            Appointment.status.in_(ACTIVE_STATUSES),
            Appointment.start_at >= begin,
            Appointment.start_at < end,
        )
    )
    first = begin.astimezone(tz).date()
    out: dict[uuid.UUID, set[int]] = {}
    for patient_id, start in rows:
        out.setdefault(patient_id, set()).add((start.astimezone(tz).date() - first).days)
    return out


def _fingerprint(
    center: Center,
    chairs: Sequence[ChairRow],
    blocks: Sequence[ChairBlock],
    appointments: Sequence[Appointment],
    days: Sequence[date],
    tz: ZoneInfo,
) -> dict[str, str]:
    """Per day, a digest of everything a plan for it depends on."""
    common = [f"center {center.version}"]
    common += sorted(f"chair {c.id} {c.version}" for c in chairs)
    per_day: dict[date, list[str]] = {d: [] for d in days}
    for b in blocks:
        for d in days:
            lo, hi = day_bounds(d, tz)
            if b.start_at < hi and b.end_at > lo:
                per_day[d].append(f"block {b.id} {b.start_at.isoformat()} {b.end_at.isoformat()}")
    for a in appointments:
        d = a.start_at.astimezone(tz).date()
        if d in per_day:
            per_day[d].append(f"visit {a.id} {a.version} {a.status}")
    return {
        d.isoformat(): hashlib.sha256("\n".join(common + sorted(rows)).encode()).hexdigest()
        for d, rows in per_day.items()
    }
