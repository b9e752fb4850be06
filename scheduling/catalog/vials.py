"""Which vials to pull for a dose: the amount, the vial sizes, the lots, the waste and its billing.

Plain functions over plain values: no session, no clock, no I/O. Amounts are integer milligrams
inside (no float drift; an order in hundredths of a gram stays exact, so billing units never
flip at a unit's edge), and floats rounded to the milligram outside.

What may be drawn is a sequence of `Stock` entries: a vial size, how many (None: as many as
needed, for planning from the catalog), the lot and its expiry. An entry with no lot is a lot of
its own. A lot holds one vial size; the same lot may come in several entries (vials moved to
room temperature carry a new, earlier expiry), and using several of them still counts as one lot.
Leaving out what has expired by the day of the dose is the caller's job; among what it passes,
the earliest-expiring is drawn first.

The rules, in order:

1. Some whole vials within the tolerance of the order: give that amount, nothing is wasted. The
   amount nearest the order (a tie: the smaller), then the fewest vials, then the fewest distinct
   lots (same lot where possible), then first-expiry-first-out.
2. Otherwise the smallest amount of whole vials at least the dose: the pharmacy draws the dose
   from it and discards the rest of the last vial (waste = total - dose); same tie-breaks.
3. In a shortage (`shortage=True`) instead the largest amount at most the dose, given whole (no
   waste); same tie-breaks. When not even the smallest vial fits below the dose, the dose is
   drawn as in rule 2 (a partial vial, the rest wasted): giving nothing is no plan.

When the stock cannot reach the dose at all, not even within the tolerance, the plan draws all of
it and says how much is missing (`short_g`).

Tolerance: a percentage of the order and an allowance in grams, the amount given may lie
anywhere within [dose - allowance, dose + allowance]. When both are given both hold (the
narrower wins): "10 % but at most 5 g" keeps a 200 g dose within 5 g, and a policy that means
only one of them gives only that one. None leaves a limit unset; 0 (or no limit) is no rounding.

First-expiry-first-out, exactly: the expiry dates of the vials drawn, sorted, are as early as
they can be (compared lexicographically; no expiry sorts last), among the ways to draw the same
vials from equally few lots. So an earlier-expiring lot is left unused only when drawing from it
would take one more lot.

Billing (HCPCS units of `billing_unit_mg`, 500 mg for immunoglobulin): the units given round
up; the waste is billed with modifier JW as the rest of the units drawn (units of the vials drawn
minus units given, as the Medicare contractors' worked examples do), and JZ says none was. Waste
smaller than what rounding the given units up already bills has no units of its own, so it is
JZ: the contractors refuse a JW line the given units already cover.

How: which totals whole vials can make, per suffix of the vial sizes, as bitsets (bounded by
the stock per size) in units of the sizes' greatest common divisor; the total is then a few bit
operations away, and the fewest-vials ways to make it a depth-first search that the bitsets
keep on feasible paths. Lots are assigned per size afterwards.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from itertools import combinations
from typing import Literal

MG_PER_G = 1000
HCPCS_UNIT_MG = 500  # J1459, J1561, J1568, J1569: 500 mg a unit
_NEVER = date.max  # no expiry sorts after every date

Modifier = Literal["JW", "JZ"]


@dataclass(frozen=True)
class Stock:
    """Vials that may be drawn: `count` None is as many as needed (planning from the catalog)."""

    vial_size_g: float
    count: int | None = None
    lot_id: uuid.UUID | None = None
    expires_on: date | None = None

    def __post_init__(self) -> None:
        if round(self.vial_size_g * MG_PER_G) <= 0:
            raise ValueError("a vial size must be at least a milligram")
        if self.count is not None and self.count < 0:
            raise ValueError("a vial count cannot be negative")


@dataclass(frozen=True)
class Tolerance:
    """How far the amount given may be from the order; both limits hold when both are set."""

    pct: float | None = None
    grams: float | None = None

    def __post_init__(self) -> None:
        if (self.pct is not None and self.pct < 0) or (self.grams is not None and self.grams < 0):
            raise ValueError("a tolerance cannot be negative")

    def allowance_mg(self, dose_mg: int) -> int:
        limits: list[int] = []
        if self.pct is not None:
            limits.append(int(Decimal(dose_mg) * Decimal(str(self.pct)) / 100))
        if self.grams is not None:
            limits.append(round(self.grams * MG_PER_G))
        return min(limits, default=0)


NO_ROUNDING = Tolerance()


@dataclass(frozen=True)
class VialPick:
    """Vials to pull from one stock entry."""

    vial_size_g: float
    count: int
    lot_id: uuid.UUID | None
    expires_on: date | None = None


@dataclass(frozen=True)
class VialPlan:
    vials: tuple[VialPick, ...]
    total_g: float  # drawn
    given_g: float  # what the patient receives
    waste_g: float  # drawn and discarded
    waste_units: int  # billing units of the waste (JW)
    units_given: int  # billing units of the dose given, rounded up
    modifier: Modifier
    within_tolerance: bool  # whole vials, within the tolerance of the order
    short_g: float  # what the stock lacks when it cannot make the dose at all; else 0


@dataclass(frozen=True)
class _Entry:
    index: int  # its place in the caller's sequence: the last tie-break
    size_mg: int
    count: int | None
    lot_id: uuid.UUID | None
    expires_on: date | None

    @property
    def expiry(self) -> date:
        return self.expires_on or _NEVER

    @property
    def lot(self) -> object:
        return self.lot_id if self.lot_id is not None else ("entry", self.index)


_Drawn = tuple[int, tuple[date, ...], list[tuple[_Entry, int]]]  # lots, expiries, vials


def catalog_stock(vial_sizes_g: Iterable[float]) -> tuple[Stock, ...]:
    """Every size the catalog lists, as many of each as needed, no lots."""
    return tuple(Stock(size) for size in vial_sizes_g)


def plan_vials(
    dose_g: float,
    stock: Sequence[Stock],
    tolerance: Tolerance = NO_ROUNDING,
    *,
    shortage: bool = False,
    billing_unit_mg: int = HCPCS_UNIT_MG,
) -> VialPlan:
    """The vials to pull for `dose_g` from `stock` (see the module's rules)."""
    dose = round(dose_g * MG_PER_G)
    if dose <= 0:
        raise ValueError("the dose must be positive")
    if billing_unit_mg <= 0:
        raise ValueError("the billing unit must be positive")
    allowance = tolerance.allowance_mg(dose)
    by_size: dict[int, list[_Entry]] = {}
    for i, s in enumerate(stock):
        if s.count != 0:
            entry = _Entry(i, round(s.vial_size_g * MG_PER_G), s.count, s.lot_id, s.expires_on)
            by_size.setdefault(entry.size_mg, []).append(entry)
    everything = sum(
        math.inf if e.count is None else e.size_mg * e.count for es in by_size.values() for e in es
    )
    if not by_size or everything < dose - allowance:  # nothing makes the dose: draw it all
        drawn = [(e, e.count or 0) for es in by_size.values() for e in es]
        total = int(everything)
        return _plan(dose, allowance, drawn, total, total, billing_unit_mg, short=True)

    sizes = sorted(by_size, reverse=True)
    unit = math.gcd(*sizes)
    su = [s // unit for s in sizes]
    upper = max((dose + allowance) // unit, -(-dose // unit) + su[0])
    caps = [min(upper // s, _count(by_size[size])) for s, size in zip(su, sizes, strict=True)]
    suffix = _reachable(su, caps, upper)
    made = suffix[0] & ~1  # the totals whole vials make, in `unit`s; none of nothing
    below, above = dose // unit, -(-dose // unit)

    target: int | None = None
    if shortage:  # rule 3
        target = _highest(made, 1, below)
    else:  # rule 1
        low = _highest(made, max(1, -(-(dose - allowance) // unit)), below)
        high = _lowest(made, above, (dose + allowance) // unit)
        near = [t for t in (low, high) if t is not None]
        if near:
            target = min(near, key=lambda t: (abs(t * unit - dose), t))
    given = None if target is None else target * unit
    if target is None:  # rule 2, and rule 3 when no vial fits below the dose
        target = _lowest(made, above, upper)
        given = dose
    assert target is not None and given is not None, "the stock reaches the dose"

    best: tuple[tuple[int, tuple[date, ...]], list[tuple[_Entry, int]]] | None = None
    drawn_by: dict[tuple[int, int], _Drawn] = {}
    for counts in _fewest_vials(target, su, caps, suffix):
        lots, expiries, drawn = 0, list[date](), list[tuple[_Entry, int]]()
        for size, n in zip(sizes, counts, strict=True):
            if n:
                if (size, n) not in drawn_by:
                    drawn_by[size, n] = _draw(by_size[size], n)
                size_lots, size_expiries, size_drawn = drawn_by[size, n]
                lots += size_lots
                expiries += size_expiries
                drawn += size_drawn
        key = (lots, tuple(sorted(expiries)))
        if best is None or key < best[0]:
            best = key, drawn
    assert best is not None
    return _plan(dose, allowance, best[1], target * unit, given, billing_unit_mg, short=False)


def _count(entries: list[_Entry]) -> int | float:
    return math.inf if any(e.count is None for e in entries) else sum(e.count or 0 for e in entries)


def _reachable(su: list[int], caps: list[int | float], upper: int) -> list[int]:
    """suffix[i]: bit t set when sizes i.. (at most their caps each) make t units."""
    mask = (1 << (upper + 1)) - 1
    suffix = [0] * len(su) + [1]
    for i in range(len(su) - 1, -1, -1):
        bits, left, piece = suffix[i + 1], int(caps[i]), 1
        while left > 0:  # binary splitting: pieces 1, 2, 4, ... make every count up to the cap
            take = min(piece, left)
            bits = (bits | bits << (take * su[i])) & mask
            left -= take
            piece *= 2
        suffix[i] = bits
    return suffix


def _highest(bits: int, lo: int, hi: int) -> int | None:
    if lo > hi:
        return None
    window = (bits & ((1 << (hi + 1)) - 1)) >> lo
    return lo + window.bit_length() - 1 if window else None


def _lowest(bits: int, lo: int, hi: int) -> int | None:
    if lo > hi:
        return None
    window = (bits >> lo) & ((1 << (hi - lo + 1)) - 1)
    return lo + (window & -window).bit_length() - 1 if window else None


def _fewest_vials(
    target: int, su: list[int], caps: list[int | float], suffix: list[int]
) -> list[tuple[int, ...]]:
    """Every way to make `target` units with the fewest vials (counts per size, largest first,
    ways with more large vials first)."""
    last = len(su) - 1
    found: list[tuple[int, ...]] = []
    fewest = math.inf
    counts = [0] * len(su)

    def search(i: int, rem: int, used: int) -> None:
        nonlocal fewest
        s = su[i]
        if i == last:
            k, r = divmod(rem, s)
            if r == 0 and k <= caps[i] and used + k <= fewest:
                if used + k < fewest:
                    fewest = used + k
                    found.clear()
                counts[i] = k
                found.append(tuple(counts))
                counts[i] = 0
            return
        for k in range(int(min(caps[i], rem // s)), -1, -1):
            r = rem - k * s
            # Fewer of this size never needs fewer vials: the next size is smaller.
            if used + k + -(-r // su[i + 1]) > fewest:
                break
            if (suffix[i + 1] >> r) & 1:
                counts[i] = k
                search(i + 1, r, used + k)
        counts[i] = 0

    search(0, target, 0)
    return found


def _draw(entries: list[_Entry], n: int) -> _Drawn:
    """`n` vials of one size from the fewest lots, the earliest-expiring those lots allow."""
    lots: dict[object, list[_Entry]] = {}
    for e in entries:
        lots.setdefault(e.lot, []).append(e)
    groups = list(lots.values())
    capacity = [_count(g) for g in groups]
    for m in range(1, len(groups) + 1):
        best: tuple[tuple[date, ...], list[tuple[_Entry, int]]] | None = None
        for chosen in combinations(range(len(groups)), m):
            if sum(capacity[c] for c in chosen) < n:
                continue
            pool = sorted((e for c in chosen for e in groups[c]), key=lambda e: (e.expiry, e.index))
            drawn: list[tuple[_Entry, int]] = []
            expiries: tuple[date, ...] = ()
            left = n
            for e in pool:
                take = left if e.count is None else min(left, e.count)
                if take:
                    drawn.append((e, take))
                    expiries += (e.expiry,) * take
                    left -= take
            if best is None or expiries < best[0]:
                best = expiries, drawn
        if best is not None:
            return m, best[0], best[1]
    raise AssertionError("the counts per size come from the stock")


def _plan(
    dose: int,
    allowance: int,
    drawn: list[tuple[_Entry, int]],
    total: int,
    given: int,
    billing_unit_mg: int,
    *,
    short: bool,
) -> VialPlan:
    units_given = -(-given // billing_unit_mg)
    waste_units = max(0, -(-total // billing_unit_mg) - units_given)
    drawn = sorted(
        (d for d in drawn if d[1]), key=lambda d: (-d[0].size_mg, d[0].expiry, d[0].index)
    )
    return VialPlan(
        vials=tuple(VialPick(e.size_mg / MG_PER_G, k, e.lot_id, e.expires_on) for e, k in drawn),
        total_g=_g(total),
        given_g=_g(given),
        waste_g=_g(total - given),
        waste_units=waste_units,
        units_given=units_given,
        modifier="JW" if waste_units else "JZ",
        within_tolerance=not short and given == total and abs(total - dose) <= allowance,
        short_g=_g(dose - given) if short else 0.0,
    )


def _g(mg: int) -> float:
    return round(mg / MG_PER_G, 3)
