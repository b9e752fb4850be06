"""The drug forecast's pure rule (pharmacy/demand.py): property tests over random bookings and
stocks, and two worked examples."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from pharmacy.demand import (
    Catalog,
    Demand,
    Dose,
    Group,
    Lot,
    Vials,
    demand,
    plan_dose,
    plan_doses,
)

GAMUNEX_C = Catalog((1, 2.5, 5, 10, 20, 40))
GAMMAGARD_LIQUID = Catalog((1, 2.5, 5, 10, 20, 30))
A, B = uuid.UUID(int=1), uuid.UUID(int=2)
CATALOGS = {A: GAMUNEX_C, B: GAMMAGARD_LIQUID}
MONDAY = date(2027, 1, 11)


def mg(grams: float) -> int:
    return round(grams * 1000)


days = st.integers(0, 27).map(lambda n: MONDAY + timedelta(days=n))
products = st.sampled_from([A, B])
# Doses in hundredths of a gram (as appointments keep them), the same few often (as courses do).
doses = st.one_of(
    st.sampled_from([35, 70, 72.5, 140]),
    st.integers(100, 24000).map(lambda h: h / 100),
)
sessions = st.lists(st.builds(Dose, days, products, doses), max_size=40)


@st.composite
def lots(draw: st.DrawFn, ample: bool = False) -> list[Lot]:
    found = []
    for product_id, catalog in CATALOGS.items():
        for size in catalog.vial_sizes_g:
            for n in range(draw(st.integers(0 if not ample else 1, 3))):
                found.append(
                    Lot(
                        product_id,
                        size,
                        10_000 if ample else draw(st.integers(1, 12)),
                        MONDAY
                        + timedelta(days=draw(st.integers(0, 40) if not ample else st.just(60))),
                        f"L{n}",
                    )
                )
    return found


groups = st.sampled_from(["day", "week"])


def planned(booked: list[Dose]) -> Counter[tuple[uuid.UUID, int]]:
    """Vials planned per (product, size in mg), dose by dose without the cache."""
    counts: Counter[tuple[uuid.UUID, int]] = Counter()
    for s in booked:
        for size, n in plan_dose(s.dose_g, CATALOGS[s.product_id]):
            counts[s.product_id, size] += n
    return counts


def drawn(stock: list[Lot], result: Demand) -> Counter[tuple[uuid.UUID, int]]:
    counts: Counter[tuple[uuid.UUID, int]] = Counter()
    for d in result.draws:
        counts[stock[d.lot].product_id, mg(stock[d.lot].vial_size_g)] += d.vials
    return counts


def short(result: Demand) -> Counter[tuple[uuid.UUID, int]]:
    counts: Counter[tuple[uuid.UUID, int]] = Counter()
    for line in result.lines:
        for v in line.shortfall_vials:
            counts[line.product_id, mg(v.vial_size_g)] += v.count
    return counts


@settings(max_examples=300, deadline=None)
@given(sessions, lots(), groups)
def test_grams_and_sessions_add_up_to_the_booked_doses(
    booked: list[Dose], stock: list[Lot], group: Group
) -> None:
    result = demand(booked, stock, CATALOGS, group)
    assert sum(line.sessions for line in result.lines) == len(booked)
    assert sum(mg(line.grams) for line in result.lines) == sum(mg(s.dose_g) for s in booked)
    per_product: dict[uuid.UUID, int] = defaultdict(int)
    for s in booked:
        per_product[s.product_id] += mg(s.dose_g)
    for product_id, total in per_product.items():
        assert sum(mg(x.grams) for x in result.lines if x.product_id == product_id) == total


@settings(max_examples=300, deadline=None)
@given(sessions, lots(), groups)
def test_draws_stay_within_stock_and_before_expiry(
    booked: list[Dose], stock: list[Lot], group: Group
) -> None:
    result = demand(booked, stock, CATALOGS, group)
    per_lot: Counter[int] = Counter()
    for d in result.draws:
        assert d.vials > 0
        assert d.day <= stock[d.lot].expires_on  # its expiry is its last usable day
        per_lot[d.lot] += d.vials
    assert all(per_lot[i] <= lot.vials_on_hand for i, lot in enumerate(stock))


@settings(max_examples=300, deadline=None)
@given(sessions, lots(), groups)
def test_shortfall_and_drawn_make_the_planned_vials(
    booked: list[Dose], stock: list[Lot], group: Group
) -> None:
    result = demand(booked, stock, CATALOGS, group)
    assert drawn(stock, result) + short(result) == planned(booked)
    lines_vials: Counter[tuple[uuid.UUID, int]] = Counter()
    for line in result.lines:
        for v in line.vials:
            lines_vials[line.product_id, mg(v.vial_size_g)] += v.count
    assert lines_vials == planned(booked)
    # The summary carries the whole shortfall, from the first short day on.
    summary: Counter[tuple[uuid.UUID, int]] = Counter()
    for s in result.short:
        for v in s.shortfall_vials:
            summary[s.product_id, mg(v.vial_size_g)] += v.count
    assert summary == short(result)
    for s in result.short:
        short_days = {
            d.day for d in booked if d.product_id == s.product_id
        }  # the first short day is a booked day
        assert s.first_short_on in short_days


@settings(max_examples=200, deadline=None)
@given(sessions, lots(ample=True), groups)
def test_ample_stock_is_never_short(booked: list[Dose], stock: list[Lot], group: Group) -> None:
    result = demand(booked, stock, CATALOGS, group)
    assert result.short == ()
    assert all(line.shortfall_vials == () for line in result.lines)
    assert drawn(stock, result) == planned(booked)


@settings(max_examples=200, deadline=None)
@given(sessions, lots())
def test_weeks_add_up_the_days(booked: list[Dose], stock: list[Lot]) -> None:
    by_day = demand(booked, stock, CATALOGS, "day")
    by_week = demand(booked, stock, CATALOGS, "week")
    assert by_week.short == by_day.short and by_week.draws == by_day.draws
    for week in by_week.lines:
        assert week.date.weekday() == 0
        in_week = [
            x
            for x in by_day.lines
            if x.product_id == week.product_id
            and week.date <= x.date < week.date + timedelta(days=7)
        ]
        assert week.sessions == sum(x.sessions for x in in_week)
        assert mg(week.grams) == sum(mg(x.grams) for x in in_week)
        assert week.on_hand_vials == in_week[0].on_hand_vials  # the week's first booked day


@given(sessions)
def test_each_distinct_dose_is_planned_once(booked: list[Dose]) -> None:
    plans = plan_doses(booked, CATALOGS)
    assert set(plans) == {(s.product_id, mg(s.dose_g)) for s in booked}


def test_a_lot_expiring_mid_range_stops_counting_and_the_shortfall_names_its_day() -> None:
    # 70 g a day of Gamunex-C: 40 + 20 + 10 g vials. Three 40 g vials expire on Tuesday (its
    # last day), two more last the month; 20 g and 10 g vials are ample.
    stock = [
        Lot(A, 40, 2, MONDAY + timedelta(days=30), "LATE"),
        Lot(A, 40, 3, MONDAY + timedelta(days=1), "EARLY"),
        Lot(A, 20, 100, MONDAY + timedelta(days=30), "T"),
        Lot(A, 10, 100, MONDAY + timedelta(days=30), "X"),
    ]
    booked = [Dose(MONDAY + timedelta(days=d), A, 70) for d in range(6)]
    result = demand(booked, stock, CATALOGS)
    forty = [{v.vial_size_g: v.count for v in x.on_hand_vials}.get(40, 0) for x in result.lines]
    # Monday and Tuesday draw the early lot first; on Wednesday its last vial has expired.
    assert forty == [5, 4, 2, 1, 0, 0]
    assert [d.lot for d in result.draws if stock[d.lot].vial_size_g == 40] == [1, 1, 0, 0]
    assert [x.shortfall_vials for x in result.lines[:4]] == [()] * 4
    for line in result.lines[4:]:
        assert [(v.vial_size_g, v.count) for v in line.shortfall_vials] == [(40, 1)]
        # another size does not stand in for the missing one: 20 and 10 g as planned
        assert [(v.vial_size_g, v.count) for v in line.vials] == [(40, 1), (20, 1), (10, 1)]
    assert [(s.first_short_on, s.shortfall_vials) for s in result.short] == [
        (MONDAY + timedelta(days=4), (Vials(40, 2),))  # the range's whole shortfall
    ]


def test_an_expired_lot_is_not_drawn_even_when_it_is_the_only_one() -> None:
    stock = [Lot(B, 10, 5, MONDAY, "OLD")]
    result = demand([Dose(MONDAY + timedelta(days=1), B, 10)], stock, CATALOGS)
    assert result.draws == ()
    assert result.lines[0].on_hand_vials == ()
    assert [(v.vial_size_g, v.count) for v in result.lines[0].shortfall_vials] == [(10, 1)]
