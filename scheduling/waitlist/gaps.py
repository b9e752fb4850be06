"""What of a freed span on a chair is still free, and where in it a visit would start. Pure:
no database, no clock.

A visit [a, b) on a chair keeps clear of every visit holding the chair: it ends, with the
day's turnover after it, by the other's start (`b + turnover <= start`), or starts once the
other's chair is clean again (`a >= end + its turnover`). So each holding visit rules out
starts and ends in [start - turnover, end + its turnover); a chair block rules out
[start, end). What is left of the freed span, from now on and inside the day's opening hours,
are the free parts; only those of at least `MINIMUM` count as an opening.

A visit offered in a free part starts on the 15-minute grid of the day (counted from its
opening) and lasts its duration."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

MINIMUM = timedelta(minutes=15)
GRID = timedelta(minutes=15)


@dataclass(frozen=True)
class Part:
    start: datetime
    end: datetime

    @property
    def length(self) -> timedelta:
        return self.end - self.start


def subtract(parts: list[Part], start: datetime, end: datetime) -> list[Part]:
    """`parts` without [start, end)."""
    out: list[Part] = []
    for p in parts:
        if end <= p.start or start >= p.end:
            out.append(p)
            continue
        if p.start < start:
            out.append(Part(p.start, start))
        if end < p.end:
            out.append(Part(end, p.end))
    return out


def free_parts(
    start: datetime,
    end: datetime,
    *,
    now: datetime,
    opens_at: datetime,
    closes_at: datetime,
    turnover: timedelta,
    holding: Iterable[tuple[datetime, datetime]],
    blocked: Iterable[tuple[datetime, datetime]],
    minimum: timedelta = MINIMUM,
) -> list[Part]:
    """The parts of [start, end) a visit could use now, in time order, each at least
    `minimum` long. `holding`: (start, chair free again) of the visits holding the chair;
    `blocked`: the chair's blocks (and anything else already spoken for, such as the open
    openings of the chair)."""
    first, last = max(start, now, opens_at), min(end, closes_at)
    if first >= last:
        return []
    parts = [Part(first, last)]
    for s, free_again in holding:
        parts = subtract(parts, s - turnover, free_again)
    for s, e in blocked:
        parts = subtract(parts, s, e)
    return [p for p in sorted(parts, key=lambda p: p.start) if p.length >= minimum]


def grid_starts(part: Part, minutes: int, opens_at: datetime) -> list[datetime]:
    """The starts on the day's 15-minute grid at which `minutes` fit inside `part`."""
    duration = timedelta(minutes=minutes)
    steps = -((opens_at - part.start) // GRID)  # the first grid instant at or after the start
    t = opens_at + steps * GRID
    out: list[datetime] = []
    while t + duration <= part.end:
        out.append(t)
        t += GRID
    return out
