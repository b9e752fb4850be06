"""A center's days as a course planner sees them: each day's rules, active appointments and
chair blocks, read once and then kept up to date with what the planner books itself.

A nightly booking run keeps one for the whole run, so a day that fifty courses look at is
read once, not fifty times. What others book meanwhile is not missed: a booking locks its day
and reads it again before it decides (see `placement.book_planned`), and that fresh read
replaces the day kept here. A course planner rehearses against the days kept, then locks and
reads again all the days it will book on at once (`refresh_all`, see
`courses.booking.book_through`). What others free meanwhile (a cancellation, a move, a block
lifted) bumps the center's openings version (migration 0035): the run reads its days afresh
for the next course (see `scheduling.jobs._Run.book`), so a course is never found stuck on a
day kept from before room was freed.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    CompoundSelect,
    Integer,
    Select,
    String,
    Uuid,
    bindparam,
    literal_column,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import Instant
from scheduling.appointments import repository as appointment_repository
from scheduling.appointments.models import ACTIVE_STATUSES, Appointment
from scheduling.centers import repository as center_repository
from scheduling.centers.models import Center, Chair, ChairBlock, Closure
from scheduling.centers.repository import CenterFacts
from scheduling.centers.rules import CenterCalendar, DayLoad, DayRules, Span, day_rules
from scheduling.localtime import day_bounds, zone

CALENDAR_DAYS = 120  # closures are read this many days at a time


@dataclass(frozen=True)
class Block:
    chair_id: uuid.UUID
    start: datetime
    end: datetime
    reason: str


@dataclass
class Day:
    rules: DayRules
    spans: list[Span]  # the center's active appointments overlapping the day
    blocks: list[Block]  # its chairs' blocks overlapping the day
    idle_chairs: frozenset[uuid.UUID] = frozenset()  # chairs out of service when read
    _load: DayLoad | None = field(default=None, repr=False, compare=False)
    _digest: int | None = field(default=None, repr=False, compare=False)

    @property
    def is_open(self) -> bool:
        return self.rules.closed_reason is None and self.rules.opens_at is not None

    def load(self) -> DayLoad:
        """The day's spans indexed for a slot search, built once per change of them."""
        if self._load is None:
            self._load = DayLoad(self.rules, self.spans)
        return self._load

    def digest(self) -> int:
        """The day's visits as one number, kept as they change (`add`, `remove`): a sum of
        their hashes, so equal days give equal digests and days that differ all but surely
        do not. Cheaper than comparing the visits themselves, which a booking run does for
        every day it locks; a false match could only cost a plan that is no longer the best,
        since every slot is still checked against the day as read (`check_day`)."""
        if self._digest is None:
            self._digest = sum(map(_visit_hash, self.spans)) & _DIGEST_MASK
        return self._digest

    def add(self, span: Span) -> None:
        self.spans.append(span)
        self._load = None
        if self._digest is not None:
            self._digest = (self._digest + _visit_hash(span)) & _DIGEST_MASK

    def remove(self, span_id: uuid.UUID) -> None:
        kept = [s for s in self.spans if s.id != span_id]
        if self._digest is not None:
            gone = sum(_visit_hash(s) for s in self.spans if s.id == span_id)
            self._digest = (self._digest - gone) & _DIGEST_MASK
        self.spans[:] = kept
        self._load = None


_DIGEST_MASK = (1 << 64) - 1


def _visit_hash(s: Span) -> int:
    # A plain tuple, hashed in C (a dataclass's hash is Python's); the id as its integer.
    return hash((s.id.int, s.start, s.end, s.chair_id, s.turnover, s.active))


# Days' active appointments, chair blocks, closures and chairs out of service in one round
# trip: a booking reads its days again under their locks, so this runs once per course (or
# session) booked, and what it reads is what the booking decides on. Each row says which of
# the days asked for it is (`n`; -1 for the chairs out of service).
_NO_MINUTES = literal_column("0", Integer)
_NO_TIME = literal_column("NULL", Instant)
_NO_CHAIR = literal_column("NULL", Uuid)
_ALL_DAYS = literal_column("-1", Integer)
_CLEANING: dict[int, timedelta] = {}  # turnover minutes as read, made into durations once


