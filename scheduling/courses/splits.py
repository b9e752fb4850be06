"""Splitting a dose over more days when one session would hold the chair too long.

Plain functions over plain numbers. Prescribers give a dose that cannot be infused in one
sitting over several consecutive days in equal parts (an induction of 2 g/kg "over 5 days"
is 0.4 g/kg a day); a renal-risk patient at the minimum practicable rate may need more days
than ordered. The rule: the fewest days, from the days ordered up to a limit, over which every
part's session fits the longest a session may last; the parts add up to the dose exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal

GRAMS = Decimal("0.01")  # doses are kept to the centigram (appointments.dose_g)


def equal_parts(total: Decimal, days: int, quantum: Decimal = GRAMS) -> tuple[Decimal, ...]:
    """`total` in `days` parts as equal as `quantum` allows, adding up to `total` exactly: the
    first part takes what is left over (less than `days` quanta), so the later days, which
    a re-plan sizes alike, are all the same."""
    if days < 1:
        raise ValueError("a dose is given over at least one day")
    if total <= 0:
        raise ValueError("the dose must be positive")
    total = total.quantize(quantum)
    part = (total / days).quantize(quantum, rounding=ROUND_DOWN)
    if part <= 0:
        raise ValueError("too small a dose to share over that many days")
    return (total - part * (days - 1), *([part] * (days - 1)))


@dataclass(frozen=True)
class Split:
    ordered_days: int
    days: int | None  # the fewest days every part fits over; None: not even over `most_days`
    most_days: int
    limit_minutes: int  # the longest a session may last
    parts: tuple[Decimal, ...]  # the dose of each day (over `most_days` when none fits)
    minutes: tuple[int, ...]  # each day's chair minutes
    minutes_as_ordered: int  # the longest session over the days ordered

    @property
    def is_split(self) -> bool:
        return self.days is not None and self.days > self.ordered_days

    @property
    def longest(self) -> int:
        return max(self.minutes)


def given_over(
    total: Decimal, days: int, chair_minutes: Callable[[int, Decimal], int]
) -> tuple[tuple[Decimal, ...], tuple[int, ...]]:
    """Each day's dose and chair minutes when `total` is given over `days` equal parts."""
    parts = equal_parts(total, days)
    return parts, tuple(chair_minutes(day, dose) for day, dose in enumerate(parts))


def split_dose(
    total: Decimal,
    ordered_days: int,
    most_days: int,
    limit_minutes: int,
    chair_minutes: Callable[[int, Decimal], int],
) -> Split:
    """Over how many days to give `total`: the fewest from `ordered_days` to `most_days` whose
    every part's session lasts at most `limit_minutes`. `chair_minutes(day, dose)`: the chair
    time of the session on day `day` (0 is the first) giving `dose`."""
    if not 1 <= ordered_days <= most_days:
        raise ValueError("need 1 <= ordered_days <= most_days")
    total = total.quantize(GRAMS)
    # Never more days than the dose has centigrams: every day gives something.
    most_days = max(ordered_days, min(most_days, int(total / GRAMS)))
    parts, minutes = given_over(total, ordered_days, chair_minutes)
    as_ordered = max(minutes)
    for days in range(ordered_days, most_days + 1):
        if days > ordered_days:
            parts, minutes = given_over(total, days, chair_minutes)
        if max(minutes) <= limit_minutes:
            return Split(ordered_days, days, most_days, limit_minutes, parts, minutes, as_ordered)
    return Split(ordered_days, None, most_days, limit_minutes, parts, minutes, as_ordered)
