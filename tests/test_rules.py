"""Pure booking rules, checked against brute force over generated days."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from scheduling.appointments.availability import OpenSlot, best_slots
from scheduling.appointments.center_days import Day
from scheduling.appointments.rules import next_status, span_problem
from scheduling.centers.rules import (
    CenterCalendar,
    DayLoad,
    Shift,
    Span,
    WeeklyHours,
    census_conflicts,
    day_rules,
    holding_chairs,
    opening_problem,
    start_conflicts,
)
from scheduling.localtime import (
    AmbiguousLocalTime,
    NonexistentLocalTime,
    UnknownTimeZone,
    day_bounds,
    strict_instant,
    zone,
)

NY = ZoneInfo("America/New_York")
DAY = date(2027, 1, 12)
MIN = timedelta(minutes=1)
CHAIRS = [uuid.UUID(int=n) for n in range(1, 4)]


def calendar(shifts: list[tuple[int, int, int]], ppn: int) -> CenterCalendar:
    return CenterCalendar(
        tz=NY,
        patients_per_nurse=ppn,
        opening_hours={DAY.weekday(): WeeklyHours(time(6), time(20))},
        shifts=[Shift(DAY.weekday(), time(a), time(b), n) for a, b, n in shifts],
    )


def local(minutes: int) -> datetime:
    return datetime.combine(DAY, time(6), tzinfo=NY).astimezone(UTC) + timedelta(minutes=minutes)


spans_st = st.lists(st.tuples(st.integers(0, 14 * 60 - 30), st.integers(15, 300)), max_size=12)
shifts_st = st.lists(
    st.tuples(st.integers(6, 12), st.integers(13, 20), st.integers(1, 3)), min_size=1, max_size=3
)


def as_spans(raw: list[tuple[int, int]]) -> list[Span]:
    return [Span(uuid.uuid4(), local(s), local(s + d)) for s, d in raw]


@settings(max_examples=300, deadline=None)
@given(spans_st, shifts_st, st.integers(1, 4), st.integers(0, 14 * 60 - 30), st.integers(15, 300))
def test_census_rule_matches_minute_by_minute(
    raw: list[tuple[int, int]], shifts: list[tuple[int, int, int]], ppn: int, s: int, d: int
) -> None:
    rules = day_rules(calendar(shifts, ppn), DAY)
    existing = as_spans(raw)
    start, end = local(s), local(s + d)
    brute_ok = all(
        sum(1 for x in existing if x.start <= t < x.end) + 1 <= rules.capacity_at(t)
        for t in (start + MIN * i for i in range(d))
    )
    assert (census_conflicts(rules, existing, start, end) is None) == brute_ok


@settings(max_examples=300, deadline=None)
@given(spans_st, shifts_st, st.integers(0, 14 * 60 - 30))
# A window opening seconds before a shift ends still counts that shift's nurse.
@example(raw=[(780, 15)], shifts=[(6, 19, 1)], s=809)
def test_start_rule_matches_every_window(
    raw: list[tuple[int, int]], shifts: list[tuple[int, int, int]], s: int
) -> None:
    rules = day_rules(calendar(shifts, 4), DAY)
    existing = as_spans(raw)
    start = local(s)
    starts = [x.start for x in existing] + [start]
    window = timedelta(minutes=30)
    # Every instant t of the day on a 10-second grid (finer than the rule's minutes) whose
    # window [t, t + 30 min) holds the new start, and a nurse is on duty at t.
    brute_ok = True
    t = local(-60)
    while t <= local(15 * 60):
        n = rules.nurses_at(t)
        if t <= start < t + window and 0 < n < sum(1 for x in starts if t <= x < t + window):
            brute_ok = False
            break
        t += timedelta(seconds=10)
    assert (start_conflicts(rules, existing, start) is None) == brute_ok


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 14 * 60 - 30),
            st.integers(15, 300),
            st.sampled_from(CHAIRS),
            st.sampled_from([0, 15, 30]),
            st.booleans(),
        ),
        max_size=16,
    ),
    shifts_st,
    st.integers(1, 4),
    st.sampled_from([0, 15]),
    st.lists(st.tuples(st.integers(-30, 14 * 60), st.integers(1, 300)), min_size=1, max_size=8),
)
# A visit ending where a shift starts, and one starting where the new one ends.
@example(
    raw=[(0, 60, CHAIRS[0], 0, True), (120, 30, CHAIRS[1], 15, True)],
    shifts=[(7, 12, 1)],
    ppn=1,
    turnover=15,
    asked=[(60, 60), (0, 1)],
)
def test_a_days_index_answers_as_the_rules_do(
    raw: list[tuple[int, int, uuid.UUID, int, bool]],
    shifts: list[tuple[int, int, int]],
    ppn: int,
    turnover: int,
    asked: list[tuple[int, int]],
) -> None:
    """The slot search asks `DayLoad` instead of the rules, start after start: it must say
    exactly what they say, for visits given or not, with and without cleaning time."""
    cal = calendar(shifts, ppn)
    cal = CenterCalendar(
        cal.tz, ppn, cal.opening_hours, cal.shifts, turnover=timedelta(minutes=turnover)
    )
    rules = day_rules(cal, DAY)
    spans = [
        Span(uuid.uuid4(), local(s), local(s + d), c, timedelta(minutes=t), active)
        for s, d, c, t, active in raw
    ]
    load = DayLoad(rules, spans)
    for s, d in asked:
        start, end = local(s), local(s + d)
        assert load.census_fits(start, end) == (census_conflicts(rules, spans, start, end) is None)
        assert load.start_fits(start) == (start_conflicts(rules, spans, start) is None)
        held = {x.chair_id for x in holding_chairs(rules, spans, start, end)}
        assert load.chairs_held(start, end) == held


_visit = st.tuples(
    st.integers(0, 14 * 60 - 30),
    st.integers(15, 300),
    st.sampled_from(CHAIRS),
    st.sampled_from([0, 15]),
    st.booleans(),
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(_visit, max_size=12),
    st.lists(st.one_of(_visit, st.integers(0, 11)), max_size=12),
)
def test_a_days_digest_follows_its_visits_as_they_change(
    first: list[tuple[int, int, uuid.UUID, int, bool]],
    changes: list[tuple[int, int, uuid.UUID, int, bool] | int],
) -> None:
    """A booking run tells a day read again under its lock from the copy it planned with by
    their digests: kept up to date through bookings added and taken back, a copy's digest is
    the digest of the same visits read afresh, and any visit more, less or moved shows."""

    def span(v: tuple[int, int, uuid.UUID, int, bool]) -> Span:
        s, d, c, t, active = v
        return Span(uuid.uuid4(), local(s), local(s + d), c, timedelta(minutes=t), active)

    rules = day_rules(calendar([(7, 19, 2)], 4), DAY)
    day = Day(rules, [span(v) for v in first], [])
    day.digest()  # from here on kept up to date, not worked out again
    for change in changes:
        if isinstance(change, int):
            if day.spans:
                day.remove(day.spans[change % len(day.spans)].id)
        else:
            day.add(span(change))
    assert day.digest() == Day(rules, list(reversed(day.spans)), []).digest()
    if day.spans:
        one = day.spans[0]
        moved = Span(one.id, one.start + timedelta(minutes=15), one.end, one.chair_id, one.turnover)
        assert Day(rules, [moved, *day.spans[1:]], []).digest() != day.digest()
        assert Day(rules, day.spans[1:], []).digest() != day.digest()


def test_conflicts_name_the_appointments_in_the_way() -> None:
    rules = day_rules(calendar([(6, 20, 1)], 2), DAY)
    a, b = Span(uuid.uuid4(), local(60), local(240)), Span(uuid.uuid4(), local(90), local(200))
    assert census_conflicts(rules, [a, b], local(120), local(150)) == [a, b]
    assert start_conflicts(rules, [a], local(75)) == [a]
    assert start_conflicts(rules, [a], local(90)) is None


def test_opening_hours_and_closures() -> None:
    cal = calendar([(6, 20, 1)], 2)
    rules = day_rules(cal, DAY)
    assert opening_problem(rules, local(0), local(60)) is None
    assert opening_problem(rules, local(-15), local(60)) is not None
    assert opening_problem(rules, local(13 * 60), local(14 * 60 + 1)) is not None
    closed = CenterCalendar(cal.tz, 2, cal.opening_hours, cal.shifts, {DAY: "holiday"})
    assert "holiday" in (opening_problem(day_rules(closed, DAY), local(0), local(60)) or "")
    sunday = day_rules(cal, DAY + timedelta(days=5))
    assert "Sunday" in (opening_problem(sunday, local(0), local(60)) or "")


@given(
    st.dates(date(2020, 1, 1), date(2035, 12, 31)),
    st.times(),
    st.sampled_from(
        ["America/New_York", "Europe/Paris", "Australia/Lord_Howe", "Asia/Kolkata", "UTC"]
    ),
)
def test_strict_instant_keeps_the_wall_clock_or_refuses(day: date, wall: time, name: str) -> None:
    tz = zone(name)
    wall = wall.replace(second=0, microsecond=0)
    try:
        instant = strict_instant(day, wall, tz)
    except (NonexistentLocalTime, AmbiguousLocalTime):
        return
    shown = instant.astimezone(tz)
    assert (shown.date(), shown.time()) == (day, wall)


def test_dst_edges_in_new_york() -> None:
    with pytest.raises(NonexistentLocalTime):
        strict_instant(date(2027, 3, 14), time(2, 30), NY)
    with pytest.raises(AmbiguousLocalTime):
        strict_instant(date(2026, 11, 1), time(1, 30), NY)
    assert (
        strict_instant(date(2027, 3, 14), time(3, 0), NY).isoformat() == "2027-03-14T07:00:00+00:00"
    )
    spring, autumn, plain = (
        day_bounds(date(y, m, d), NY) for y, m, d in [(2027, 3, 14), (2026, 11, 1), (2027, 1, 12)]
    )
    assert [b - a for a, b in (spring, autumn, plain)] == [
        timedelta(hours=23),
        timedelta(hours=25),
        timedelta(hours=24),
    ]


@pytest.mark.parametrize(
    "name", ["Mars/Olympus", "", "../etc/passwd", "/etc/localtime", "EST5EDT", "UTC+3"]
)
def test_unknown_time_zones_are_refused(name: str) -> None:
    with pytest.raises(UnknownTimeZone):
        zone(name)


def test_lifecycle_table() -> None:
    assert next_status("booked", "check-in") == "checked_in"
    assert next_status("checked_in", "start") == "in_progress"
    assert next_status("in_progress", "complete") == "completed"
    assert next_status("completed", "cancel") is None
    assert next_status("cancelled", "check-in") is None
    assert next_status("booked", "no-show") == "no_show"


def test_span_problems() -> None:
    s = local(0)
    assert span_problem(s, s) is not None
    assert span_problem(s, s + timedelta(hours=25)) is not None
    assert span_problem(s, s + timedelta(minutes=90, seconds=1)) is not None
    assert span_problem(s, s + timedelta(hours=24)) is None


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 14 * 60 - 30), st.integers(15, 300), st.sampled_from(CHAIRS)),
        max_size=14,
    ),
    shifts_st,
    st.integers(1, 3),
    st.integers(15, 360),
    st.integers(0, 240),
)
def test_a_session_that_fits_nowhere_means_no_longer_one_fits(
    raw: list[tuple[int, int, uuid.UUID]],
    shifts: list[tuple[int, int, int]],
    ppn: int,
    minutes: int,
    longer_by: int,
) -> None:
    """A booking run remembers a day found full for a session length and refuses longer
    sessions there without searching; that is only right if fitting is monotone in length."""
    spans = [Span(uuid.uuid4(), local(s), local(s + d), c) for s, d, c in raw]
    day = Day(day_rules(calendar(shifts, ppn), DAY), spans, [])

    def slots(length: int) -> list[OpenSlot]:
        return best_slots(
            day,
            CHAIRS,
            timedelta(minutes=length),
            minutes_off=lambda s: 0,
            preferred_chair=None,
            accept=lambda s: True,
            limit=1,
            tally=Counter(),
        )

    if not slots(minutes):
        assert not slots(minutes + longer_by)
