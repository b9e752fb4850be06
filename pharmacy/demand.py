"""What the booked sessions will draw from a center's stock, day by day or week by week, and
where the stock runs short. Plain functions over plain values: no session, no clock.

Each session's dose is planned on its product's catalog vial sizes (`plan_vials`, as many of
each size as needed, no rounding: a course with a tolerance books doses already rounded to
whole vials, so these plan exactly; others draw the smallest whole vials at least the dose).
Doses repeat (a course gives the same dose every cycle), so each distinct dose of a product is
planned once.

The stock is then drawn day by day, in day order: per product and vial size, the day's
planned vials come from the lots usable that day (not expired: a lot's `expires_on` is its
last day; arrived: stock on order counts as a lot from the day it is expected, its
`available_from`), first expiry first out. What the lots cannot give is that day's shortfall
of that size; an order arriving later does not make it up. A shortfall of one size is not
made up from another size (two 5 g vials for a missing 10 g one): swapping sizes, rounding
down or switching products is the shortage plan's job, not this forecast's, so the shortfall
says exactly which vials to order.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from scheduling.catalog.vials import MG_PER_G, catalog_stock, plan_vials

Group = Literal["day", "week"]


@dataclass(frozen=True)
class Dose:
    """A booked dose: its center-local day, product and grams."""

    day: date
    product_id: uuid.UUID
    dose_g: float


@dataclass(frozen=True)
class Lot:
    """Vials of one size of a product that may be drawn from `available_from` up to and
    including `expires_on`: a lot on hand (available all along), or stock on order (its vials
    arrive on `available_from`, the day the order is expected)."""

    product_id: uuid.UUID
    vial_size_g: float
    vials_on_hand: int  # an order's: the vials it brings
    expires_on: date
    lot_number: str = ""  # first expiry first out, then by lot number (pharmacy.rules.fefo)
    available_from: date = date.min

    def usable_on(self, day: date) -> bool:
        return self.available_from <= day <= self.expires_on


@dataclass(frozen=True)
class Catalog:
    """A product's vial sizes and billing unit (what its doses are planned on)."""

    vial_sizes_g: tuple[float, ...]
    billing_unit_mg: int = 500


@dataclass(frozen=True)
class Vials:
    vial_size_g: float
    count: int


@dataclass(frozen=True)
class Line:
    """One period (a day, or an ISO week named by its Monday) of one product."""

    date: date
    product_id: uuid.UUID
    sessions: int
    grams: float
    vials: tuple[Vials, ...]  # planned, largest size first
    on_hand_vials: tuple[Vials, ...]  # usable on the period's first day, after earlier draws
    shortfall_vials: tuple[Vials, ...]  # planned vials the stock cannot give, by size
    on_order_vials: tuple[Vials, ...] = ()  # arriving on a day of the period, by size


@dataclass(frozen=True)
class Short:
    """A product that runs short: its first short day and the range's whole shortfall."""

    product_id: uuid.UUID
    first_short_on: date
    shortfall_vials: tuple[Vials, ...]


@dataclass(frozen=True)
class Draw:
    """Vials drawn from `lots[lot]` (the index in the caller's sequence) on `day`."""

    lot: int
    day: date
    vials: int


@dataclass(frozen=True)
class Demand:
    lines: tuple[Line, ...]  # by date, then product id
    short: tuple[Short, ...]  # by first short day, then product id
    draws: tuple[Draw, ...]  # in day order


Plan = tuple[tuple[int, int], ...]  # (vial size in mg, count), largest first


def plan_dose(dose_g: float, catalog: Catalog) -> Plan:
    """The catalog vials one dose draws."""
    plan = plan_vials(
        dose_g, catalog_stock(catalog.vial_sizes_g), billing_unit_mg=catalog.billing_unit_mg
    )
    counts: dict[int, int] = defaultdict(int)
    for pick in plan.vials:
        counts[_mg(pick.vial_size_g)] += pick.count
    return tuple(sorted(counts.items(), reverse=True))


def plan_doses(
    sessions: Iterable[Dose], catalogs: Mapping[uuid.UUID, Catalog]
) -> dict[tuple[uuid.UUID, int], Plan]:
    """The plan of every distinct (product, dose in mg), each planned once."""
    plans: dict[tuple[uuid.UUID, int], Plan] = {}
    for s in sessions:
        key = (s.product_id, _mg(s.dose_g))
        if key not in plans:
            plans[key] = plan_dose(s.dose_g, catalogs[s.product_id])
    return plans


def period_of(day: date, group: Group) -> date:
    """The day itself, or the Monday of its ISO week."""
    return day if group == "day" else day - timedelta(days=day.weekday())


