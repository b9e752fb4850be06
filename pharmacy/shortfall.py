"""Which booked sessions the stock will not cover on their day, and how urgent each is. Plain
functions over plain values: no session, no clock.

The same burn-down as the forecast (`pharmacy.demand`), one session at a time instead of a
day's total: sessions in start order (day, then start), each drawing its planned catalog vials
(`plan_dose`) per size from that size's lots usable on its day (stock on order counts from the
day it is expected, as there), first expiry first out. What the lots cannot give is the
session's shortfall; it still draws what they can, so per day, product and size the sessions'
shortfalls add up to the forecast's (a property test holds the two together). The session
that comes first on a day is served first; which of them to protect when not all can be is the
shortage plan's question (`pharmacy.shortage`), not this.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from pharmacy.demand import Catalog, Lot, Plan, Vials, plan_dose
from scheduling.catalog.vials import MG_PER_G

# A session this close (days from today, at the center) is critical: too late for any order.
CRITICAL_DAYS = 2

Severity = Literal["warning", "critical"]


@dataclass(frozen=True)
class Booked:
    """A booked course session's dose, at its center."""

    appointment_id: uuid.UUID
    day: date  # center-local
    start: datetime  # orders the day's sessions
    product_id: uuid.UUID
    dose_g: float


@dataclass(frozen=True)
class Uncovered:
    """A session the stock cannot give all its planned vials on its day."""

    appointment_id: uuid.UUID
    day: date
    product_id: uuid.UUID
    planned: tuple[Vials, ...]  # largest size first
    short: tuple[Vials, ...]  # of those, what the lots cannot give


class Shelves:
    """The lots per product and vial size, first expiry first out, and what is left of each."""

    def __init__(self, lots: Sequence[Lot]) -> None:
        self.lots = lots
        self.left = [lot.vials_on_hand for lot in lots]
        self.shelves: dict[tuple[uuid.UUID, int], list[int]] = defaultdict(list)
        for i in sorted(
            range(len(lots)), key=lambda i: (lots[i].expires_on, lots[i].lot_number, i)
        ):
            if lots[i].vials_on_hand > 0:
                self.shelves[lots[i].product_id, mg(lots[i].vial_size_g)].append(i)

    def usable(self, product_id: uuid.UUID, day: date) -> list[int]:
        """The lots of a product with vials left that are usable on `day`, FEFO within a size."""
        return [
            i
            for (product, _), shelf in sorted(self.shelves.items(), key=lambda s: -s[0][1])
            if product == product_id
            for i in shelf
            if self.left[i] and self.lots[i].usable_on(day)
        ]

    def available(self, product_id: uuid.UUID, size_mg: int, day: date) -> int:
        return sum(
            self.left[i]
            for i in self.shelves.get((product_id, size_mg), ())
            if self.lots[i].usable_on(day)
        )

    def gives(self, product_id: uuid.UUID, plan: Plan, day: date) -> bool:
        """Whether every planned vial can be drawn on `day`."""
        return all(self.available(product_id, size, day) >= n for size, n in plan)

    def draw(self, product_id: uuid.UUID, size_mg: int, wanted: int, day: date) -> int:
        """Draw up to `wanted` vials of a size, first expiry first out: how many were missing."""
        for i in self.shelves.get((product_id, size_mg), ()):
            if wanted == 0:
                break
            if not self.left[i] or not self.lots[i].usable_on(day):
                continue
            take = min(wanted, self.left[i])
            self.left[i] -= take
            wanted -= take
        return wanted

    def draw_plan(self, product_id: uuid.UUID, plan: Plan, day: date) -> dict[int, int]:
        """Draw a plan's vials: what the lots could not give, by size."""
        short = {size: self.draw(product_id, size, n, day) for size, n in plan}
        return {size: n for size, n in short.items() if n}


class Plans:
    """Each distinct (product, dose) planned once on its catalog's vial sizes."""

    def __init__(self, catalogs: Mapping[uuid.UUID, Catalog]) -> None:
        self.catalogs = catalogs
        self.plans: dict[tuple[uuid.UUID, int], Plan] = {}

    def of(self, product_id: uuid.UUID, dose_g: float) -> Plan:
        key = (product_id, mg(dose_g))
        if key not in self.plans:
            self.plans[key] = plan_dose(dose_g, self.catalogs[product_id])
        return self.plans[key]


def start_order(s: Booked) -> tuple[date, datetime, str]:
    return (s.day, s.start, str(s.appointment_id))


def uncovered(
    sessions: Sequence[Booked], lots: Sequence[Lot], catalogs: Mapping[uuid.UUID, Catalog]
) -> tuple[Uncovered, ...]:
    """The sessions the lots cannot give their planned vials, burned down in start order."""
    shelves, plans = Shelves(lots), Plans(catalogs)
    found: list[Uncovered] = []
    for s in sorted(sessions, key=start_order):
        plan = plans.of(s.product_id, s.dose_g)
        short = shelves.draw_plan(s.product_id, plan, s.day)
        if short:
            found.append(
                Uncovered(s.appointment_id, s.day, s.product_id, vials(dict(plan)), vials(short))
            )
    return tuple(found)


def severity(day: date, today: date, order_lead_days: int | None) -> Severity:
    """Critical within `CRITICAL_DAYS`, or sooner than an order placed today could arrive;
    a warning before that."""
    days = (day - today).days
    if days <= CRITICAL_DAYS or (order_lead_days is not None and days < order_lead_days):
        return "critical"
    return "warning"


def due_date(day: date, today: date, order_lead_days: int | None) -> date:
    """When the pharmacy must act: the day an order must go out to arrive in time (the
    session's day less the supplier's lead time), or today if that has passed or the lead
    time is not known."""
    if order_lead_days is None:
        return today
    return max(today, day - timedelta(days=order_lead_days))


def describe(short: Uncovered, product_name: str) -> str:
    """What is short, in words, without patient data."""
    return (
        f"{product_name} on {short.day.isoformat()}: short {vial_text(short.short)} "
        f"of the {vial_text(short.planned)} planned"
    )[:500]


def vial_text(items: Sequence[Vials]) -> str:
    return " + ".join(f"{v.count} x {v.vial_size_g:g} g" for v in items) or "nothing"


def vials(counts: Mapping[int, int]) -> tuple[Vials, ...]:
    return tuple(Vials(size / MG_PER_G, n) for size, n in sorted(counts.items(), reverse=True) if n)


def mg(grams: float) -> int:
    return round(grams * MG_PER_G)
