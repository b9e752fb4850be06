"""The shortage rules' pure parts (pharmacy/shortfall.py, pharmacy/shortage.py): which sessions
the stock will not cover, and what a shortage plan proposes. Property tests over random
bookings and stocks, and worked examples."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from pharmacy import shortfall
from pharmacy.demand import Catalog, Dose, Lot, Vials, demand
from pharmacy.shortage import (
    FLOOR_PCT,
    GBS,
    Product,
    Question,
    Session,
    rank_of,
    shortage_plan,
)

GAMUNEX_C = Catalog((1, 2.5, 5, 10, 20, 40))  # the label's sizes
PRIVIGEN = Catalog((5, 10, 20, 40))
INFLIXIMAB = Catalog((0.1,), billing_unit_mg=10)
A, B, C = uuid.UUID(int=1), uuid.UUID(int=2), uuid.UUID(int=3)
PRODUCTS = {
    A: Product("Gamunex-C", GAMUNEX_C, immune_globulin=True, order_lead_days=10),
    B: Product("Privigen", PRIVIGEN, immune_globulin=True),
    C: Product("Infliximab", INFLIXIMAB, immune_globulin=False),
}
CATALOGS = {pid: p.catalog for pid, p in PRODUCTS.items()}
MONDAY = date(2027, 1, 11)
TODAY = MONDAY - timedelta(days=7)
PRIORITY = ("G61.0", "G61.82", "G61.81")
DIAGNOSES = ("G61.0", "G61.82", "G61.81", "G70.00")


def mg(grams: float) -> int:
    return round(grams * 1000)


def counts(vials: tuple[Vials, ...]) -> Counter[int]:
    return Counter({mg(v.vial_size_g): v.count for v in vials})


@st.composite
def sessions(
    draw: st.DrawFn, same_day: bool = False, product: uuid.UUID | None = None
) -> list[Session]:
    found = []
    for n in range(draw(st.integers(0, 14))):
        offset = 0 if same_day else draw(st.integers(0, 20))
        day = MONDAY + timedelta(days=offset)
        phase = draw(st.sampled_from(["induction", "maintenance"]))
        found.append(
            Session(
                appointment_id=uuid.UUID(int=1000 + n),
                patient_id=uuid.UUID(int=2000 + n),
                course_id=uuid.UUID(int=3000 + n),
                day=day,
                start=datetime.combine(day, time(8 + draw(st.integers(0, 8))), tzinfo=UTC),
                product_id=product or draw(st.sampled_from([A, B])),
                dose_g=draw(st.sampled_from([35, 40, 60, 70, 72.5])),
                diagnosis_code=draw(st.sampled_from(DIAGNOSES)),
                phase=phase,
                window_latest=(
                    day + timedelta(days=draw(st.integers(0, 21)))
                    if phase == "maintenance"
                    else None
                ),
                tolerance_pct=draw(st.sampled_from([None, 0.0, 5.0, 10.0])),
            )
        )
    return found


@st.composite
def stock(draw: st.DrawFn, ample: bool = False) -> list[Lot]:
    found = []
    for product_id in (A, B):
        for size in PRODUCTS[product_id].catalog.vial_sizes_g:  # every size a dose may need
            for n in range(draw(st.integers(1 if ample else 0, 2))):
                found.append(
                    Lot(
                        product_id,
                        size,
                        10_000 if ample else draw(st.integers(1, 6)),
                        MONDAY + timedelta(days=60 if ample else draw(st.integers(0, 30))),
                        f"L{size}-{n}",
                    )
                )
    return found


def ask(product: uuid.UUID = A, priority: tuple[str, ...] = PRIORITY) -> Question:
    return Question(product, MONDAY, MONDAY + timedelta(days=20), TODAY, priority, range(5))


# --- which sessions are short ----------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(sessions(), stock())
def test_the_sessions_shortfalls_add_up_to_the_forecasts(
    booked: list[Session], lots: list[Lot]
) -> None:
    """Session by session in start order, the shortfall per day, product and size is the
    forecast's (pharmacy/demand.py), so the alerts and the drug-demand screen agree."""
    short = shortfall.uncovered([s.booked() for s in booked], lots, CATALOGS)
    mine: Counter[tuple[date, uuid.UUID, int]] = Counter()
    for u in short:
        for v in u.short:
            mine[u.day, u.product_id, mg(v.vial_size_g)] += v.count
        assert counts(u.short) <= counts(u.planned)  # never short of more than it plans
    forecast = demand([Dose(s.day, s.product_id, s.dose_g) for s in booked], lots, CATALOGS)
    theirs: Counter[tuple[date, uuid.UUID, int]] = Counter()
    for line in forecast.lines:
        for v in line.shortfall_vials:
            theirs[line.date, line.product_id, mg(v.vial_size_g)] += v.count
    assert mine == theirs


