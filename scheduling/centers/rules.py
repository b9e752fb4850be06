"""Booking rules as plain functions: opening hours, closures, nurse capacity.

Everything here works on one local day of one center, described by `DayRules`, and on plain
spans; no session, no clock. Times are instants (aware, UTC).

Nurse rules (docs/domain.md):
- census: at every instant, active appointments <= nurses on duty x patients per nurse;
- starts: for every instant t, appointments starting in [t, t + 30 min) <= nurses on duty at t.
  Appointments start on whole minutes and shifts change on whole minutes, so checking every
  whole minute t, with the nurses on duty at t and just before it, is exact. Instants
  with no nurse on duty are left to the census rule, which already refuses any patient there;
  otherwise a 08:00 start would be refused because nobody is on duty at 07:45.
"""

from __future__ import annotations

import bisect
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from scheduling.localtime import lenient_instant

START_WINDOW = timedelta(minutes=30)
GRID = timedelta(minutes=15)


@dataclass(frozen=True)
class WeeklyHours:
    opens: time
    closes: time


@dataclass(frozen=True)
class Shift:
    weekday: int
    start: time
    end: time
    nurses: int


@dataclass(frozen=True)
class CenterCalendar:
    """What a center's configuration says about time, as plain values."""

    tz: ZoneInfo
    patients_per_nurse: int
    opening_hours: Mapping[int, WeeklyHours]
    shifts: Sequence[Shift]
    closures: Mapping[date, str] = field(default_factory=dict)
    turnover: timedelta = timedelta(0)  # a chair's cleaning after each patient


@dataclass(frozen=True)
class StaffedSpan:
    start: datetime
    end: datetime
    nurses: int


@dataclass(frozen=True)
class DayRules:
    day: date
    opens_at: datetime | None
    closes_at: datetime | None
    closed_reason: str | None
    staffing: tuple[StaffedSpan, ...]
    patients_per_nurse: int
    turnover: timedelta = timedelta(0)  # a chair's cleaning after each patient

    def nurses_at(self, t: datetime) -> int:
        return sum(s.nurses for s in self.staffing if s.start <= t < s.end)

    def capacity_at(self, t: datetime) -> int:
        return self.nurses_at(t) * self.patients_per_nurse

    def boundaries(self) -> list[datetime]:
        return sorted({b for s in self.staffing for b in (s.start, s.end)})


@dataclass(frozen=True)
class Span:
    """An active appointment, reduced to what the rules need."""

    id: uuid.UUID
    start: datetime
    end: datetime
    chair_id: uuid.UUID | None = None
    turnover: timedelta = timedelta(0)  # the chair's cleaning after it, fixed when booked
    # False for a visit already given: it still holds its chair (and the cleaning after it),
    # but no nurse looks after it any more.
    active: bool = True

    @property
    def chair_free(self) -> datetime:
        return self.end + self.turnover


def day_rules(calendar: CenterCalendar, day: date) -> DayRules:
    hours = calendar.opening_hours.get(day.weekday())
    opens_at = closes_at = None
    if hours is not None:
        opens_at = lenient_instant(day, hours.opens, calendar.tz)
        closes_at = lenient_instant(day, hours.closes, calendar.tz)
    staffing = tuple(
        StaffedSpan(
            lenient_instant(day, s.start, calendar.tz),
            lenient_instant(day, s.end, calendar.tz),
            s.nurses,
        )
        for s in calendar.shifts
        if s.weekday == day.weekday() and s.nurses > 0
    )
    return DayRules(
        day=day,
        opens_at=opens_at,
        closes_at=closes_at,
        closed_reason=calendar.closures.get(day),
        staffing=staffing,
        patients_per_nurse=calendar.patients_per_nurse,
        turnover=calendar.turnover,
    )


def opening_problem(rules: DayRules, start: datetime, end: datetime) -> str | None:
    """Why [start, end) cannot be booked on this day, or None when the center is open."""
    if rules.closed_reason is not None:
        return f"the center is closed on {rules.day.isoformat()} ({rules.closed_reason})"
    if rules.opens_at is None or rules.closes_at is None:
        return f"the center is not open on {rules.day.strftime('%A')}s"
    if start < rules.opens_at or end > rules.closes_at:
        return "the appointment must lie within the day's opening hours"
    return None


def overlapping(spans: Iterable[Span], start: datetime, end: datetime) -> list[Span]:
    return [s for s in spans if s.start < end and s.end > start]


def holding_chairs(
    rules: DayRules, spans: Iterable[Span], start: datetime, end: datetime
) -> list[Span]:
    """The appointments whose chair is not free for a visit over [start, end): each holds its
    chair through its own turnover, and the new visit needs the day's turnover after it."""
    until = end + rules.turnover
    return [s for s in spans if s.start < until and s.chair_free > start]


def census_conflicts(
    rules: DayRules, existing: Sequence[Span], start: datetime, end: datetime
) -> list[Span] | None:
    """The appointments that fill nurse capacity somewhere in [start, end), or None if it fits.

    Census only rises at appointment starts and capacity only changes at shift boundaries, so
    checking those instants inside the new span (and its own start) is exact.
    """
    existing = [s for s in existing if s.active]
    points = {start}
    points.update(s.start for s in existing if start < s.start < end)
    points.update(b for b in rules.boundaries() if start < b < end)
    # Counted, not listed: how many have started by t minus how many have ended by t. The
    # list is built only for the answer, when capacity is full.
    starts = sorted(s.start for s in existing)
    ends = sorted(s.end for s in existing)
    for t in sorted(points):
        present = bisect.bisect_right(starts, t) - bisect.bisect_right(ends, t)
        if present + 1 > rules.capacity_at(t):
            return [s for s in existing if s.start <= t < s.end]
    return None


