"""The optimiser's grid as read from a center's rules (scheduling/levelling/schedule.py), pure:
a visit occupies exactly the slots it touches; an open slot lies inside opening hours; a
slot's nurses are the fewest on duty at any moment of it, so a plan on the grid never asks more
of the nurses than the rules allow."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from scheduling.centers.rules import CenterCalendar, Shift, WeeklyHours, day_rules
from scheduling.levelling.schedule import SLOT, grid_of, slots_spanned
from scheduling.localtime import lenient_instant

NY = ZoneInfo("America/New_York")
DAY = date(2027, 1, 11)  # a Monday, no clock change
MIDNIGHT = lenient_instant(DAY, time(0), NY)


def at(minutes: int) -> datetime:
    return MIDNIGHT + timedelta(minutes=minutes)


@given(st.integers(0, 23 * 60), st.integers(1, 60 * 10))
def test_a_visit_occupies_the_slots_it_touches(start_minute: int, length: int) -> None:
    start, end = at(start_minute), at(min(start_minute + length, 24 * 60))
    first, count = slots_spanned(start, end, NY)
    lo, hi = at(first * 15), at((first + count) * 15)
    assert lo <= start < lo + SLOT  # the first slot holds the start
    assert hi - SLOT < end <= hi  # the last slot holds the end
    assert count >= 1


@st.composite
def calendars(draw: st.DrawFn) -> CenterCalendar:
    opens = draw(st.integers(5 * 60, 10 * 60))
    closes = draw(st.integers(opens + 60, 22 * 60))
    shifts = []
    for _ in range(draw(st.integers(0, 4))):
        a = draw(st.integers(opens - 60, closes))
        b = draw(st.integers(a + 1, min(a + 10 * 60, 24 * 60 - 1)))
        shifts.append(
            Shift(
                DAY.weekday(),
                time(a // 60, a % 60),
                time(b // 60, b % 60),
                draw(st.integers(1, 5)),
            )
        )
    return CenterCalendar(
        tz=NY,
        patients_per_nurse=4,
        opening_hours={
            DAY.weekday(): WeeklyHours(
                time(opens // 60, opens % 60), time(closes // 60, closes % 60)
            )
        },
        shifts=shifts,
    )


@given(calendars())
def test_open_slots_lie_inside_opening_hours_and_nurses_are_the_fewest_on_duty(
    calendar: CenterCalendar,
) -> None:
    rules = day_rules(calendar, DAY)
    grid = grid_of(rules, NY)
    assert rules.opens_at is not None and rules.closes_at is not None
    assert len(grid.nurses) == grid.closes - grid.opens
    for k in range(grid.opens, grid.closes):
        slot_start = at(k * 15)
        assert rules.opens_at <= slot_start and slot_start + SLOT <= rules.closes_at
        # Every minute of the slot has at least the slot's nurses, and some moment exactly.
        on_duty = [rules.nurses_at(slot_start + timedelta(minutes=m)) for m in range(15)]
        assert min(on_duty) == grid.nurses_in(k)
    # No whole slot inside the opening hours is left out.
    assert at((grid.opens - 1) * 15) < rules.opens_at
    assert at((grid.closes + 1) * 15) > rules.closes_at


def test_a_closed_day_has_no_open_slot() -> None:
    calendar = CenterCalendar(tz=NY, patients_per_nurse=4, opening_hours={}, shifts=[])
    grid = grid_of(day_rules(calendar, DAY), NY)
    assert grid.closes == grid.opens
