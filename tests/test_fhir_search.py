"""FHIR R4 search parameters read the FHIR way (app.fhir): dates with prefixes and precision,
formats, handling, ids. Pure functions, property-tested."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app import fhir

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)

instants = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2032, 12, 31), timezones=st.just(BERLIN)
)
lengths = st.integers(min_value=1, max_value=60 * 24 * 3).map(lambda m: timedelta(minutes=m))
offsets = st.integers(min_value=-14 * 4, max_value=14 * 4).map(
    lambda q: timezone(timedelta(minutes=15 * q))
)


def written(moment: datetime, precision: int, zoned: bool = True) -> str:
    """`moment` as a FHIR search value: 0 year, 1 month, 2 day, 3 minute, 4 second, 5 ms."""
    if precision <= 2:
        return moment.strftime(("%Y", "%Y-%m", "%Y-%m-%d")[precision])
    text = moment.strftime(("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S")[min(precision, 4) - 3])
    if precision == 5:
        text += f".{moment.microsecond // 1000:03d}"
    if zoned:
        offset = moment.utcoffset() or timedelta()
        minutes = int(offset.total_seconds() // 60)
        sign = "-" if minutes < 0 else "+"
        text += "Z" if minutes == 0 else f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    return text


values = st.builds(
    written,
    st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2032, 12, 31), timezones=offsets
    ),
    st.integers(min_value=0, max_value=5),
    st.booleans(),
)


def holds(prefix: str, value: str, start: datetime, end: datetime) -> bool:
    (test,) = fhir.date_tests([prefix + value], NOW)
    return test.holds(start, end)


def by_the_words(prefix: str, search: set[int], target: set[int], top: int) -> bool:
    """FHIR R4's sentences for each prefix (search.html#prefix), over sets of minutes."""
    low, high = min(search), max(search) + 1
    above, below = set(range(high, top)), set(range(0, low))
    contains, overlaps = target <= search, bool(search & target)
    return {
        "eq": contains,
        "ne": not contains,
        "gt": bool(above & target),
        "lt": bool(below & target),
        "ge": bool(above & target) or contains,
        "le": bool(below & target) or contains,
        "sa": not overlaps and target <= above,
        "eb": not overlaps and target <= below,
        "ap": overlaps,
    }[prefix]


minutes = st.integers(min_value=0, max_value=8)


@settings(max_examples=3000)  # cheap; edges meeting need many draws
@given(st.sampled_from(fhir.PREFIXES), minutes, minutes, minutes, minutes)
def test_each_prefix_says_what_fhir_says_for_ranges(
    prefix: str, low: int, width: int, start: int, length: int
) -> None:
    """Small whole minutes, so that the edges meet as often as they part."""
    base = datetime(2026, 12, 11, 9, 0)
    search = set(range(low, low + width + 1))
    target = set(range(start, start + length + 1))
    got = fhir.matches(
        prefix,
        base + timedelta(minutes=low),
        base + timedelta(minutes=low + width + 1),
        base + timedelta(minutes=start),
        base + timedelta(minutes=start + length + 1),
    )
    assert got == by_the_words(prefix, search, target, top=40), (search, target)


@given(values, instants, lengths)
def test_eq_and_ne_partition_every_appointment(
    value: str, start: datetime, length: timedelta
) -> None:
    assert holds("eq", value, start, start + length) != holds("ne", value, start, start + length)
    # No prefix means eq.
    assert holds("", value, start, start + length) == holds("eq", value, start, start + length)


@given(values, instants, lengths)
def test_ge_and_lt_cover_everything_and_overlap_only_on_periods_across_the_whole_range(
    value: str, start: datetime, length: timedelta
) -> None:
    end = start + length
    _, low, high = fhir.date_range(value)
    if low.tzinfo is None:
        start_, end_ = start.replace(tzinfo=None), end.replace(tzinfo=None)
    else:
        start_, end_ = start, end
    ge, lt = holds("ge", value, start, end), holds("lt", value, start, end)
    assert ge or lt
    assert (ge and lt) == (start_ < low and end_ > high)
    gt, le = holds("gt", value, start, end), holds("le", value, start, end)
    assert gt or le
    assert (gt and le) == (start_ < low and end_ > high)


@given(values, instants, lengths)
def test_sa_and_eb_are_the_strict_sides(value: str, start: datetime, length: timedelta) -> None:
    end = start + length
    sa, eb = holds("sa", value, start, end), holds("eb", value, start, end)
    assert not (sa and eb)
    if sa:
        assert holds("gt", value, start, end) and holds("ne", value, start, end)
        assert not holds("lt", value, start, end) and not holds("eq", value, start, end)
    if eb:
        assert holds("lt", value, start, end) and holds("ne", value, start, end)
        assert not holds("gt", value, start, end)
    if holds("eq", value, start, end):
        assert holds("ap", value, start, end) and holds("ge", value, start, end)
        assert holds("le", value, start, end) and not sa and not eb


@given(instants, lengths, st.integers(min_value=0, max_value=5), st.booleans())
def test_a_coarser_value_contains_what_a_finer_one_does(
    start: datetime, length: timedelta, finest: int, zoned: bool
) -> None:
    end = start + length
    for fine in range(finest, 0, -1):
        if holds("eq", written(start, fine, zoned), start, end):
            assert holds("eq", written(start, fine - 1, zoned), start, end), (fine, zoned)
        if holds("ne", written(start, fine - 1, zoned), start, end):
            assert holds("ne", written(start, fine, zoned), start, end)