def start_conflicts(
    rules: DayRules, existing: Sequence[Span], start: datetime
) -> list[Span] | None:
    """The starts that use up the nurses around `start`, or None if one more start fits."""
    ordered = sorted((s for s in existing if s.active), key=lambda s: s.start)
    starts = [s.start for s in ordered]
    minute = timedelta(minutes=1)
    # Quick answer for the common case: even counting every start that any window below can
    # see, one more fits under the fewest nurses on duty anywhere in the span examined.
    # Staffing only changes at shift boundaries, so the fewest is found at those and the ends.
    earliest = start - START_WINDOW
    seen = bisect.bisect_left(starts, start + START_WINDOW) - bisect.bisect_left(
        starts, earliest + minute
    )
    instants = [earliest, start, *(b for b in rules.boundaries() if earliest < b < start)]
    fewest = min(rules.nurses_at(x) for x in instants)
    if fewest > 0 and seen + 1 <= fewest:
        return None
    t = start - START_WINDOW + minute
    while t <= start:
        # Windows starting in (t - 1 min, t] hold the same whole-minute starts, but those
        # starting just before t still see the nurses on duty in the minute before t.
        on_duty = [n for n in (rules.nurses_at(t), rules.nurses_at(t - minute)) if n > 0]
        if on_duty:
            nurses = min(on_duty)
            lo = bisect.bisect_left(starts, t)
            hi = bisect.bisect_left(starts, t + START_WINDOW)
            if hi - lo + 1 > nurses:
                return ordered[lo:hi]
        t += minute
    return None


def grid_starts(rules: DayRules, duration: timedelta) -> list[datetime]:
    """Start times on the 15-minute grid from opening at which `duration` ends by closing."""
    if rules.closed_reason is not None or rules.opens_at is None or rules.closes_at is None:
        return []
    out: list[datetime] = []
    t = rules.opens_at
    while t + duration <= rules.closes_at:
        out.append(t)
        t += GRID
    return out


class DayLoad:
    """A day's appointments indexed once for asking many starts whether one more visit fits:
    the same answers as `census_conflicts`, `start_conflicts` and `holding_chairs` (the
    property tests hold them to it), without sorting the day again for every start. A slot
    search asks dozens of starts of a day that changes only when something is booked on it.
    Build a new one when the day's spans change."""

    def __init__(self, rules: DayRules, spans: Sequence[Span]) -> None:
        self.rules = rules
        active = sorted((s for s in spans if s.active), key=lambda s: s.start)
        self._starts = [s.start for s in active]
        self._ends = sorted(s.end for s in active)
        self._boundaries = rules.boundaries()
        # Headroom (nurse capacity left) is constant between these instants: census only
        # changes at starts and ends, capacity at shift boundaries.
        self._points = sorted({*self._starts, *self._ends, *self._boundaries})
        self._headroom = [self._room_at(t) for t in self._points]
        # Chairs: by start, with when each chair is free again, and the longest hold.
        holds = sorted(spans, key=lambda s: s.start)
        self._hold_starts = [s.start for s in holds]
        self._holds = [(s.chair_free, s.chair_id) for s in holds]
        self._longest_hold = max((s.chair_free - s.start for s in holds), default=timedelta(0))

    def _room_at(self, t: datetime) -> int:
        present = bisect.bisect_right(self._starts, t) - bisect.bisect_right(self._ends, t)
        return self.rules.capacity_at(t) - present

    def census_fits(self, start: datetime, end: datetime) -> bool:
        """One more visit over [start, end) keeps the census rule (`census_conflicts`)."""
        if self._room_at(start) < 1:
            return False
        points, headroom = self._points, self._headroom
        i = bisect.bisect_right(points, start)
        while i < len(points) and points[i] < end:
            if headroom[i] < 1:
                return False
            i += 1
        return True

    def start_fits(self, start: datetime) -> bool:
        """One more start at `start` keeps the start rule (`start_conflicts`)."""
        rules, starts = self.rules, self._starts
        minute = timedelta(minutes=1)
        earliest = start - START_WINDOW
        seen = bisect.bisect_left(starts, start + START_WINDOW) - bisect.bisect_left(
            starts, earliest + minute
        )
        instants = [earliest, start, *(b for b in self._boundaries if earliest < b < start)]
        fewest = min(rules.nurses_at(x) for x in instants)
        if fewest > 0 and seen + 1 <= fewest:
            return True
        t = earliest + minute
        while t <= start:
            on_duty = [n for n in (rules.nurses_at(t), rules.nurses_at(t - minute)) if n > 0]
            if on_duty:
                lo = bisect.bisect_left(starts, t)
                hi = bisect.bisect_left(starts, t + START_WINDOW)
                if hi - lo + 1 > min(on_duty):
                    return False
            t += minute
        return True

    def chairs_held(self, start: datetime, end: datetime) -> set[uuid.UUID | None]:
        """The chairs `holding_chairs` names for a visit over [start, end)."""
        until = end + self.rules.turnover
        lo = bisect.bisect_right(self._hold_starts, start - self._longest_hold)
        hi = bisect.bisect_left(self._hold_starts, until)
        return {chair for free, chair in self._holds[lo:hi] if free > start}