def demand(
    sessions: Sequence[Dose],
    lots: Sequence[Lot],
    catalogs: Mapping[uuid.UUID, Catalog],
    group: Group = "day",
) -> Demand:
    """Demand lines per period and product, what each day draws, and where stock runs short."""
    plans = plan_doses(sessions, catalogs)
    # Per day and product: sessions, milligrams, planned vials by size.
    booked: dict[tuple[date, uuid.UUID], tuple[int, int, dict[int, int]]] = {}
    for s in sessions:
        key = (s.day, s.product_id)
        count, mg, vials = booked.get(key, (0, 0, defaultdict(int)))
        dose_mg = _mg(s.dose_g)
        for size, n in plans[s.product_id, dose_mg]:
            vials[size] += n
        booked[key] = (count + 1, mg + dose_mg, vials)

    # Per product and size, the lots first expiry first out, with what is left of each.
    shelves: dict[tuple[uuid.UUID, int], list[int]] = defaultdict(list)
    for i in sorted(range(len(lots)), key=lambda i: (lots[i].expires_on, lots[i].lot_number, i)):
        if lots[i].vials_on_hand > 0:
            shelves[lots[i].product_id, _mg(lots[i].vial_size_g)].append(i)
    left = [lot.vials_on_hand for lot in lots]

    def on_hand(product_id: uuid.UUID, day: date) -> dict[int, int]:
        counts: dict[int, int] = defaultdict(int)
        for (product, size), shelf in shelves.items():
            if product == product_id:
                for i in shelf:
                    if left[i] and lots[i].usable_on(day):
                        counts[size] += left[i]
        return counts

    draws: list[Draw] = []
    days: dict[tuple[date, uuid.UUID], tuple[dict[int, int], dict[int, int]]] = {}
    for day, product_id in sorted(booked, key=lambda k: (k[0], str(k[1]))):
        start = on_hand(product_id, day)
        short: dict[int, int] = {}
        for size, wanted in sorted(booked[day, product_id][2].items(), reverse=True):
            for i in shelves.get((product_id, size), ()):
                if wanted == 0:
                    break
                if not left[i] or not lots[i].usable_on(day):
                    continue
                take = min(wanted, left[i])
                left[i] -= take
                wanted -= take
                draws.append(Draw(i, day, take))
            if wanted:
                short[size] = wanted
        days[day, product_id] = (start, short)

    # Per period and product, the vials arriving on order by size (lots on hand arrive never).
    arriving: dict[tuple[date, uuid.UUID], dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for lot in lots:
        if lot.available_from > date.min and lot.vials_on_hand > 0:
            key = (period_of(lot.available_from, group), lot.product_id)
            arriving[key][_mg(lot.vial_size_g)] += lot.vials_on_hand

    lines = _lines(booked, days, arriving, group)
    return Demand(lines=lines, short=_short(days), draws=tuple(draws))


def _lines(
    booked: Mapping[tuple[date, uuid.UUID], tuple[int, int, dict[int, int]]],
    days: Mapping[tuple[date, uuid.UUID], tuple[dict[int, int], dict[int, int]]],
    arriving: Mapping[tuple[date, uuid.UUID], Mapping[int, int]],
    group: Group,
) -> tuple[Line, ...]:
    periods: dict[tuple[date, uuid.UUID], list[date]] = defaultdict(list)
    for day, product_id in booked:
        periods[period_of(day, group), product_id].append(day)
    lines = []
    for (period, product_id), in_period in sorted(
        periods.items(), key=lambda p: (p[0][0], str(p[0][1]))
    ):
        first = min(in_period)
        sessions, mg = 0, 0
        vials: dict[int, int] = defaultdict(int)
        shortfall: dict[int, int] = defaultdict(int)
        for day in in_period:
            count, day_mg, day_vials = booked[day, product_id]
            sessions, mg = sessions + count, mg + day_mg
            for size, n in day_vials.items():
                vials[size] += n
            for size, n in days[day, product_id][1].items():
                shortfall[size] += n
        lines.append(
            Line(
                date=period,
                product_id=product_id,
                sessions=sessions,
                grams=mg / MG_PER_G,
                vials=_vials(vials),
                on_hand_vials=_vials(days[first, product_id][0]),
                shortfall_vials=_vials(shortfall),
                on_order_vials=_vials(arriving.get((period, product_id), {})),
            )
        )
    return tuple(lines)


def _short(
    days: Mapping[tuple[date, uuid.UUID], tuple[dict[int, int], dict[int, int]]],
) -> tuple[Short, ...]:
    first: dict[uuid.UUID, date] = {}
    total: dict[uuid.UUID, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for (day, product_id), (_, short) in days.items():
        if short:
            first[product_id] = min(day, first.get(product_id, day))
            for size, n in short.items():
                total[product_id][size] += n
    return tuple(
        Short(product_id, on, _vials(total[product_id]))
        for product_id, on in sorted(first.items(), key=lambda p: (p[1], str(p[0])))
    )


def _vials(counts: Mapping[int, int]) -> tuple[Vials, ...]:
    return tuple(Vials(size / MG_PER_G, n) for size, n in sorted(counts.items(), reverse=True) if n)


def _mg(grams: float) -> int:
    return round(grams * MG_PER_G)
