"""The pharmacy's rules over plain values: room-temperature expiry, what may change on a lot,
which lots are usable, first expiry first out, and drawing vials. No session, no clock."""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import TypeVar

from core.problems import Conflict, IllegalTransition, Invalid


@dataclass(frozen=True)
class LotFacts:
    """What the rules need to know of a lot."""

    lot_number: str
    expires_on: date
    status: str  # available, quarantined, recalled
    vials_on_hand: int
    storage: str = "refrigerated"  # or room_temperature


L = TypeVar("L", bound=LotFacts)


def add_months(day: date, months: int) -> date:
    """The same day `months` calendar months later, or the month's last day when it has no
    such day (31 January + 1 month = 28 or 29 February)."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def room_temperature_expiry(expires_on: date, moved_on: date, months: int | None) -> date:
    """The expiry written on the pack when a lot leaves the fridge on `moved_on`: the label's
    room-temperature allowance from that day, never later than the expiry it had."""
    if months is None:
        raise Invalid("this product must stay refrigerated: it has no room-temperature allowance")
    return min(expires_on, add_months(moved_on, months))


def check_storage_change(current: str, wanted: str) -> bool:
    """Whether the storage changes (refrigerated to room temperature). A vial never goes
    back to the fridge (409)."""
    if current == wanted:
        return False
    if current == "room_temperature":
        raise IllegalTransition("a vial never goes back to the fridge once at room temperature")
    return True


def check_status_change(current: str, wanted: str) -> bool:
    """Whether the status changes. A lot may be quarantined and released again; a recall is
    final (409 on any change after it)."""
    if current == wanted:
        return False
    if current == "recalled":
        raise IllegalTransition("a recalled lot stays recalled")
    return True


def unusable_reason(lot: LotFacts, on: date) -> str | None:
    """Why no vial of the lot may be given on `on`, or None when one may."""
    if lot.status != "available":
        return f"the lot is {lot.status}"
    if lot.expires_on < on:
        return f"the lot expired on {lot.expires_on.isoformat()}"
    if lot.vials_on_hand <= 0:
        return "no vial of the lot is left"
    return None


def usable(lot: LotFacts, on: date) -> bool:
    """Available, not expired on the day of use (its expiry day is its last day), and with a
    vial left."""
    return unusable_reason(lot, on) is None


def fefo(lots: Iterable[L]) -> list[L]:
    """First expiry, first out: the lot that expires first is used first; at the same expiry,
    by lot number."""
    return sorted(lots, key=lambda lot: (lot.expires_on, lot.lot_number))


def usable_in_order(lots: Iterable[L], on: date) -> list[L]:
    """The lots usable on `on`, the one to use first first."""
    return fefo(lot for lot in lots if usable(lot, on))


def draw(lot: LotFacts, vials: int, on: date) -> int:
    """The vials left after giving `vials` of the lot on `on` (409 when the lot is unusable or
    has fewer vials on hand)."""
    if vials <= 0:
        raise Invalid("give at least one vial")
    why = unusable_reason(lot, on)
    if why is not None:
        raise Conflict(f"lot {lot.lot_number}: {why}")
    if vials > lot.vials_on_hand:
        raise Conflict(
            f"lot {lot.lot_number}: {vials} vial(s) asked for, {lot.vials_on_hand} on hand"
        )
    return lot.vials_on_hand - vials
