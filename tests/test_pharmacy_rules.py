"""The pharmacy's pure rules: room-temperature expiry, storage and status changes, which lots
are usable, first expiry first out, and drawing vials."""

from __future__ import annotations

from datetime import date, timedelta
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.problems import Conflict, IllegalTransition, Invalid
from pharmacy import rules
from pharmacy.rules import LotFacts

days = st.dates(date(2020, 1, 1), date(2040, 12, 31))
months = st.integers(1, 60)
statuses = st.sampled_from(["available", "quarantined", "recalled"])
storages = st.sampled_from(["refrigerated", "room_temperature"])
lots = st.builds(
    LotFacts,
    lot_number=st.text("ABC123", min_size=1, max_size=4),
    expires_on=days,
    status=statuses,
    vials_on_hand=st.integers(0, 30),
    storage=storages,
)


def test_a_month_later_is_the_same_day_or_the_months_last() -> None:
    assert rules.add_months(date(2027, 1, 11), 6) == date(2027, 7, 11)
    assert rules.add_months(date(2027, 1, 31), 1) == date(2027, 2, 28)
    assert rules.add_months(date(2028, 1, 31), 1) == date(2028, 2, 29)
    assert rules.add_months(date(2027, 11, 30), 3) == date(2028, 2, 29)


@given(days, months)
def test_adding_months_moves_forward_by_about_that_many_months(day: date, n: int) -> None:
    later = rules.add_months(day, n)
    assert (later.year - day.year) * 12 + later.month - day.month == n
    assert later.day <= day.day
    assert rules.add_months(day, n + 1) > later


@given(days, days, months)
def test_room_temperature_only_ever_shortens_the_expiry(
    expires_on: date, moved_on: date, n: int
) -> None:
    new = rules.room_temperature_expiry(expires_on, moved_on, n)
    assert new <= expires_on
    assert new <= rules.add_months(moved_on, n)
    assert new in (expires_on, rules.add_months(moved_on, n))
    # Moved later, it never expires earlier.
    assert rules.room_temperature_expiry(expires_on, moved_on + timedelta(days=1), n) >= new


@given(days, days)
def test_a_product_without_a_room_temperature_allowance_cannot_leave_the_fridge(
    expires_on: date, moved_on: date
) -> None:
    with pytest.raises(Invalid):
        rules.room_temperature_expiry(expires_on, moved_on, None)


@given(storages)
def test_a_vial_never_goes_back_to_the_fridge(current: str) -> None:
    if current == "room_temperature":
        with pytest.raises(IllegalTransition):
            rules.check_storage_change(current, "refrigerated")
        assert rules.check_storage_change(current, "room_temperature") is False
    else:
        assert rules.check_storage_change(current, "room_temperature") is True
        assert rules.check_storage_change(current, "refrigerated") is False


@given(statuses, statuses)
def test_a_recall_is_final_and_a_quarantine_is_not(current: str, wanted: str) -> None:
    if current == "recalled" and wanted != "recalled":
        with pytest.raises(IllegalTransition):
            rules.check_status_change(current, wanted)
    else:
        assert rules.check_status_change(current, wanted) is (current != wanted)


@given(lots, days)
def test_usable_means_available_in_date_and_with_a_vial_left(lot: LotFacts, on: date) -> None:
    expected = lot.status == "available" and on <= lot.expires_on and lot.vials_on_hand > 0
    assert rules.usable(lot, on) is expected
    assert (rules.unusable_reason(lot, on) is None) is expected


@given(lots)
def test_a_lot_may_be_used_on_its_expiry_day_and_not_the_day_after(lot: LotFacts) -> None:
    fresh = LotFacts(lot.lot_number, lot.expires_on, "available", max(lot.vials_on_hand, 1))
    assert rules.usable(fresh, lot.expires_on)
    assert not rules.usable(fresh, lot.expires_on + timedelta(days=1))


@given(st.lists(lots, max_size=12), days)
def test_first_expiry_first_out(stock: list[LotFacts], on: date) -> None:
    ordered = rules.fefo(stock)
    assert sorted(ordered, key=repr) == sorted(stock, key=repr)  # the same lots
    assert all(a.expires_on <= b.expires_on for a, b in pairwise(ordered))
    usable = rules.usable_in_order(stock, on)
    assert usable == [lot for lot in ordered if rules.usable(lot, on)]
    if usable:
        # None usable expires before the one used first.
        assert all(usable[0].expires_on <= lot.expires_on for lot in stock if rules.usable(lot, on))


@given(lots, st.integers(1, 40), days)
def test_drawing_never_leaves_less_than_nothing(lot: LotFacts, vials: int, on: date) -> None:
    if rules.usable(lot, on) and vials <= lot.vials_on_hand:
        left = rules.draw(lot, vials, on)
        assert left == lot.vials_on_hand - vials and left >= 0
    else:
        with pytest.raises(Conflict):
            rules.draw(lot, vials, on)
