"""The vial planner (scheduling/catalog/vials.py): property tests against brute force over small
stocks, a dynamic-programming oracle over the catalogs' sizes, and worked examples from the
labels (Gamunex-C 1, 2.5, 5, 10, 20, 40 g; Gammagard Liquid 1, 2.5, 5, 10, 20, 30 g)."""

from __future__ import annotations

import math
import uuid
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import date
from itertools import chain, product

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from scheduling.catalog.dose import round_to_vials
from scheduling.catalog.vials import (
    NO_ROUNDING,
    Stock,
    Tolerance,
    VialPlan,
    catalog_stock,
    plan_vials,
)
from tests.support.reference import old_round_to_vials

GAMUNEX_C = (1, 2.5, 5, 10, 20, 40)
GAMMAGARD_LIQUID = (1, 2.5, 5, 10, 20, 30)
UNIT_MG = 500
NEVER = date.max
LOTS = uuid.UUID("6f1c3d2e-0000-4000-8000-000000000000")
JAN, MAR, JUN = date(2027, 1, 31), date(2027, 3, 31), date(2027, 6, 30)

sizes = st.sampled_from([0.5, 1, 2.5, 3, 5, 10, 20, 30, 40])
expiries = st.sampled_from([None, JAN, MAR, JUN])
tolerances = st.builds(
    Tolerance,
    st.none() | st.sampled_from([0, 2, 5, 10, 20, 150]),
    st.none() | st.sampled_from([0, 0.5, 1, 2.5, 5]),
)
small_doses = st.integers(1, 6_000).map(lambda hundredths: hundredths / 100)  # to 60 g


def lot(size: float, n: int) -> uuid.UUID:
    """A lot holds one vial size: lot n of this size."""
    return uuid.uuid5(LOTS, f"{size}/{n}")


@st.composite
def stocks(draw: st.DrawFn, one_entry_per_lot: bool = False) -> list[Stock]:
    entries: list[Stock] = []
    for i in range(draw(st.integers(0, 5))):
        size = draw(sizes)
        lot_id = lot(size, i if one_entry_per_lot else draw(st.integers(0, 2)))
        entries.append(Stock(size, draw(st.integers(0, 3)), lot_id, draw(expiries)))
    return entries


def mg(grams: float) -> int:
    return round(grams * 1000)


Key = tuple[int, int, int, tuple[date, ...]]  # total, vials, lots, expiries drawn (sorted)


def plan_key(plan: VialPlan) -> Key:
    return (
        mg(plan.total_g),
        sum(p.count for p in plan.vials),
        len({p.lot_id for p in plan.vials}),
        tuple(sorted(chain.from_iterable([p.expires_on or NEVER] * p.count for p in plan.vials))),
    )


def every_draw(stock: Sequence[Stock]) -> list[Key]:
    """Every way to draw from `stock` (each entry 0..count vials)."""
    keys = []
    for counts in product(*(range((s.count or 0) + 1) for s in stock)):
        used = [(s, k) for s, k in zip(stock, counts, strict=True) if k]
        keys.append(
            (
                sum(mg(s.vial_size_g) * k for s, k in used),
                sum(counts),
                len({s.lot_id for s, _ in used}),
                tuple(sorted(chain.from_iterable([s.expires_on or NEVER] * k for s, k in used))),
            )
        )
    return keys


def oracle(dose: int, allowance: int, stock: Sequence[Stock], shortage: bool) -> tuple[str, Key]:
    """The rules, by brute force: which rule applies and the best draw under it."""
    draws = every_draw(stock)
    if max(draws)[0] in range(max(1, dose - allowance)):  # nothing, or below the limit
        return "short", max(draws)
    near = [d for d in draws if d[0] > 0 and abs(d[0] - dose) <= allowance]
    below = [d for d in draws if 0 < d[0] <= dose]
    above = [d for d in draws if d[0] >= dose]
    if shortage and below:
        return "shortage", min(below, key=lambda d: (-d[0], *d[1:]))
    if not shortage and near:
        return "tolerance", min(near, key=lambda d: (abs(d[0] - dose), *d))
    assert above, "what reaches the lower limit makes it or more"
    return "partial", min(above)


