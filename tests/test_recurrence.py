"""Window placement and induction days, with property tests."""

from __future__ import annotations

from datetime import date, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduling.courses.recurrence import (
    InductionImpossible,
    days_by_preference,
    induction_days,
    maintenance_window,
)
from scheduling.localtime import AmbiguousLocalTime, NonexistentLocalTime, strict_instant

regimens = st.tuples(st.integers(1, 30), st.integers(0, 20), st.integers(0, 20)).map(
    lambda t: (t[0], t[0] + t[1], t[0] + t[1] + t[2])  # window_min <= interval <= window_max
)


@given(st.dates(date(2020, 1, 1), date(2040, 12, 31)), regimens, st.sets(st.integers(0, 6)))
def test_every_candidate_lies_inside_its_window(
    previous: date, regimen: tuple[int, int, int], weekdays: set[int]
) -> None:
    window_min, interval, window_max = regimen
    window = maintenance_window(previous, interval, window_min, window_max)
    days = days_by_preference(window, weekdays)
    assert len(days) == window_max - window_min + 1 and len(set(days)) == len(days)
    for day in days:
        assert window_min <= (day - previous).days <= window_max
    preferred = [d for d in days if d.weekday() in weekdays]
    if weekdays and preferred:
        # Preferred weekdays come first, each group ordered by distance to the target.
        assert days[: len(preferred)] == preferred
        gaps = [abs((d - window.target).days) for d in preferred]
        assert gaps == sorted(gaps)


@given(
    st.dates(date(2020, 1, 1), date(2040, 12, 31)),
    regimens,
    st.integers(1, 12),
    st.times().map(lambda t: t.replace(second=0, microsecond=0)),
    st.sampled_from(["America/New_York", "Europe/Paris", "Australia/Sydney"]),
)
def test_a_chain_of_sessions_keeps_its_windows_and_wall_clock_time(
    start: date, regimen: tuple[int, int, int], cycles: int, wall: time, tz_name: str
) -> None:
    """Placing each session at its target: across DST changes and year ends every session is
    inside its window and starts at the same local time (or is refused, never shifted)."""
    tz = ZoneInfo(tz_name)
    window_min, interval, window_max = regimen
    previous = start
    for _ in range(cycles):
        window = maintenance_window(previous, interval, window_min, window_max)
        day = days_by_preference(window, set())[0]
        assert day == window.target and day in window
        try:
            instant = strict_instant(day, wall, tz)
        except (NonexistentLocalTime, AmbiguousLocalTime):
            previous = day
            continue
        local = instant.astimezone(tz)
        assert (local.date(), local.time()) == (day, wall)
        previous = day


def test_windows_refuse_impossible_regimens() -> None:
    with pytest.raises(ValueError):
        maintenance_window(date(2027, 1, 1), 21, 28, 42)  # window_min above the interval
    with pytest.raises(ValueError):
        maintenance_window(date(2027, 1, 1), 28, 21, 14)


def test_induction_days_are_consecutive_open_days() -> None:
    closed = {date(2027, 1, 16), date(2027, 1, 17)}  # a weekend

    def is_open(d: date) -> bool:
        return d not in closed

    assert induction_days(date(2027, 1, 11), 5, is_open, skip_closed=False) == [
        date(2027, 1, 11) + timedelta(days=i) for i in range(5)
    ]
    with pytest.raises(InductionImpossible, match="does not allow"):
        induction_days(date(2027, 1, 14), 5, is_open, skip_closed=False)
    assert induction_days(date(2027, 1, 14), 5, is_open, skip_closed=True) == [
        date(2027, 1, 14),
        date(2027, 1, 15),
        date(2027, 1, 18),
        date(2027, 1, 19),
        date(2027, 1, 20),
    ]
    # Starting on a closed day simply starts on the next open one.
    assert induction_days(date(2027, 1, 16), 2, is_open, skip_closed=False)[0] == date(2027, 1, 18)
    with pytest.raises(ValueError):
        induction_days(date(2027, 1, 11), 6, is_open, skip_closed=True)
