"""Pre-authorization rules: units, allocation of sessions to authorizations, renewal dates."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from insurance.rules import (
    APPROVED,
    AUTH_STATUSES,
    TRANSITIONS,
    UNCOVERED_REASONS,
    WAITING,
    Allocation,
    Grant,
    Need,
    UnitsType,
    allocate,
    can_change,
    projected_exhaustion,
    renew_by,
    session_units,
    usage,
)

DAY0 = date(2027, 1, 4)
IVIG = "J1561"
COURSE_A, COURSE_B = uuid.UUID(int=0xA), uuid.UUID(int=0xB)
FINAL = ("expired", "exhausted", "cancelled")
fast = settings(max_examples=150, deadline=None)


def d(n: int) -> date:
    return DAY0 + timedelta(days=n)


def need(
    n: int,
    day: int,
    dose_g: str | None = "70",
    code: str = IVIG,
    course: uuid.UUID | None = COURSE_A,
) -> Need:
    dose = None if dose_g is None else Decimal(dose_g)
    return Need(uuid.UUID(int=n), d(day), code, course, dose, 500)


def grant(
    n: int,
    units: int,
    start: int = 0,
    days: int = 90,
    units_type: UnitsType = "visits",
    status: str = "approved",
    code: str = IVIG,
    course: uuid.UUID | None = None,
) -> Grant:
    return Grant(
        uuid.UUID(int=1000 + n),
        status,
        code,
        course,
        d(start),
        d(start + days - 1),
        units_type,
        units,
    )


def auth_of(covers: list[Allocation]) -> list[int | None]:
    """Covers as the short grant numbers used by `grant`, or the reason when uncovered."""
    return [c.authorization_id.int - 1000 if c.authorization_id else None for c in covers]


# --- units -----------------------------------------------------------------------------------


def test_a_70_g_dose_is_140_units_of_500_mg_and_any_excess_starts_a_new_unit() -> None:
    assert session_units("billing_units", Decimal("70"), 500) == 140
    assert session_units("billing_units", Decimal("70.000"), 500) == 140
    assert session_units("billing_units", Decimal("70.01"), 500) == 141
    assert session_units("billing_units", Decimal("69.99"), 500) == 140
    assert session_units("billing_units", Decimal("0.001"), 500) == 1
    assert session_units("billing_units", Decimal("35"), 1000) == 35
    # Long decimals that a rounded division would get wrong.
    assert session_units("billing_units", Decimal("0.5000000000000000000000000000001"), 500) == 2


def test_a_visit_is_one_unit_whatever_the_dose() -> None:
    assert session_units("visits", None, 500) == 1
    assert session_units("visits", Decimal("140"), 500) == 1


@pytest.mark.parametrize(
    ("dose", "unit_mg"), [(None, 500), (Decimal(0), 500), (Decimal(-5), 500), (Decimal(70), 0)]
)
def test_billing_units_need_a_real_dose_and_unit(dose: Decimal | None, unit_mg: int) -> None:
    with pytest.raises(ValueError):
        session_units("billing_units", dose, unit_mg)


doses = st.decimals(min_value=Decimal("0.001"), max_value=Decimal(500), places=3)
unit_sizes = st.sampled_from([1, 10, 250, 500, 1000, 2500])


@fast
@given(doses, unit_sizes)
def test_billing_units_are_the_fewest_whole_units_holding_the_dose(dose: Decimal, mg: int) -> None:
    units = session_units("billing_units", dose, mg)
    assert units * mg >= dose * 1000 > (units - 1) * mg


@fast
@given(doses, doses, unit_sizes)
def test_a_larger_dose_never_takes_fewer_units(a: Decimal, b: Decimal, mg: int) -> None:
    low, high = sorted((a, b))
    assert session_units("billing_units", low, mg) <= session_units("billing_units", high, mg)


# --- allocation: the issue's examples --------------------------------------------------------

EVERY_21_DAYS = [0, 21, 42, 63, 84]


def test_four_visits_cover_four_of_five_maintenance_sessions() -> None:
    needs = [need(i, day) for i, day in enumerate(EVERY_21_DAYS)]
    covers = allocate(needs, [grant(1, 4)])
    assert auth_of(covers) == [1, 1, 1, 1, None]
    assert [c.reason for c in covers] == [None] * 4 + ["units_exhausted"]
    assert [c.units for c in covers] == [1, 1, 1, 1, 0]


def test_a_renewal_from_day_80_pays_for_the_fifth_session() -> None:
    needs = [need(i, day) for i, day in enumerate(EVERY_21_DAYS)]
    covers = allocate(needs, [grant(1, 4), grant(2, 4, start=80)])
    assert auth_of(covers) == [1, 1, 1, 1, 2]
    assert all(c.reason is None for c in covers)


@pytest.mark.parametrize(("dose", "covered"), [("70", 4), ("80", 3), ("70.01", 3)])
def test_560_billing_units_last_as_many_sessions_as_the_dose_allows(
    dose: str, covered: int
) -> None:
    needs = [need(i, day, dose_g=dose) for i, day in enumerate(EVERY_21_DAYS)]
    covers = allocate(needs, [grant(1, 560, units_type="billing_units")])
    assert [c.reason is None for c in covers] == [True] * covered + [False] * (5 - covered)
    assert {c.reason for c in covers[covered:]} == {"units_exhausted"}
    assert sum(c.units for c in covers) == covered * session_units(
        "billing_units", Decimal(dose), 500
    )


def test_the_authorization_expiring_first_is_spent_first() -> None:
    long, short = grant(1, 10, days=180), grant(2, 10, days=60)
    covers = allocate([need(1, 10), need(2, 70)], [long, short])
    assert auth_of(covers) == [2, 1]  # day 70 is past the short one's end
    # Same end date: the lower authorization id, so re-running never flips the choice.
    twin_a, twin_b = grant(3, 10), grant(4, 10)
    assert auth_of(allocate([need(1, 10)], [twin_b, twin_a])) == [3]


def test_an_authorization_too_small_for_the_dose_is_passed_over() -> None:
    small = grant(1, 100, days=30, units_type="billing_units")  # expires first, 100 < 140
    big = grant(2, 1000, units_type="billing_units")
    assert auth_of(allocate([need(1, 5)], [small, big])) == [2]


def test_sessions_are_served_by_day_then_appointment_whatever_order_they_come_in() -> None:
    needs = [need(3, 7), need(1, 7), need(2, 0)]
    covers = allocate(needs, [grant(1, 2)])
    assert [c.appointment_id.int for c in covers] == [2, 1, 3]
    assert [c.reason for c in covers] == [None, None, "units_exhausted"]


def test_an_authorization_pays_only_for_its_service_and_course() -> None:
    course_only = grant(1, 5, course=COURSE_A)
    assert auth_of(allocate([need(1, 0, course=COURSE_B)], [course_only])) == [None]
    assert auth_of(allocate([need(1, 0, course=None)], [course_only])) == [None]
    assert auth_of(allocate([need(1, 0, course=COURSE_B)], [grant(2, 5)])) == [2]
    assert auth_of(allocate([need(1, 0, code="J1569")], [grant(2, 5)])) == [None]
    # Codes are compared exactly: the API only lets upper-case HCPCS codes in.
    assert auth_of(allocate([need(1, 0, code="j1561 ")], [grant(2, 5)])) == [None]


@pytest.mark.parametrize(
    ("grants", "reason"),
    [
        ([], "no_authorization"),
        ([grant(1, 5, status="cancelled")], "no_authorization"),
        ([grant(1, 5, status="denied", start=30)], "no_authorization"),
        ([grant(1, 5, code="J1569")], "no_authorization"),
        ([grant(1, 5, start=30)], "outside_period"),
        ([grant(1, 5, status="expired", days=10)], "outside_period"),
        ([grant(1, 5, status="expired")], "outside_period"),
        ([grant(1, 5, status="exhausted")], "units_exhausted"),
        ([grant(1, 0)], "units_exhausted"),
        ([grant(1, -2, status="partially_approved")], "units_exhausted"),
        ([grant(1, 5, status="submitted")], "authorization_pending"),
        ([grant(1, 5, status="appealed")], "authorization_pending"),
        ([grant(1, 5, status="denied")], "authorization_denied"),
        # A denial on the day says more than a request still waiting, or an old approval.
        ([grant(1, 5, status="denied"), grant(2, 5, status="pending")], "authorization_denied"),
        ([grant(1, 5, status="pending"), grant(2, 5, start=30)], "authorization_pending"),
        ([grant(1, 0), grant(2, 5, status="denied")], "units_exhausted"),
    ],
)
def test_why_a_session_is_not_covered(grants: list[Grant], reason: str) -> None:
    assert allocate([need(1, 20)], grants) == [Allocation(uuid.UUID(int=1), None, 0, reason)]


def test_allocation_refuses_what_it_cannot_count() -> None:
    with pytest.raises(ValueError, match="only once"):
        allocate([need(1, 0)], [grant(1, 5), grant(1, 7)])
    no_dose = need(7, 0, dose_g=None)
    with pytest.raises(ValueError, match=str(no_dose.appointment_id)):
        allocate([no_dose], [grant(1, 500, units_type="billing_units")])
    # A visit needs no dose, and an authorization that cannot pay anyway needs no count.
    assert auth_of(allocate([no_dose], [grant(1, 5)])) == [1]
    assert auth_of(allocate([no_dose], [grant(2, 0, units_type="billing_units")])) == [None]


# --- allocation: properties ------------------------------------------------------------------

codes = st.sampled_from([IVIG, "J1569"])
courses = st.sampled_from([COURSE_A, COURSE_B, None])
statuses = st.one_of(st.sampled_from(APPROVED), st.sampled_from(AUTH_STATUSES))


@st.composite
def needs_st(draw: st.DrawFn) -> list[Need]:
    count = draw(st.integers(0, 8))
    ids = draw(st.lists(st.integers(1, 10_000), min_size=count, max_size=count, unique=True))
    return [
        Need(
            uuid.UUID(int=i),
            d(draw(st.integers(0, 13))),
            draw(codes),
            draw(courses),
            Decimal(draw(st.integers(100, 1200))) / 10,
            draw(st.sampled_from([500, 1000])),
        )
        for i in ids
    ]


@st.composite
def grant_st(draw: st.DrawFn, n: int) -> Grant:
    units_type: UnitsType = draw(st.sampled_from(["visits", "billing_units"]))
    units = draw(st.integers(-1, 8) if units_type == "visits" else st.integers(-1, 700))
    start = draw(st.integers(-3, 13))
    return Grant(
        uuid.UUID(int=1000 + n),
        draw(statuses),
        draw(codes),
        draw(courses),
        d(start),
        d(start + draw(st.integers(0, 14))),
        units_type,
        units,
    )


@st.composite
def grants_st(draw: st.DrawFn) -> list[Grant]:
    return [draw(grant_st(n)) for n in range(draw(st.integers(1, 3)))]


def applies(g: Grant, n: Need) -> bool:
    return g.service_code == n.service_code and g.course_id in (None, n.course_id)


def valid_on(g: Grant, day: date) -> bool:
    return g.valid_from <= day <= g.valid_to


def units_for(g: Grant, n: Need) -> int:
    return session_units(g.units_type, n.dose_g, n.billing_unit_mg)


@fast
@given(needs_st(), grants_st())
def test_covers_come_from_applicable_approved_grants_within_their_units(
    needs: list[Need], grants: list[Grant]
) -> None:
    covers = allocate(needs, grants)
    by_id = {g.authorization_id: g for g in grants}
    by_appointment = {n.appointment_id: n for n in needs}
    assert [c.appointment_id for c in covers] == [
        n.appointment_id for n in sorted(needs, key=lambda n: (n.day, n.appointment_id))
    ]
    taken: Counter[uuid.UUID] = Counter()
    for cover in covers:
        n = by_appointment[cover.appointment_id]
        if cover.authorization_id is None:
            assert cover.units == 0 and cover.reason in UNCOVERED_REASONS
            continue
        g = by_id[cover.authorization_id]
        assert cover.reason is None
        assert applies(g, n) and g.status in APPROVED and valid_on(g, n.day)
        assert cover.units == units_for(g, n) > 0
        taken[g.authorization_id] += cover.units
    for auth_id, units in taken.items():
        assert units <= by_id[auth_id].units_left


@fast
@given(needs_st(), grants_st(), st.randoms(use_true_random=False))
def test_allocation_does_not_depend_on_input_order(
    needs: list[Need], grants: list[Grant], rnd: random.Random
) -> None:
    shuffled_needs, shuffled_grants = list(needs), list(grants)
    rnd.shuffle(shuffled_needs)
    rnd.shuffle(shuffled_grants)
    assert allocate(shuffled_needs, shuffled_grants) == allocate(needs, grants)


@fast
@given(needs_st(), grants_st())
def test_every_uncovered_reason_is_backed_by_the_grants(
    needs: list[Need], grants: list[Grant]
) -> None:
    covers = allocate(needs, grants)
    left = {g.authorization_id: g.units_left for g in grants}
    for c in covers:
        if c.authorization_id is not None:
            left[c.authorization_id] -= c.units
    by_appointment = {n.appointment_id: n for n in needs}
    for cover in covers:
        if cover.reason is None:
            continue
        n = by_appointment[cover.appointment_id]
        mine = [g for g in grants if applies(g, n)]
        on_day = [g for g in mine if valid_on(g, n.day)]
        approved_on_day = [g for g in on_day if g.status in APPROVED]
        # Nothing left on the table: units only go down, so any approved grant that could pay
        # for this session at the end could have paid for it when its turn came.
        for g in approved_on_day:
            assert left[g.authorization_id] < units_for(g, n)
        statuses_on_day = {g.status for g in on_day}
        if cover.reason == "units_exhausted":
            assert statuses_on_day & {*APPROVED, "exhausted"}
        else:
            assert not approved_on_day
        if cover.reason == "authorization_denied":
            assert "denied" in statuses_on_day
        if cover.reason == "authorization_pending":
            assert statuses_on_day & set(WAITING) and "denied" not in statuses_on_day
        if cover.reason == "outside_period":
            assert any(g.status in (*APPROVED, "expired", "exhausted") for g in mine)
            assert not statuses_on_day & {"denied", "exhausted", *WAITING}
        if cover.reason == "no_authorization":
            assert all(g.status == "cancelled" or not valid_on(g, n.day) for g in mine)
            assert all(g.status not in (*APPROVED, "expired", "exhausted") for g in mine)


@fast
@given(needs_st(), grant_st(0), st.integers(1, 300))
def test_more_units_on_a_lone_authorization_never_uncover_the_sessions_it_paid_for_first(
    needs: list[Need], g: Grant, extra: int
) -> None:
    """Greedy allocation is not monotone in general (with billing units a bigger balance can
    pay for an early large dose and then miss two small ones), but with a single authorization
    every session up to the first it could not pay for stays covered when it has more."""
    before = allocate(needs, [g])
    richer = Grant(**{**g.__dict__, "units_left": g.units_left + extra})
    after = allocate(needs, [richer])
    for old, new in zip(before, after, strict=True):
        if old.reason is not None:
            break
        assert new == old
    if g.units_type == "visits" and g.status in APPROVED:
        # One unit each: the count covered is simply capped by the units.
        eligible = sum(1 for n in needs if applies(g, n) and valid_on(g, n.day))
        for gg, covers in ((g, before), (richer, after)):
            covered = sum(1 for c in covers if c.reason is None)
            assert covered == min(max(gg.units_left, 0), eligible)


# --- usage, exhaustion, renewal --------------------------------------------------------------


def test_renew_by_counts_back_turnaround_and_margin_across_month_ends() -> None:
    assert renew_by(date(2027, 3, 31), None, 14, 7) == date(2027, 3, 10)
    assert renew_by(date(2027, 3, 5), None, 10, 0) == date(2027, 2, 23)
    assert renew_by(date(2028, 3, 5), None, 10, 0) == date(2028, 2, 24)  # leap year
    assert renew_by(date(2027, 1, 10), None, 5, 10) == date(2026, 12, 26)
    assert renew_by(date(2027, 3, 31), None, 0, 0) == date(2027, 3, 31)


def test_renew_by_runs_from_exhaustion_when_units_run_out_first() -> None:
    assert renew_by(date(2027, 3, 31), date(2027, 2, 15), 14, 7) == date(2027, 1, 25)
    assert renew_by(date(2027, 3, 31), date(2027, 5, 1), 14, 7) == date(2027, 3, 10)
    with pytest.raises(ValueError):
        renew_by(date(2027, 3, 31), None, -1, 7)


def test_projected_exhaustion_at_the_planned_pace() -> None:
    last, end = date(2027, 2, 1), date(2027, 6, 30)
    # Two visits left after the last booked one, every 21 days: the second is the last paid.
    assert projected_exhaustion(2, last, 1, 21, end) == date(2027, 3, 15)
    # 150 billing units pay for one more 140-unit session; the 10 over pay for nothing.
    assert projected_exhaustion(150, last, 140, 28, end) == date(2027, 3, 1)
    assert projected_exhaustion(139, last, 140, 28, end) == last
    assert projected_exhaustion(0, last, 1, 21, end) == last
    # The period ends before the units do.
    assert projected_exhaustion(10, last, 1, 21, end) is None
    assert projected_exhaustion(4, last, 1, 21, date(2027, 4, 26)) == date(2027, 4, 26)
    assert projected_exhaustion(5, last, 1, 21, date(2027, 4, 26)) is None
    # Nothing booked yet: no anchor for the pace.
    assert projected_exhaustion(2, None, 1, 21, end) is None
    assert projected_exhaustion(0, None, 1, 21, end) is None


def test_projected_exhaustion_without_a_known_pace() -> None:
    last, end = date(2027, 2, 1), date(2027, 6, 30)
    assert projected_exhaustion(0, last, None, None, end) == last
    assert projected_exhaustion(1, last, None, 21, end) is None
    assert projected_exhaustion(100, last, 140, None, end) == last
    assert projected_exhaustion(140, last, 140, None, end) is None
    assert projected_exhaustion(0, last, 0, 21, end) == last
    assert projected_exhaustion(0, None, None, None, end) is None
    assert projected_exhaustion(0, date(2027, 7, 1), None, None, end) is None


@fast
@given(
    st.integers(-5, 2000),
    st.none() | st.integers(0, 200).map(d),
    st.none() | st.integers(-1, 200),
    st.none() | st.integers(0, 60),
    st.integers(0, 200).map(d),
)
def test_projected_exhaustion_lies_between_the_last_booked_session_and_the_period_end(
    remaining: int,
    last: date | None,
    per_session: int | None,
    interval: int | None,
    end: date,
) -> None:
    result = projected_exhaustion(remaining, last, per_session, interval, end)
    if result is not None:
        assert last is not None and last <= result <= end


def test_usage_of_the_issues_four_visit_authorization() -> None:
    # One session done, two booked (days 21 and 42), one visit left for day 63.
    u = usage(4, 1, 2, d(42), 1, 21, d(0), d(89), 14, 7)
    assert (u.units_approved, u.units_used, u.units_scheduled, u.units_remaining) == (4, 1, 2, 1)
    assert u.projected_exhaustion == d(63)
    assert u.renew_by == d(63 - 21)


def test_usage_when_bookings_outrun_the_approval() -> None:
    u = usage(4, 2, 3, d(84), 1, 21, d(0), d(89), 14, 7)
    assert u.units_remaining == 0
    assert u.projected_exhaustion == d(84)
    assert u.renew_by == d(84 - 21)


def test_usage_when_the_period_ends_first_renews_from_its_end() -> None:
    u = usage(560, 0, 140, d(0), 140, 28, d(0), d(59), 10, 5)
    assert u.units_remaining == 420 and u.projected_exhaustion is None
    assert u.renew_by == d(59 - 15)


def test_usage_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        usage(4, 0, 0, None, 1, 21, d(10), d(9), 14, 7)
    with pytest.raises(ValueError):
        usage(4, -1, 0, None, 1, 21, d(0), d(9), 14, 7)


# --- status changes --------------------------------------------------------------------------


def test_every_status_has_an_entry_and_every_target_is_a_status() -> None:
    assert set(TRANSITIONS) == set(AUTH_STATUSES)
    for targets in TRANSITIONS.values():
        assert targets <= set(AUTH_STATUSES)
    assert set(APPROVED) | set(WAITING) | set(FINAL) | {"denied"} == set(AUTH_STATUSES)


def test_final_statuses_have_no_way_out_and_nothing_changes_into_itself() -> None:
    for status in FINAL:
        assert TRANSITIONS[status] == frozenset()
    for status in AUTH_STATUSES:
        assert status not in TRANSITIONS[status]
        assert not can_change(status, status)
        if status not in FINAL:
            assert can_change(status, "cancelled")


def test_every_open_status_can_still_end() -> None:
    for start in AUTH_STATUSES:
        seen, frontier = {start}, [start]
        while frontier:
            for nxt in TRANSITIONS[frontier.pop()] - seen:
                seen.add(nxt)
                frontier.append(nxt)
        assert seen & set(FINAL)


def test_can_change_follows_the_table() -> None:
    assert can_change("draft", "submitted")
    assert can_change("pending", "submitted")
    assert can_change("partially_approved", "appealed")
    assert can_change("appealed", "approved")
    assert not can_change("draft", "approved")
    assert not can_change("approved", "appealed")
    assert not can_change("expired", "approved")
    assert not can_change("denied", "approved")
    assert not can_change("nonsense", "draft")
    assert not can_change("draft", "nonsense")
