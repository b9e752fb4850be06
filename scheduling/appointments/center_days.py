"""A center's days as a course planner sees them: each day's rules, active appointments and
chair blocks, read once and then kept up to date with what the planner books itself.

A nightly booking run keeps one for the whole run, so a day that fifty courses look at is
read once, not fifty times. What others book meanwhile is not missed: a booking locks its day
and reads it again before it decides (see `booking.book_planned`), and that fresh read
replaces the day kept here. What others cancel meanwhile on a day the run found full is seen
by the next run.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Integer, Select, String, Uuid, bindparam, literal_column, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import Instant
from scheduling.appointments import repository as appointment_repository
from scheduling.appointments.models import Appointment
from scheduling.centers import repository as center_repository
from scheduling.centers.models import Center, Chair, ChairBlock, Closure
from scheduling.centers.repository import CenterFacts
from scheduling.centers.rules import CenterCalendar, DayRules, Span, day_rules
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

    @property
    def is_open(self) -> bool:
        return self.rules.closed_reason is None and self.rules.opens_at is not None


# A day's active appointments, chair blocks, closure and chairs out of service in one round
# trip: a booking reads its day again under the day's lock, so this runs once per session
# booked, and what it reads is what the booking decides on.
_NO_MINUTES = literal_column("0", Integer)


def _visits(
    what: str, status: Any
) -> Select[str, uuid.UUID, datetime, datetime, uuid.UUID, str, int]:
    return select(
        literal_column(f"'{what}'", String).label("what"),
        Appointment.id,
        Appointment.start_at,
        Appointment.end_at,
        Appointment.chair_id,
        literal_column("''", String).label("reason"),
        Appointment.turnover_minutes,
    ).where(
        Appointment.center_id == bindparam("center_id"),
        status,
        Appointment.start_at < bindparam("end"),
        Appointment.end_at > bindparam("start"),
    )


_APPOINTMENTS = _visits("appointment", appointment_repository.IS_ACTIVE)
# Visits already given: no nurse's load any more, but their chair is cleaned after them.
_GIVEN = _visits("given", Appointment.status == literal_column("'completed'"))
_BLOCKS = (
    select(
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
        ChairBlock.start_at < bindparam("end"),
        ChairBlock.end_at > bindparam("start"),
    )
)
_NO_TIME = literal_column("NULL", Instant)
_NO_CHAIR = literal_column("NULL", Uuid)
_CLOSURE = select(
    literal_column("'closure'", String),
    Closure.id,
    _NO_TIME,
    _NO_TIME,
    _NO_CHAIR,
    Closure.reason,
    _NO_MINUTES,
).where(Closure.center_id == bindparam("center_id"), Closure.date == bindparam("day"))
_IDLE_CHAIRS = select(
    literal_column("'idle chair'", String),
    Chair.id,
    _NO_TIME,
    _NO_TIME,
    Chair.id,
    literal_column("''", String),
    _NO_MINUTES,
).where(Chair.center_id == bindparam("center_id"), Chair.active.is_(False))
_DAY = union_all(_APPOINTMENTS, _GIVEN, _BLOCKS, _CLOSURE, _IDLE_CHAIRS)


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
            rules = await self.rules(session, day)
            if rules.closed_reason is None and rules.opens_at is not None:
                self._days[day] = await self._read(session, day, rules)
            else:
                self._days[day] = Day(rules, [], [])
        return self._days[day]

    async def refresh(self, session: AsyncSession, day: date) -> Day:
        """Read the day again: the caller holds its lock, so this is the truth until commit."""
        self._days.pop(day, None)
        self._forget_full(day)  # others may have cancelled meanwhile
        return await self.day(session, day)

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

    async def _read(self, session: AsyncSession, day: date, rules: DayRules) -> Day:
        first, last = self.bounds(day)
        params = {"center_id": self.center.id, "start": first, "end": last, "day": day}
        spans: list[Span] = []
        blocks: list[Block] = []
        idle: set[uuid.UUID] = set()
        rows = await session.execute(_DAY, params)
        for what, id_, start, end, chair_id, reason, turnover in rows:
            if what in ("appointment", "given"):
                cleaning = timedelta(minutes=turnover)
                spans.append(Span(id_, start, end, chair_id, cleaning, what == "appointment"))
            elif what == "block":
                blocks.append(Block(chair_id, start, end, reason))
            elif what == "closure":  # closed since the run read its calendar
                rules = replace(rules, closed_reason=reason)
            else:
                idle.add(id_)
        return Day(rules, spans, blocks, frozenset(idle))

    def booked(self, day: date, span: Span) -> None:
        """The planner booked `span` on `day` itself."""
        if day in self._days:
            self._days[day].spans.append(span)

    def unbooked(self, day: date, appointment_id: uuid.UUID) -> None:
        """A booking of the planner's own was rolled back."""
        if day in self._days:
            spans = self._days[day].spans
            spans[:] = [s for s in spans if s.id != appointment_id]
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