def check_plan(plan: VialPlan, dose: int, stock: Sequence[Stock]) -> None:
    """What every plan must satisfy whatever rule made it."""
    total, given, waste = mg(plan.total_g), mg(plan.given_g), mg(plan.waste_g)
    assert total == sum(mg(p.vial_size_g) * p.count for p in plan.vials)
    assert given + waste == total and waste >= 0
    assert mg(plan.short_g) == (dose - given if plan.short_g else 0)
    assert plan.units_given == math.ceil(given / UNIT_MG)
    assert plan.waste_units == max(0, math.ceil(total / UNIT_MG) - plan.units_given)
    assert plan.modifier == ("JW" if plan.waste_units else "JZ")
    if plan.modifier == "JW":
        assert waste > 0
    assert all(p.count > 0 for p in plan.vials)
    # No more vials of a lot (and expiry) than the stock holds.
    held: Counter[tuple[float, uuid.UUID | None, date | None]] = Counter()
    for s in stock:
        held[s.vial_size_g, s.lot_id, s.expires_on] += s.count or 0
    for p in plan.vials:
        if any(
            s.count is None
            for s in stock
            if (s.vial_size_g, s.lot_id, s.expires_on) == (p.vial_size_g, p.lot_id, p.expires_on)
        ):
            continue
        assert p.count <= held[p.vial_size_g, p.lot_id, p.expires_on]


@settings(max_examples=400, deadline=None)
@given(small_doses, stocks(), tolerances, st.booleans())
@example(25.2, [Stock(10, 3, lot(10, 0), JAN)], Tolerance(10), False)
@example(0.8, [Stock(1, 2, lot(1, 0), None)], NO_ROUNDING, True)
@example(5.0, [], NO_ROUNDING, False)
@example(7.5, [Stock(5, 2, lot(5, 0), JAN), Stock(10, 1, lot(10, 0), JAN)], Tolerance(50), False)
def test_the_plan_is_the_best_draw_brute_force_finds(
    dose_g: float, stock: list[Stock], tolerance: Tolerance, shortage: bool
) -> None:
    dose = mg(dose_g)
    allowance = tolerance.allowance_mg(dose)
    plan = plan_vials(dose_g, stock, tolerance, shortage=shortage)
    check_plan(plan, dose, stock)
    rule, best = oracle(dose, allowance, stock, shortage)
    assert plan_key(plan) == best, rule
    total, given = mg(plan.total_g), mg(plan.given_g)
    # Within the tolerance whenever some whole vials are (in a shortage: some below the dose).
    assert plan.within_tolerance == (
        rule in ("tolerance", "shortage") and dose - given <= allowance
    )
    if rule == "tolerance":
        assert plan.waste_g == 0 and given == total
    if shortage:
        assert given <= dose
    if rule == "partial":
        # Never more waste than any other draw that makes the dose.
        assert given == dose
        assert total - dose == min(d[0] for d in every_draw(stock) if d[0] >= dose) - dose
    if rule == "short":
        assert plan.short_g > 0 and given == total == sum(
            mg(s.vial_size_g) * (s.count or 0) for s in stock
        )
    else:
        assert plan.short_g == 0


@settings(max_examples=300, deadline=None)
@given(small_doses, stocks(one_entry_per_lot=True), tolerances, st.booleans())
def test_first_expiry_first_out_and_the_same_lot_where_possible(
    dose_g: float, stock: list[Stock], tolerance: Tolerance, shortage: bool
) -> None:
    plan = plan_vials(dose_g, stock, tolerance, shortage=shortage)
    drawn = {(p.lot_id, p.expires_on): p.count for p in plan.vials}
    by_size: defaultdict[float, list[Stock]] = defaultdict(list)
    for s in stock:
        if s.count:
            by_size[s.vial_size_g].append(s)
    for size, entries in by_size.items():
        n = sum(p.count for p in plan.vials if p.vial_size_g == size)
        if not n:
            continue
        used = [s for s in entries if drawn.get((s.lot_id, s.expires_on), 0)]
        # The same lot where one lot can give them all.
        if any((s.count or 0) >= n for s in entries):
            assert len(used) == 1
        # An earlier-expiring lot is left (in part) only when drawing it would take another lot.
        for u in used:
            for e in entries:
                left = (e.count or 0) - drawn.get((e.lot_id, e.expires_on), 0)
                if left and (e.expires_on or NEVER) < (u.expires_on or NEVER):
                    assert e not in used
                    others = sum(s.count or 0 for s in used if s is not u)
                    assert others + (e.count or 0) < n


catalog_doses = st.integers(10, 2_500).map(lambda tenths: tenths / 10)  # 1 to 250 g


