"""A shortage plan: when a product's stock will not meet the booked demand, what to propose for
the sessions it cannot cover, in the center's priority order of indications. It proposes and
never applies. Plain functions over plain values: no session, no clock.

1. Nothing is proposed unless the burn-down in start order (`pharmacy.shortfall.uncovered`)
   finds a session of the product in the range that the stock will not cover.
2. Then the stock is shared out again. Sessions outside the question (other products, and the
   product's sessions before the range) draw first, in start order, as booked. The product's
   sessions in the range then draw in priority order: the rank of the diagnosis in the
   center's list (the longest matching ICD-10 prefix; unlisted last), loading days before
   maintenance, then by start. A session whose planned vials are all there is protected.
3. For each other one, cheapest first, the first of:
   a. `round_down`: the largest whole-vial amount at most the dose from what is left of the
      product that day (`plan_vials(..., shortage=True)`), when it stays within the course's
      vial tolerance, or without one within `FLOOR_PCT` of the dose (the reply says which);
   b. `switch_product`: another active immune globulin with the whole dose in what is left
      of its stock that day, after its own booked sessions;
   c. `move_later`: a maintenance session (never a loading day, never acute GBS) to the first
      open day later in its window on which an order placed today would have arrived (the
      supplier's `order_lead_days`). Stock on hand only ever shrinks with time (lots expire,
      nothing arrives in this burn-down), so a later day can only be covered by an order; a
      product whose lead time is not known has no move proposed.
   Otherwise the session stays uncovered, with the reason.
A proposal's vials are taken from what is left, so later proposals never count on them twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from pharmacy.demand import Catalog, Lot, Vials
from pharmacy.shortfall import Booked, Plans, Shelves, mg, uncovered, vial_text, vials
from scheduling.catalog.vials import NO_ROUNDING, Stock, Tolerance, VialPlan, plan_vials

# Without a course tolerance, a dose may be rounded down by at most this much.
FLOOR_PCT = 10
GBS = "G61.0"  # acute Guillain-Barré: never moved
Action = Literal["round_down", "switch_product", "move_later"]


@dataclass(frozen=True)
class Session:
    """A booked course session of the center, as the plan needs it."""

    appointment_id: uuid.UUID
    patient_id: uuid.UUID
    course_id: uuid.UUID
    day: date
    start: datetime
    product_id: uuid.UUID
    dose_g: float
    diagnosis_code: str
    phase: str  # induction | maintenance
    window_latest: date | None  # the last day its window allows; None: it cannot move
    tolerance_pct: float | None  # the course's vial tolerance

    def booked(self) -> Booked:
        return Booked(self.appointment_id, self.day, self.start, self.product_id, self.dose_g)


@dataclass(frozen=True)
class Product:
    name: str
    catalog: Catalog
    immune_globulin: bool  # only these stand in for each other
    active: bool = True
    order_lead_days: int | None = None


@dataclass(frozen=True)
class Proposal:
    appointment_id: uuid.UUID
    patient_id: uuid.UUID
    course_id: uuid.UUID
    priority_rank: int
    day: date
    action: Action
    detail: str
    dose_g_before: float
    dose_g_after: float | None = None
    product_id_after: uuid.UUID | None = None
    vials_after: tuple[Vials, ...] = ()
    move_to_date: date | None = None


@dataclass(frozen=True)
class Unmet:
    appointment_id: uuid.UUID
    patient_id: uuid.UUID
    course_id: uuid.UUID
    priority_rank: int
    day: date
    dose_g: float
    short: tuple[Vials, ...]
    reason: str


@dataclass(frozen=True)
class ShortagePlan:
    protected: tuple[uuid.UUID, ...]  # the product's sessions in the range covered as booked
    proposals: tuple[Proposal, ...]  # in priority order
    uncovered: tuple[Unmet, ...]  # in priority order


@dataclass(frozen=True)
class Question:
    """What the plan is asked: one product, a range of days, as of `today`."""

    product_id: uuid.UUID
    start: date
    end: date  # inclusive
    today: date
    priority: Sequence[str]  # ICD-10 prefixes, highest priority first
    open_weekdays: Collection[int] = range(7)  # Monday = 0: the days a move may go to


def rank_of(diagnosis_code: str, priority: Sequence[str]) -> int:
    """1 for the first entry of the center's list; the longest matching prefix decides; a
    diagnosis the list does not name comes after all of it."""
    code = diagnosis_code.upper()
    best: tuple[int, int] | None = None  # (prefix length, index)
    for i, prefix in enumerate(priority):
        if code.startswith(prefix.upper()) and (best is None or len(prefix) > best[0]):
            best = (len(prefix), i)
    return best[1] + 1 if best is not None else len(priority) + 1


def priority_key(s: Session, priority: Sequence[str]) -> tuple[int, bool, date, datetime, str]:
    return (
        rank_of(s.diagnosis_code, priority),
        s.phase != "induction",
        s.day,
        s.start,
        str(s.appointment_id),
    )


def shortage_plan(
    sessions: Sequence[Session],
    lots: Sequence[Lot],
    products: Mapping[uuid.UUID, Product],
    asked: Question,
) -> ShortagePlan:
    """Proposals for the sessions of `asked.product_id` from `asked.start` to `asked.end` the
    stock will not cover (see the module's rules)."""
    catalogs = {pid: p.catalog for pid, p in products.items()}
    in_range = [
        s
        for s in sessions
        if s.product_id == asked.product_id and asked.start <= s.day <= asked.end
    ]
    asked_ids = {s.appointment_id for s in in_range}
    short = [
        u
        for u in uncovered([s.booked() for s in sessions], lots, catalogs)
        if u.appointment_id in asked_ids
    ]
    if not short:
        return ShortagePlan(tuple(s.appointment_id for s in in_range), (), ())

    shelves, plans = Shelves(lots), Plans(catalogs)
    fixed = sorted((s for s in sessions if s.appointment_id not in asked_ids), key=_start)
    for s in fixed:
        shelves.draw_plan(s.product_id, plans.of(s.product_id, s.dose_g), s.day)

    protected: list[uuid.UUID] = []
    proposals: list[Proposal] = []
    unmet: list[Unmet] = []
    for s in sorted(in_range, key=lambda s: priority_key(s, asked.priority)):
        plan = plans.of(s.product_id, s.dose_g)
        if shelves.gives(s.product_id, plan, s.day):
            shelves.draw_plan(s.product_id, plan, s.day)
            protected.append(s.appointment_id)
            continue
        rank = rank_of(s.diagnosis_code, asked.priority)
        proposal = (
            _round_down(s, rank, shelves, products)
            or _switch(s, rank, shelves, products)
            or _move_later(s, rank, products, asked)
        )
        if proposal is not None:
            proposals.append(proposal)
            continue
        missing = {
            size: n - shelves.available(s.product_id, size, s.day)
            for size, n in plan
            if shelves.available(s.product_id, size, s.day) < n
        }
        unmet.append(
            Unmet(
                s.appointment_id,
                s.patient_id,
                s.course_id,
                rank,
                s.day,
                s.dose_g,
                vials(missing),
                _why_not(s, products, asked),
            )
        )
    return ShortagePlan(tuple(protected), tuple(proposals), tuple(unmet))


def _start(s: Session) -> tuple[date, datetime, str]:
    return (s.day, s.start, str(s.appointment_id))


def _stock(shelves: Shelves, product_id: uuid.UUID, day: date) -> tuple[list[Stock], list[int]]:
    """What is left of a product usable on `day`, as the vial planner takes it (each lot its
    own entry, named by its place so the picks can be drawn back)."""
    lots = shelves.usable(product_id, day)
    stock = [
        Stock(
            shelves.lots[i].vial_size_g,
            shelves.left[i],
            uuid.UUID(int=i + 1),
            shelves.lots[i].expires_on,
        )
        for i in lots
    ]
    return stock, lots


def _take(shelves: Shelves, plan: VialPlan) -> tuple[Vials, ...]:
    counts: dict[int, int] = {}
    for pick in plan.vials:
        assert pick.lot_id is not None
        i = pick.lot_id.int - 1
        shelves.left[i] -= pick.count
        size = mg(pick.vial_size_g)
        counts[size] = counts.get(size, 0) + pick.count
    return vials(counts)


def _round_down(
    s: Session, rank: int, shelves: Shelves, products: Mapping[uuid.UUID, Product]
) -> Proposal | None:
    stock, _ = _stock(shelves, s.product_id, s.day)
    if not stock:
        return None
    catalog = products[s.product_id].catalog
    plan = plan_vials(s.dose_g, stock, shortage=True, billing_unit_mg=catalog.billing_unit_mg)
    pct = s.tolerance_pct if s.tolerance_pct is not None else FLOOR_PCT
    limit = (
        f"the course's vial tolerance of {pct:g} %"
        if s.tolerance_pct is not None
        else f"the floor of {FLOOR_PCT} % below the dose (the course has no vial tolerance)"
    )
    dose = mg(s.dose_g)
    lowest = dose - Tolerance(pct=pct).allowance_mg(dose)
    given = mg(plan.given_g)
    if not 0 < given <= dose or given < lowest:
        return None
    taken = _take(shelves, plan)
    name = products[s.product_id].name
    if given == dose:
        detail = f"the whole {s.dose_g:g} g of {name} from other vial sizes: {vial_text(taken)}"
    else:
        detail = (
            f"round {s.dose_g:g} g of {name} down to {plan.given_g:g} g ({vial_text(taken)}), "
            f"within {limit}"
        )
    return Proposal(
        s.appointment_id,
        s.patient_id,
        s.course_id,
        rank,
        s.day,
        "round_down",
        detail,
        s.dose_g,
        dose_g_after=plan.given_g,
        vials_after=taken,
    )


def _switch(
    s: Session, rank: int, shelves: Shelves, products: Mapping[uuid.UUID, Product]
) -> Proposal | None:
    own = products[s.product_id]
    if not own.immune_globulin:
        return None
    tolerance = Tolerance(pct=s.tolerance_pct) if s.tolerance_pct else NO_ROUNDING
    others = sorted(
        (
            pid
            for pid, p in products.items()
            if pid != s.product_id and p.active and p.immune_globulin
        ),
        key=lambda pid: (products[pid].name, str(pid)),
    )
    for pid in others:
        stock, _ = _stock(shelves, pid, s.day)
        if not stock:
            continue
        other = products[pid]
        plan = plan_vials(s.dose_g, stock, tolerance, billing_unit_mg=other.catalog.billing_unit_mg)
        if plan.short_g > 0:
            continue
        taken = _take(shelves, plan)
        return Proposal(
            s.appointment_id,
            s.patient_id,
            s.course_id,
            rank,
            s.day,
            "switch_product",
            f"give {plan.given_g:g} g of {other.name} ({vial_text(taken)}) instead of "
            f"{s.dose_g:g} g of {own.name}",
            s.dose_g,
            dose_g_after=plan.given_g,
            product_id_after=pid,
            vials_after=taken,
        )
    return None


def movable(s: Session) -> bool:
    """Only a maintenance session with room in its window, never acute GBS."""
    return (
        s.phase == "maintenance"
        and not s.diagnosis_code.upper().startswith(GBS)
        and s.window_latest is not None
        and s.window_latest > s.day
    )


def move_date(s: Session, lead_days: int | None, asked: Question) -> date | None:
    """The first open day after the session's, within its window, by which an order placed
    today would have arrived; None if there is none (or no known lead time)."""
    if lead_days is None or not movable(s) or s.window_latest is None:
        return None
    day = max(s.day + timedelta(days=1), asked.today + timedelta(days=lead_days))
    while day <= s.window_latest:
        if day.weekday() in asked.open_weekdays:
            return day
        day += timedelta(days=1)
    return None


def _move_later(
    s: Session, rank: int, products: Mapping[uuid.UUID, Product], asked: Question
) -> Proposal | None:
    lead = products[s.product_id].order_lead_days
    to = move_date(s, lead, asked)
    if to is None or s.window_latest is None:
        return None
    return Proposal(
        s.appointment_id,
        s.patient_id,
        s.course_id,
        rank,
        s.day,
        "move_later",
        f"move from {s.day.isoformat()} to {to.isoformat()}, inside its window (to "
        f"{s.window_latest.isoformat()}): an order of {products[s.product_id].name} placed "
        f"today ({lead} days' lead time) arrives by then",
        s.dose_g,
        move_to_date=to,
    )


def _why_not(s: Session, products: Mapping[uuid.UUID, Product], asked: Question) -> str:
    lead = products[s.product_id].order_lead_days
    if lead is not None and s.day >= asked.today + timedelta(days=lead):
        return "an order placed today would arrive before this session: see the reorder list"
    if s.phase == "induction":
        return "a loading day: not rounded down further, no other product in stock, never moved"
    if s.diagnosis_code.upper().startswith(GBS):
        return "acute GBS: not rounded down further, no other product in stock, never moved"
    return "no rounding within the limit, no other product in stock, no later day in its window"