def _visits(n: int) -> Select[int, str, uuid.UUID, datetime, datetime, uuid.UUID, str, int]:
    """The visits holding a chair on day `n`, their status as `what`: the active ones, and
    those given (no nurse's load any more, but their chair is cleaned after them)."""
    return select(
        literal_column(str(n), Integer).label("n"),
        Appointment.status.label("what"),
        Appointment.id,
        Appointment.start_at,
        Appointment.end_at,
        Appointment.chair_id,
        literal_column("''", String).label("reason"),
        Appointment.turnover_minutes,
    ).where(
        Appointment.center_id == bindparam("center_id"),
        appointment_repository.HOLDS_CHAIR,
        Appointment.start_at < bindparam(f"end_{n}"),
        Appointment.end_at > bindparam(f"start_{n}"),
        # Implied (no visit lasts more than a day): keeps the scan to the day, not the
        # center's history before it.
        Appointment.start_at > bindparam(f"since_{n}"),
    )


def _one_day(n: int) -> list[Select[Any]]:
    blocks = (
        select(
            literal_column(str(n), Integer),
            literal_column("'block'", String),
            ChairBlock.id,
            ChairBlock.start_at,
            ChairBlock.end_at,
            ChairBlock.chair_id,
            ChairBlock.reason,
            _NO_MINUTES,
        )
        .join(Chair, Chair.id == ChairBlock.chair_id)
        .where(
            Chair.center_id == bindparam("center_id"),
            ChairBlock.start_at < bindparam(f"end_{n}"),
            ChairBlock.end_at > bindparam(f"start_{n}"),
        )
    )
    closure = select(
        literal_column(str(n), Integer),
        literal_column("'closure'", String),
        Closure.id,
        _NO_TIME,
        _NO_TIME,
        _NO_CHAIR,
        Closure.reason,
        _NO_MINUTES,
    ).where(Closure.center_id == bindparam("center_id"), Closure.date == bindparam(f"day_{n}"))
    return [_visits(n), blocks, closure]


_IDLE_CHAIRS = select(
    _ALL_DAYS,
    literal_column("'idle chair'", String),
    Chair.id,
    _NO_TIME,
    _NO_TIME,
    Chair.id,
    literal_column("''", String),
    _NO_MINUTES,
).where(Chair.center_id == bindparam("center_id"), Chair.active.is_(False))


@functools.cache
def _days_query(count: int) -> CompoundSelect[Any]:
    """The statement reading `count` days (built once per count: a course books a handful)."""
    return union_all(*(q for n in range(count) for q in _one_day(n)), _IDLE_CHAIRS)


DaySeen = tuple[DayRules, int, int, frozenset[Block], frozenset[uuid.UUID]]