def test_the_first_session_of_the_day_is_served_first() -> None:
    early, late = (
        Session(
            uuid.UUID(int=i),
            uuid.UUID(int=10 + i),
            uuid.UUID(int=20 + i),
            MONDAY,
            datetime.combine(MONDAY, time(hour), tzinfo=UTC),
            A,
            40,
            "G61.81",
            "maintenance",
            None,
            None,
        )
        for i, hour in ((1, 9), (2, 13))
    )
    lot = Lot(A, 40, 1, MONDAY + timedelta(days=30), "L1")
    short = shortfall.uncovered([late.booked(), early.booked()], [lot], CATALOGS)
    assert [(u.appointment_id, u.short) for u in short] == [(late.appointment_id, (Vials(40, 1),))]


def test_severity_and_due_date_follow_the_day_and_the_lead_time() -> None:
    assert shortfall.severity(TODAY + timedelta(days=2), TODAY, None) == "critical"
    assert shortfall.severity(TODAY + timedelta(days=3), TODAY, None) == "warning"
    assert (
        shortfall.severity(TODAY + timedelta(days=9), TODAY, 10) == "critical"
    )  # no order in time
    assert shortfall.severity(TODAY + timedelta(days=10), TODAY, 10) == "warning"
    assert shortfall.due_date(TODAY + timedelta(days=30), TODAY, 10) == TODAY + timedelta(days=20)
    assert shortfall.due_date(TODAY + timedelta(days=5), TODAY, 10) == TODAY
    assert shortfall.due_date(TODAY + timedelta(days=30), TODAY, None) == TODAY


# --- the shortage plan -----------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(sessions(), stock(ample=True))
def test_nothing_is_proposed_when_the_stock_suffices(
    booked: list[Session], lots: list[Lot]
) -> None:
    plan = shortage_plan(booked, lots, PRODUCTS, ask())
    assert plan.proposals == () and plan.uncovered == ()
    assert set(plan.protected) == {s.appointment_id for s in booked if s.product_id == A}


@settings(max_examples=200, deadline=None)
@given(sessions(same_day=True, product=A), st.integers(0, 8), st.permutations(PRIORITY))
def test_the_higher_priority_is_protected_first(
    booked: list[Session], sets: int, priority: list[str]
) -> None:
    """One day, one dose, enough 40 g vials for `sets` of them and nothing else of the product
    (so no rounding, no other product, no move inside a day's window): those protected all
    rank before those proposed for or left uncovered."""
    booked = [
        Session(**{**s.__dict__, "dose_g": 40, "window_latest": None, "tolerance_pct": 0.0})
        for s in booked
    ]
    lots = [Lot(A, 40, sets, MONDAY + timedelta(days=30), "L1")] if sets else []
    plan = shortage_plan(booked, lots, PRODUCTS, ask(priority=tuple(priority)))
    rank = {s.appointment_id: rank_of(s.diagnosis_code, priority) for s in booked}
    left_out = [p.appointment_id for p in plan.proposals] + [
        u.appointment_id for u in plan.uncovered
    ]
    assert len(plan.protected) == min(sets, len(booked)) or not left_out
    if plan.protected and left_out:
        assert max(rank[i] for i in plan.protected) <= min(rank[i] for i in left_out)
    assert {p.action for p in plan.proposals} <= {"switch_product"}  # B has no lots: none


@settings(max_examples=200, deadline=None)
@given(sessions(), stock())
def test_what_a_plan_proposes_keeps_to_the_rules(booked: list[Session], lots: list[Lot]) -> None:
    plan = shortage_plan(booked, lots, PRODUCTS, ask())
    by_id = {s.appointment_id: s for s in booked}
    in_range = {s.appointment_id for s in booked if s.product_id == A}
    seen = [*plan.protected, *(p.appointment_id for p in plan.proposals)]
    seen += [u.appointment_id for u in plan.uncovered]
    assert sorted(seen) == sorted(in_range)  # each of the product's sessions once
    for p in plan.proposals:
        s = by_id[p.appointment_id]
        assert p.dose_g_before == s.dose_g
        if p.action == "round_down":  # never above the dose, never below its limit
            assert p.dose_g_after is not None
            pct = s.tolerance_pct if s.tolerance_pct is not None else FLOOR_PCT
            assert mg(s.dose_g) * (1 - pct / 100) - 1 <= mg(p.dose_g_after) <= mg(s.dose_g)
            # whole vials, or the whole dose drawn from a larger vial (the rest discarded)
            drawn_mg = sum(mg(v.vial_size_g) * v.count for v in p.vials_after)
            assert drawn_mg == mg(p.dose_g_after) or drawn_mg > mg(p.dose_g_after) == mg(s.dose_g)
        elif p.action == "switch_product":
            assert p.product_id_after == B and p.dose_g_after is not None
            assert p.dose_g_after >= s.dose_g * (1 - (s.tolerance_pct or 0) / 100) - 0.001
        else:  # moved later, inside its window, to an open day, never GBS or a loading day
            assert p.move_to_date is not None and s.window_latest is not None
            assert s.day < p.move_to_date <= s.window_latest
            assert p.move_to_date >= TODAY + timedelta(days=10)  # an order has arrived
            assert p.move_to_date.weekday() < 5
            assert s.phase == "maintenance" and not s.diagnosis_code.startswith(GBS)
    # What the proposals draw never passes what the lots hold.
    drawn: Counter[tuple[uuid.UUID, int]] = Counter()
    for p in plan.proposals:
        for v in p.vials_after:
            drawn[p.product_id_after or A, mg(v.vial_size_g)] += v.count
    held: Counter[tuple[uuid.UUID, int]] = Counter()
    for lot in lots:
        held[lot.product_id, mg(lot.vial_size_g)] += lot.vials_on_hand
    assert all(n <= held[key] for key, n in drawn.items())