@given(instants, lengths, offsets, st.integers(min_value=3, max_value=5))
def test_a_zoned_value_is_an_instant_whatever_its_offset(
    start: datetime, length: timedelta, offset: timezone, precision: int
) -> None:
    moment = start.replace(microsecond=(start.microsecond // 1000) * 1000)
    here, there = written(moment, precision), written(moment.astimezone(offset), precision)
    for prefix in fhir.PREFIXES:
        assert holds(prefix, here, start, start + length) == holds(
            prefix, there, start, start + length
        )


@given(instants, st.integers(min_value=0, max_value=5))
def test_each_precision_is_the_range_it_names(moment: datetime, precision: int) -> None:
    _, low, high = fhir.date_range(written(moment, precision))
    assert low < high
    assert low <= (moment.replace(tzinfo=None) if low.tzinfo is None else moment) < high


def test_ranges_and_what_fhirpy_sends() -> None:
    berlin = datetime(2026, 12, 11, 0, 30, tzinfo=BERLIN)  # 23:30 UTC the day before
    visit = (berlin, berlin + timedelta(hours=2))
    (test,) = fhir.date_tests(["ge2026-12-11T00:00:00Z"], NOW)
    assert test.low == datetime(2026, 12, 11, tzinfo=UTC)
    assert test.high == test.low + timedelta(seconds=1)
    assert test.holds(*visit)  # it ends after the instant: ge holds
    assert not fhir.date_tests(["sa2026-12-11T00:00:00Z"], NOW)[0].holds(*visit)
    # Without a zone: the center's local date.
    assert fhir.date_tests(["eq2026-12-11"], NOW)[0].holds(*visit)
    assert not fhir.date_tests(["eq2026-12-10"], NOW)[0].holds(*visit)
    assert fhir.date_range("2026") == (
        "eq",
        datetime(2026, 1, 1),
        datetime(2027, 1, 1),
    )
    assert fhir.date_range("le2026-12")[1:] == (datetime(2026, 12, 1), datetime(2027, 1, 1))
    _, low, high = fhir.date_range("2026-12-11T09:00:00.25+01:00")
    assert high - low == timedelta(milliseconds=10) and low.utcoffset() == timedelta(hours=1)
    # An unencoded '+' reaches us as a space.
    assert fhir.date_range("2026-12-11T09:00 01:00") == fhir.date_range("2026-12-11T09:00+01:00")


def test_ap_is_a_day_near_now_and_a_tenth_of_the_distance_further_out() -> None:
    (near,) = fhir.date_tests(["ap2026-12-03"], NOW)
    assert (near.low, near.high) == (datetime(2026, 12, 2), datetime(2026, 12, 5))
    (far,) = fhir.date_tests(["ap2036-12-01T20:00:00Z"], NOW)
    # Ten years out: a year (a tenth of the distance) either side.
    assert timedelta(days=2 * 365) < far.high - far.low < timedelta(days=2 * 367)
    assert far.low < datetime(2036, 1, 1, tzinfo=UTC) and far.high > datetime(
        2037, 11, 1, tzinfo=UTC
    )


@pytest.mark.parametrize(
    "value",
    [
        "yesterday",
        "2026-13",
        "2026-02-30",
        "2026-12-11T25:00Z",
        "2026-12-11T09:00+24:00",
        "2026-12-11T09",
        "xx2026",
        "2026-12-11T09:00:00.1234567890Z",
        "",
    ],
)
def test_what_is_not_a_fhir_date_is_refused(value: str) -> None:
    with pytest.raises(fhir.BadSearch):
        fhir.date_tests([value], NOW)


def test_formats_accept_and_handling() -> None:
    assert fhir.speaks_json(None, None)
    for accept in ("*/*", "application/json", "application/fhir+json", "text/html, */*;q=0.8"):
        assert fhir.speaks_json(accept, None), accept
    for accept in ("application/fhir+xml", "application/xml, text/xml", "*/*;q=0"):
        assert not fhir.speaks_json(accept, None), accept
    for format_ in ("json", "application/json", "application/fhir+json", "application/fhir json"):
        assert fhir.speaks_json("application/fhir+xml", format_), format_
    for format_ in ("xml", "application/fhir+xml", "ttl", "html"):
        assert not fhir.speaks_json(None, format_), format_
    assert fhir.strict("handling=strict")
    assert fhir.strict("return=minimal, handling=strict")
    assert not fhir.strict("handling=lenient") and not fhir.strict(None)


def test_ids_and_totals() -> None:
    one, two = uuid.uuid4(), uuid.uuid4()
    assert fhir.ids([f"{one},{two}"]) == {one, two}
    assert fhir.ids([f"{one},{two}", str(two)]) == {two}  # repeated: AND
    assert fhir.ids(["not-ours"]) == set()  # a FHIR id, just none of ours
    assert fhir.ids([]) is None
    for bad in ("Appointment/x", "", "a b"):
        with pytest.raises(fhir.BadSearch):
            fhir.ids([bad])
    assert fhir.totals(None, None, None) == (True, True)
    assert fhir.totals("count", None, None) == (False, True)
    assert fhir.totals(None, "none", None) == (True, False)
    assert fhir.totals(None, None, "count") == (True, True)
    with pytest.raises(fhir.BadSearch):
        fhir.totals("text", None, None)


@given(st.integers(min_value=100, max_value=599), st.text(max_size=50))
def test_every_status_has_an_issue_type(status: int, diagnostics: str) -> None:
    outcome = fhir.operation_outcome(status, diagnostics)
    (issue,) = outcome["issue"]
    assert issue["code"] and issue["severity"] in ("fatal", "error")
    assert issue["diagnostics"] == diagnostics