def fewest_vials_table(sizes: Sequence[float], limit: int) -> list[float]:
    """Fewest vials making each amount in tenths of a gram, as many of each size as needed."""
    units = [round(s * 10) for s in sizes]
    fewest = [0.0] + [math.inf] * limit
    for amount in range(1, limit + 1):
        fewest[amount] = min(
            (fewest[amount - u] + 1 for u in units if u <= amount), default=math.inf
        )
    return fewest


@settings(max_examples=300, deadline=None)
@given(
    catalog_doses,
    st.sampled_from([GAMUNEX_C, GAMMAGARD_LIQUID, (5, 10, 20, 40), (2.5, 5, 10, 20)]),
    st.sampled_from([0, 2, 5, 10]),
    st.booleans(),
)
def test_catalog_plans_are_nearest_then_fewest_vials(
    dose_g: float, sizes: Sequence[float], pct: float, shortage: bool
) -> None:
    dose = round(dose_g * 10)
    allowance = int(dose * pct) // 100
    fewest = fewest_vials_table(sizes, dose + allowance + round(max(sizes) * 10))
    made = [a for a in range(1, len(fewest)) if fewest[a] < math.inf]
    plan = plan_vials(dose_g, catalog_stock(sizes), Tolerance(pct), shortage=shortage)
    check_plan(plan, mg(dose_g), catalog_stock(sizes))
    total = round(plan.total_g * 10)
    near = [a for a in made if abs(a - dose) <= allowance]
    if shortage:
        below = [a for a in made if a <= dose]
        expected = max(below) if below else min(a for a in made if a >= dose)
    elif near:
        expected = min(near, key=lambda a: (abs(a - dose), a))
    else:
        expected = min(a for a in made if a >= dose)
    assert total == expected
    assert sum(p.count for p in plan.vials) == fewest[total]
    assert plan.within_tolerance == (plan.waste_g == 0 and abs(total - dose) <= allowance)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(5, 2_500).map(lambda tenths: tenths / 10),
    st.sampled_from([GAMUNEX_C, GAMMAGARD_LIQUID, (5, 10, 20, 40), (2.5, 5), (10,)]),
    st.sampled_from([0, 1, 2.5, 5, 10, 15]),
)
def test_round_to_vials_does_what_it_did(dose_g: float, sizes: Sequence[float], pct: float) -> None:
    assert round_to_vials(dose_g, sizes, pct) == old_round_to_vials(dose_g, sizes, pct)


@given(small_doses, stocks(), tolerances, st.booleans())
def test_as_many_as_needed_is_as_good_as_plenty(
    dose_g: float, stock: list[Stock], tolerance: Tolerance, shortage: bool
) -> None:
    unlimited = [Stock(s.vial_size_g, None, s.lot_id, s.expires_on) for s in stock]
    plenty = [Stock(s.vial_size_g, 1_000, s.lot_id, s.expires_on) for s in stock]
    assert plan_vials(dose_g, unlimited, tolerance, shortage=shortage) == plan_vials(
        dose_g, plenty, tolerance, shortage=shortage
    )


def vials(plan: VialPlan) -> list[tuple[float, int]]:
    return [(p.vial_size_g, p.count) for p in plan.vials]


def test_an_induction_of_two_grams_a_kilogram_for_seventy_kilograms() -> None:
    gamunex = plan_vials(2 * 70, catalog_stock(GAMUNEX_C), Tolerance(10))
    assert vials(gamunex) == [(40, 3), (20, 1)]
    assert (gamunex.given_g, gamunex.units_given, gamunex.modifier) == (140, 280, "JZ")
    gammagard = plan_vials(2 * 70, catalog_stock(GAMMAGARD_LIQUID), Tolerance(10))
    assert vials(gammagard) == [(30, 4), (20, 1)]
    assert gammagard.waste_g == 0 and gammagard.within_tolerance