@dataclass
class CenterDays:
    center: Center
    _days: dict[date, Day] = field(default_factory=dict)
    _calendar: CenterCalendar | None = None
    _calendar_span: tuple[date, date] | None = None
    _chairs: dict[str | None, list[uuid.UUID]] = field(default_factory=dict)
    # Per day and chair kind, the shortest session found to fit nowhere, and why. A longer one
    # cannot fit either (it overlaps more, and has fewer starts), so a full day is searched
    # once per run, not once per course that tries it.
    _full: dict[tuple[date, str | None], tuple[timedelta, str]] = field(default_factory=dict)

    @property
    def facts(self) -> CenterFacts:
        return CenterFacts.of(self.center)

    def bounds(self, day: date) -> tuple[datetime, datetime]:
        return day_bounds(day, zone(self.center.timezone))

    async def chairs(self, session: AsyncSession, kind: str | None) -> list[uuid.UUID]:
        """The center's chairs of the kind (all kinds for None), in label order. Whether one
        is in service is the day's to say (`Day.idle_chairs`): it is read again with the day."""
        if kind not in self._chairs:
            chairs = await center_repository.chairs_of(session, self.center.id, kind)
            self._chairs[kind] = [c.id for c in chairs]
        return self._chairs[kind]

    async def calendar(self, session: AsyncSession, first: date, last: date) -> CenterCalendar:
        """The center's calendar covering at least `first` to `last`."""
        span = self._calendar_span
        if self._calendar is None or span is None or first < span[0] or last > span[1]:
            last = max(last, first + timedelta(days=CALENDAR_DAYS))
            self._calendar = await center_repository.center_calendar(
                session, self.facts, first, last
            )
            self._calendar_span = (first, last)
        return self._calendar

    async def rules(self, session: AsyncSession, day: date) -> DayRules:
        return day_rules(await self.calendar(session, day, day), day)

    async def day(self, session: AsyncSession, day: date) -> Day:
        if day not in self._days:
            await self._read_open(session, [day])
        return self._days[day]

    async def refresh(self, session: AsyncSession, day: date) -> Day:
        """Read the day again: the caller holds its lock, so this is the truth until commit."""
        await self.refresh_all(session, [day])
        return self._days[day]

    async def refresh_all(self, session: AsyncSession, days: list[date]) -> None:
        """Read these days again, in one statement: the caller holds their locks, so this is
        the truth until commit."""
        for day in days:
            self._days.pop(day, None)
            self._forget_full(day)  # others may have cancelled meanwhile
        await self._read_open(session, days)

    async def _read_open(self, session: AsyncSession, days: list[date]) -> None:
        """Keep these days: the open ones as read now, the closed ones from the calendar."""
        calendar = await self.calendar(session, min(days), max(days))
        wanted: dict[date, DayRules] = {}
        for day in days:
            rules = day_rules(calendar, day)
            if rules.closed_reason is None and rules.opens_at is not None:
                wanted[day] = rules
            else:
                self._days[day] = Day(rules, [], [])
        if wanted:
            await self._read(session, wanted)

    def seen(self, day: date) -> DaySeen | None:
        """What the day kept holds, to tell whether a read finds it changed (None: not kept)."""
        kept = self._days.get(day)
        if kept is None:
            return None
        return (
            kept.rules,
            kept.digest(),
            len(kept.spans),
            frozenset(kept.blocks),
            kept.idle_chairs,
        )

    def no_room(self, day: date, kind: str | None, duration: timedelta) -> str | None:
        """Why no session of `duration` fits on the day in a chair of the kind, if known."""
        full = self._full.get((day, kind))
        return full[1] if full is not None and duration >= full[0] else None

    def full(self, day: date, kind: str | None, duration: timedelta, reason: str) -> None:
        """No session of `duration` fits anywhere on the day in a chair of the kind, whoever
        the patient."""
        known = self._full.get((day, kind))
        if known is None or duration < known[0]:
            self._full[(day, kind)] = (duration, reason)

    def _forget_full(self, day: date) -> None:
        for key in [k for k in self._full if k[0] == day]:
            del self._full[key]

    async def _read(self, session: AsyncSession, wanted: dict[date, DayRules]) -> None:
        """Read the open days of `wanted` (with their rules from the calendar) in one
        statement, and keep them."""
        days = list(wanted)
        params: dict[str, Any] = {"center_id": self.center.id}
        for n, day in enumerate(days):
            params[f"start_{n}"], params[f"end_{n}"] = self.bounds(day)
            params[f"since_{n}"] = appointment_repository.since(params[f"start_{n}"])
            params[f"day_{n}"] = day
        read = {day: Day(rules, [], []) for day, rules in wanted.items()}
        idle: set[uuid.UUID] = set()
        rows = await session.execute(_days_query(len(days)), params)
        cleaning = _CLEANING
        for n, what, id_, start, end, chair_id, reason, turnover in rows:
            if n < 0:  # a chair out of service
                idle.add(id_)
                continue
            found = read[days[n]]
            if what == "block":
                found.blocks.append(Block(chair_id, start, end, reason))
            elif what == "closure":  # closed since the run read its calendar
                found.rules = replace(found.rules, closed_reason=reason)
            else:  # a visit, by its status
                if turnover not in cleaning:
                    cleaning[turnover] = timedelta(minutes=turnover)
                active = what in ACTIVE_STATUSES
                found.spans.append(Span(id_, start, end, chair_id, cleaning[turnover], active))
        for day, kept in read.items():
            kept.idle_chairs = frozenset(idle)
            self._days[day] = kept

    def booked(self, day: date, span: Span) -> None:
        """The planner booked `span` on `day` itself."""
        if day in self._days:
            self._days[day].add(span)

    def unbooked(self, day: date, appointment_id: uuid.UUID) -> None:
        """A booking of the planner's own was rolled back."""
        if day in self._days:
            self._days[day].remove(appointment_id)
        self._forget_full(day)


@dataclass
class PatientSpans:
    """A patient's active appointments (in any center) between `first` and `last`."""

    patient_id: uuid.UUID
    first: datetime
    last: datetime
    spans: list[Span] = field(default_factory=list)

    @classmethod
    async def load(
        cls, session: AsyncSession, patient_id: uuid.UUID, first: datetime, last: datetime
    ) -> PatientSpans:
        spans = cls(patient_id, first, last)
        await spans.reload(session)
        return spans

    async def reload(self, session: AsyncSession) -> None:
        self.spans = await appointment_repository.patient_spans(
            session, self.patient_id, self.first, self.last
        )
