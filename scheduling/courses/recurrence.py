"""Where the sessions of a course fall: induction days and maintenance windows.

Plain functions over local calendar dates. A maintenance session is placed relative to the
previous session's date (its actual date when it happened, else its planned one): inside
[previous + window_min, previous + window_max], preferably on a preferred weekday, then as
close to previous + interval as possible.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import date, timedelta


@dataclass(frozen=True)
class Window:
    earliest: date
    target: date
    latest: date

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.earliest <= day <= self.latest


def maintenance_window(previous: date, interval: int, window_min: int, window_max: int) -> Window:
    if not 0 < window_min <= interval <= window_max:
        raise ValueError("need 0 < window_min <= interval <= window_max")
    return Window(
        previous + timedelta(days=window_min),
        previous + timedelta(days=interval),
        previous + timedelta(days=window_max),
    )


def days_by_preference(window: Window, preferred_weekdays: Collection[int]) -> list[date]:
    """Every day of the window, best first: preferred weekdays, then closest to the target,
    then earlier."""
    days = [
        window.earliest + timedelta(days=i)
        for i in range((window.latest - window.earliest).days + 1)
    ]

    def rank(day: date) -> tuple[bool, int, date]:
        unpreferred = bool(preferred_weekdays) and day.weekday() not in preferred_weekdays
        return (unpreferred, abs((day - window.target).days), day)

    return sorted(days, key=rank)


class InductionImpossible(ValueError):
    pass


def induction_days(
    start: date,
    count: int,
    is_open: Callable[[date], bool],
    skip_closed: bool,
    horizon: int = 14,
    most: int = 5,
) -> list[date]:
    """`count` consecutive open days from `start`, looking at most `horizon` days past them.

    Closed days in between are skipped only when the regimen allows it; otherwise the loading
    course cannot be given as ordered and InductionImpossible says why. An order has 1 to 5
    days; a dose split over more (see `splits.py`) passes its own `most`.
    """
    if not 1 <= count <= most:
        raise ValueError(f"an induction lasts 1 to {most} days")
    days: list[date] = []
    day = start
    while len(days) < count:
        if (day - start).days >= count + horizon:
            raise InductionImpossible(f"the center is not open on {count} days near {start}")
        if is_open(day):
            days.append(day)
        elif days and not skip_closed:
            raise InductionImpossible(
                f"the center is closed on {day.isoformat()}, inside the {count}-day induction, "
                "and this regimen does not allow skipping a day"
            )
        day += timedelta(days=1)
    return days