def test_the_longest_matching_prefix_ranks_and_the_unlisted_come_last() -> None:
    assert rank_of("G61.0", PRIORITY) == 1
    assert rank_of("G61.81", ("G61.8", "G61.0", "G61.81")) == 3
    assert rank_of("G70.00", PRIORITY) == 4
    assert rank_of("g61.82", PRIORITY) == 2


def test_a_worked_example_round_down_switch_move_and_uncovered() -> None:
    """Five 70 g sessions on one Monday; Gamunex-C for one whole dose and 60 g more, Privigen for
    one dose. GBS is protected; MMN is rounded down to 60 g within its 15 % tolerance; CIDP
    switches to Privigen; the next CIDP session moves later in its window, to the first open
    day an order placed today (10 days) has arrived; a loading day of an unlisted diagnosis,
    last in priority, stays uncovered."""

    def session(
        n: int, code: str, phase: str, tolerance: float | None, latest: int | None
    ) -> Session:
        return Session(
            uuid.UUID(int=n),
            uuid.UUID(int=100 + n),
            uuid.UUID(int=200 + n),
            MONDAY,
            datetime.combine(MONDAY, time(8 + n), tzinfo=UTC),
            A,
            70,
            code,
            phase,
            None if latest is None else MONDAY + timedelta(days=latest),
            tolerance,
        )

    other = session(1, "G70.00", "induction", None, None)  # first in the day, last in priority
    gbs = session(2, "G61.0", "induction", None, None)
    mmn = session(3, "G61.82", "maintenance", 15, 14)
    cidp = session(4, "G61.81", "maintenance", None, 14)
    later = session(5, "G61.81", "maintenance", None, 21)
    far = MONDAY + timedelta(days=90)
    lots = [
        Lot(A, 40, 2, far, "A40"),
        Lot(A, 20, 2, far, "A20"),
        Lot(A, 10, 1, far, "A10"),
        Lot(B, 40, 1, far, "B40"),
        Lot(B, 20, 1, far, "B20"),
        Lot(B, 10, 1, far, "B10"),
    ]
    plan = shortage_plan([later, cidp, mmn, other, gbs], lots, PRODUCTS, ask())
    assert plan.protected == (gbs.appointment_id,)
    actions = {p.appointment_id: p for p in plan.proposals}
    assert list(actions) == [mmn.appointment_id, cidp.appointment_id, later.appointment_id]
    assert actions[mmn.appointment_id].action == "round_down"
    assert actions[mmn.appointment_id].dose_g_after == 60  # 40 + 20: 14 % below, within 15 %
    assert "tolerance of 15 %" in actions[mmn.appointment_id].detail
    assert actions[cidp.appointment_id].action == "switch_product"
    assert actions[cidp.appointment_id].product_id_after == B
    assert counts(actions[cidp.appointment_id].vials_after) == {40000: 1, 20000: 1, 10000: 1}
    assert actions[later.appointment_id].action == "move_later"
    assert actions[later.appointment_id].move_to_date == TODAY + timedelta(days=10)  # Thursday
    assert [(u.appointment_id, u.priority_rank) for u in plan.uncovered] == [
        (other.appointment_id, 4)
    ]
    # Without a tolerance the floor holds (10 %): 60 g is too far below 70 g.
    strict = Session(**{**mmn.__dict__, "tolerance_pct": None})
    plan = shortage_plan([strict, gbs], lots[:5], PRODUCTS, ask())
    assert [p.action for p in plan.proposals] == ["move_later"]