def test_a_maintenance_dose_of_25_2_grams() -> None:
    stock = catalog_stock(GAMMAGARD_LIQUID)
    # 0.4 g/kg x 63 kg: 25 g is within 10 % (20 + 5), nothing discarded.
    rounded = plan_vials(0.4 * 63, stock, Tolerance(10))
    assert vials(rounded) == [(20, 1), (5, 1)]
    assert (rounded.given_g, rounded.units_given, rounded.modifier) == (25, 50, "JZ")
    # No rounding: the smallest amount over the dose is 25.5 g, and 0.3 g of it is discarded;
    # 51 units given (50.4 rounded up) already bill all 51 units drawn, so no JW line: JZ.
    exact = plan_vials(25.2, stock, NO_ROUNDING)
    assert vials(exact) == [(20, 1), (2.5, 1), (1, 3)]
    assert (exact.total_g, exact.given_g, exact.waste_g) == (25.5, 25.2, 0.3)
    assert (exact.units_given, exact.waste_units, exact.modifier) == (51, 0, "JZ")
    assert not exact.within_tolerance
    # Only 10 g vials on the shelf: 30 g drawn, 4.8 g discarded, 51 units given and 9 with JW.
    tens = plan_vials(25.2, [Stock(10, 6, lot(10, 0), JUN)], Tolerance(10))
    assert (tens.total_g, tens.waste_g, tens.units_given, tens.waste_units) == (30, 4.8, 51, 9)
    assert tens.modifier == "JW" and not tens.within_tolerance
    # In a shortage, round down.
    short = plan_vials(25.2, stock, NO_ROUNDING, shortage=True)
    assert vials(short) == [(20, 1), (5, 1)] and short.given_g == 25 and short.waste_g == 0


def test_nearest_then_fewest_vials() -> None:
    # 62.3 g: 62.5 (40 + 20 + 2.5, three vials) is nearer than 62 (40 + 20 + 1 + 1).
    plan = plan_vials(62.3, catalog_stock(GAMUNEX_C), Tolerance(10))
    assert vials(plan) == [(40, 1), (20, 1), (2.5, 1)]
    # 40 g of Gammagard: 20 + 20 (one lot) before 30 + 10 (two), both two vials.
    assert vials(plan_vials(40, catalog_stock(GAMMAGARD_LIQUID))) == [(20, 2)]


def test_lots_same_lot_then_first_expiry() -> None:
    early, late = lot(10, 1), lot(10, 2)
    stock = [Stock(10, 5, late, JUN), Stock(10, 2, early, JAN)]
    # Three vials: the later lot alone gives them all, the earlier would need two lots.
    assert [(p.lot_id, p.count) for p in plan_vials(30, stock).vials] == [(late, 3)]
    # Two: either lot alone would do, the earlier goes first.
    assert [(p.lot_id, p.count) for p in plan_vials(20, stock).vials] == [(early, 2)]
    # Vials of one lot moved to room temperature carry an earlier expiry: still one lot, and
    # those go first.
    moved = [Stock(10, 4, late, JUN), Stock(10, 2, late, MAR), Stock(10, 2, early, JAN)]
    plan = plan_vials(30, moved)
    assert [(p.lot_id, p.expires_on, p.count) for p in plan.vials] == [
        (late, MAR, 2),
        (late, JUN, 1),
    ]


def test_when_the_stock_cannot_make_the_dose() -> None:
    stock = [Stock(10, 2, lot(10, 0), JUN), Stock(5, 0, lot(5, 0), JUN)]
    plan = plan_vials(25.2, stock, Tolerance(10))
    assert (plan.total_g, plan.given_g, plan.short_g, plan.within_tolerance) == (20, 20, 5.2, False)
    # Within the tolerance is not short: 20 g for a 21 g order at 5 %.
    assert plan_vials(21, stock, Tolerance(5)).short_g == 0
    empty = plan_vials(10, [])
    assert (empty.vials, empty.given_g, empty.short_g) == ((), 0, 10)
    # A shortage with nothing below the dose draws it from a vial rather than give nothing.
    tiny = plan_vials(0.8, catalog_stock(GAMUNEX_C), Tolerance(50), shortage=True)
    assert (tiny.total_g, tiny.given_g, tiny.waste_g) == (1, 0.8, 0.2)


def test_both_limits_hold_when_both_are_given() -> None:
    both = Tolerance(pct=10, grams=5)
    assert both.allowance_mg(200_000) == 5_000  # 10 % would be 20 g
    assert both.allowance_mg(20_000) == 2_000  # 5 g would be a quarter of the dose
    assert Tolerance(pct=0, grams=5).allowance_mg(200_000) == 0
    assert NO_ROUNDING.allowance_mg(200_000) == 0
    # 192 g of 40 g vials: 200 g is within 10 % but not within 5 g.
    forties = catalog_stock([40])
    assert plan_vials(192, forties, Tolerance(pct=10)).within_tolerance
    assert not plan_vials(192, forties, both).within_tolerance


def test_nonsense_is_refused() -> None:
    with pytest.raises(ValueError):
        plan_vials(0, catalog_stock(GAMUNEX_C))
    with pytest.raises(ValueError):
        Stock(0)
    with pytest.raises(ValueError):
        Stock(10, -1)
    with pytest.raises(ValueError):
        Tolerance(pct=-1)
