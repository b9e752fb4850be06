"""The waitlist's ranking (`scheduling.waitlist.rank`), as properties: what an opening fits,
and the order it would offer it in."""

from __future__ import annotations

import itertools
import random
import uuid
from datetime import UTC, date, datetime, time, timedelta

from hypothesis import given
from hypothesis import strategies as st

from scheduling.waitlist.rank import Entry, Opening, fits, ranked

CENTERS = [uuid.UUID(int=1), uuid.UUID(int=2)]
KINDS = ["chair", "bed", "isolation"]
DAY0 = date(2027, 2, 1)


@st.composite
def entries(draw: st.DrawFn) -> Entry:
    earliest = DAY0 + timedelta(days=draw(st.integers(0, 20)))
    return Entry(
        id=uuid.UUID(int=draw(st.integers(0, 2**64))),
        center_id=draw(st.sampled_from(CENTERS)),
        status=draw(st.sampled_from(["waiting", "waiting", "booked", "removed"])),
        earliest=earliest,
        latest=earliest + timedelta(days=draw(st.integers(0, 20))),
        duration_minutes=draw(st.integers(15, 720)),
        chair_kind=draw(st.sampled_from(KINDS)),
        priority=draw(st.integers(1, 5)),
        created_at=datetime(2027, 1, 1, tzinfo=UTC) + timedelta(minutes=draw(st.integers(0, 50))),
    )


openings = st.builds(
    Opening,
    center_id=st.sampled_from(CENTERS),
    day=st.integers(0, 40).map(lambda d: DAY0 + timedelta(days=d)),
    start=st.just(time(9, 0)),
    duration_minutes=st.integers(15, 720),
    chair_kind=st.sampled_from(KINDS),
)


# Entries are rows: their ids are unique (the tie-break of last resort).
pools = st.lists(entries(), max_size=30, unique_by=lambda e: e.id)


@given(openings, pools)
def test_ranked_is_exactly_the_fitting_entries(opening: Opening, pool: list[Entry]) -> None:
    out = ranked(opening, pool)
    assert sorted(out, key=lambda e: e.id) == sorted(
        (e for e in pool if fits(opening, e)), key=lambda e: e.id
    )
    for e in out:
        assert e.status == "waiting" and e.center_id == opening.center_id
        assert e.earliest <= opening.day <= e.latest
        assert e.duration_minutes <= opening.duration_minutes
        assert e.chair_kind == opening.chair_kind


@given(openings, pools)
def test_ranked_by_priority_then_deadline_then_waiting_then_id(
    opening: Opening, pool: list[Entry]
) -> None:
    out = ranked(opening, pool)
    for a, b in itertools.pairwise(out):
        assert a.priority <= b.priority
        if a.priority == b.priority:
            assert a.latest <= b.latest  # the nearest deadline first
            if a.latest == b.latest:
                assert (a.created_at, a.id) <= (b.created_at, b.id)


@given(openings, pools, st.randoms())
def test_the_order_does_not_depend_on_the_input_order(
    opening: Opening, pool: list[Entry], rnd: random.Random
) -> None:
    shuffled = list(pool)
    rnd.shuffle(shuffled)
    assert ranked(opening, shuffled) == ranked(opening, pool)
