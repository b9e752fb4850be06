"""The drug forecast's pure rule (pharmacy/demand.py): property tests over random bookings and
stocks (lots on hand and on order), and worked examples."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, time, timedelta

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pharmacy.demand import (
    Catalog,
    Demand,
    Dose,
    Group,
    Line,
    Lot,
    Vials,
    demand,
    period_of,
    plan_dose,
    plan_doses,
)
from pharmacy.shortfall import Booked, uncovered

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
def lots(draw: st.DrawFn, ample: bool = False, on_order: bool = True) -> list[Lot]:
    """Lots on hand and, unless `ample` (or not `on_order`), a few orders arriving in the range
    (usable from their day; fresh, so expiring after the range)."""
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
    if on_order and not ample:
        for n in range(draw(st.integers(0, 3))):
            product_id = draw(products)
            found.append(
                Lot(
                    product_id,
                    draw(st.sampled_from(CATALOGS[product_id].vial_sizes_g)),
                    draw(st.integers(1, 12)),
                    MONDAY + timedelta(days=400),
                    f"ORDER{n}",
                    available_from=draw(days),
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
        assert d.day >= stock[d.lot].available_from  # stock on order from the day it arrives
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


def _without_on_order(lines: tuple[Line, ...]) -> list[tuple[object, ...]]:
    return [(x.date, x.product_id, x.vials, x.on_hand_vials, x.shortfall_vials) for x in lines]


@settings(max_examples=300, deadline=None)
@given(sessions, lots(on_order=False), st.data())
def test_an_order_covers_a_short_day_only_when_it_arrives_by_then(
    booked: list[Dose], stock: list[Lot], data: st.DataObject
) -> None:
    """An order arriving after a short day leaves that day (and every day before it) exactly
    as short; an ample one arriving on it or before leaves no shortfall of its size from its
    day on."""
    result = demand(booked, stock, CATALOGS)
    shorts = [
        (x.date, x.product_id, v.vial_size_g) for x in result.lines for v in x.shortfall_vials
    ]
    assume(shorts)
    day, product_id, size = data.draw(st.sampled_from(shorts))
    far = MONDAY + timedelta(days=400)

    late = day + timedelta(days=data.draw(st.integers(1, 30)))
    after = demand(booked, [*stock, Lot(product_id, size, 10_000, far, "ORDER", late)], CATALOGS)
    assert _without_on_order(tuple(x for x in after.lines if x.date < late)) == _without_on_order(
        tuple(x for x in result.lines if x.date < late)
    )
    assert [d for d in after.draws if d.day < late] == [d for d in result.draws if d.day < late]

    early = day - timedelta(days=data.draw(st.integers(0, 30)))
    with_order = [*stock, Lot(product_id, size, 10_000, far, "ORDER", early)]
    before = demand(booked, with_order, CATALOGS)
    for line in before.lines:
        covered = line.product_id == product_id and line.date >= early
        if covered:
            assert size not in {v.vial_size_g for v in line.shortfall_vials}
        if line.date < early:  # the days before it arrives are as they were
            assert line in result.lines
    assert drawn(with_order, before) + short(before) == planned(booked)  # all accounted for


@settings(max_examples=200, deadline=None)
@given(sessions, lots(), groups)
def test_on_order_vials_are_what_arrives_in_the_period(
    booked: list[Dose], stock: list[Lot], group: Group
) -> None:
    result = demand(booked, stock, CATALOGS, group)
    for line in result.lines:
        arriving: Counter[int] = Counter()
        for lot in stock:
            on_order = lot.available_from > date.min
            if on_order and (lot.product_id, period_of(lot.available_from, group)) == (
                line.product_id,
                line.date,
            ):
                arriving[mg(lot.vial_size_g)] += lot.vials_on_hand
        assert {mg(v.vial_size_g): v.count for v in line.on_order_vials} == dict(arriving)


@settings(max_examples=150, deadline=None)
@given(sessions, lots())
def test_the_shortfall_check_counts_orders_as_the_forecast_does(
    booked: list[Dose], stock: list[Lot]
) -> None:
    """The `drug_check` job's per-session burn-down (pharmacy/shortfall.py) over the same lots
    and orders: per day, product and size its shortfalls are the forecast's."""
    sessions_ = [
        Booked(
            uuid.UUID(int=n + 1),
            s.day,
            datetime.combine(s.day, time(9), UTC),
            s.product_id,
            s.dose_g,
        )
        for n, s in enumerate(booked)
    ]
    mine: Counter[tuple[date, uuid.UUID, int]] = Counter()
    for u in uncovered(sessions_, stock, CATALOGS):
        for v in u.short:
            mine[u.day, u.product_id, mg(v.vial_size_g)] += v.count
    theirs: Counter[tuple[date, uuid.UUID, int]] = Counter()
    for line in demand(booked, stock, CATALOGS).lines:
        for v in line.shortfall_vials:
            theirs[line.date, line.product_id, mg(v.vial_size_g)] += v.count
    assert mine == theirs


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


def test_an_order_expected_before_the_short_day_covers_it_and_one_after_does_not() -> None:
    # 40 g a week on Mondays; one 40 g vial on hand. Four more arrive on order on the Friday
    # before the third Monday: the second Monday is short, the third and fourth are not.
    stock = [
        Lot(A, 40, 1, MONDAY + timedelta(days=90), "ON-HAND"),
        Lot(A, 40, 4, MONDAY + timedelta(days=400), "ORDER", MONDAY + timedelta(days=11)),
    ]
    booked = [Dose(MONDAY + timedelta(weeks=w), A, 40) for w in range(4)]
    result = demand(booked, stock, CATALOGS)
    assert [x.shortfall_vials for x in result.lines] == [(), (Vials(40, 1),), (), ()]
    assert [x.on_hand_vials for x in result.lines] == [
        (Vials(40, 1),),
        (),
        (Vials(40, 4),),
        (Vials(40, 3),),
    ]
    assert [(s.first_short_on, s.shortfall_vials) for s in result.short] == [
        (MONDAY + timedelta(weeks=1), (Vials(40, 1),))
    ]
    # By week, the order shows on the week it arrives in (the second).
    weeks = demand(booked, stock, CATALOGS, "week")
    assert [x.on_order_vials for x in weeks.lines] == [(), (Vials(40, 4),), (), ()]
    # By day, no booked day is its day: it shows on no line, and still counts.
    assert all(x.on_order_vials == () for x in result.lines)
