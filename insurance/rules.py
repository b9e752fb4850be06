"""Pre-authorization rules as plain functions: which authorization pays for which session,
how fast its units go, and when to ask the payer for a renewal.

No database, no clock: callers pass the sessions (`Need`), the authorizations (`Grant`) and
today's numbers as plain values. Days are local calendar dates, inclusive at both ends, as
payers write them on the approval letter.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Literal

UnitsType = Literal["visits", "billing_units"]

APPROVED = ("approved", "partially_approved")
WAITING = ("draft", "submitted", "pending", "appealed")
AUTH_STATUSES = (
    "draft",
    "submitted",
    "pending",
    "approved",
    "partially_approved",
    "denied",
    "appealed",
    "expired",
    "exhausted",
    "cancelled",
)

TRANSITIONS: dict[str, frozenset[str]] = {
    "draft": frozenset({"submitted", "cancelled"}),
    # A pending request can go back to submitted when the payer asks for more documents.
    "submitted": frozenset({"pending", "approved", "partially_approved", "denied", "cancelled"}),
    "pending": frozenset({"submitted", "approved", "partially_approved", "denied", "cancelled"}),
    "approved": frozenset({"expired", "exhausted", "cancelled"}),
    # Only a partial approval or a denial is worth appealing; a full approval has nothing left
    # to ask for.
    "partially_approved": frozenset({"appealed", "expired", "exhausted", "cancelled"}),
    "denied": frozenset({"appealed", "cancelled"}),
    "appealed": frozenset({"approved", "partially_approved", "denied", "cancelled"}),
    # Final: a new period or more units is a new authorization, so the history stays readable.
    "expired": frozenset(),
    "exhausted": frozenset(),
    "cancelled": frozenset(),
}

UNCOVERED_REASONS = (
    "no_authorization",
    "outside_period",
    "units_exhausted",
    "authorization_denied",
    "authorization_pending",
)

# Statuses that once paid for sessions: a session outside their dates is "outside the period"
# rather than "no authorization", which tells the clerk a renewal (not a first request) is due.
_ONCE_APPROVED = (*APPROVED, "expired", "exhausted")
# An authorization marked exhausted still names the right service and dates; a session it can
# no longer pay for lacks units, not a period.
_OUT_OF_UNITS = (*APPROVED, "exhausted")


def can_change(from_status: str, to_status: str) -> bool:
    return from_status != to_status and to_status in TRANSITIONS.get(from_status, frozenset())


def session_units(units_type: UnitsType, dose_g: Decimal | None, billing_unit_mg: int) -> int:
    """Units one session takes from an authorization.

    Billing units round up: the payer is billed for every started unit, so a 70.01 g dose at
    500 mg per unit is 141 units. The arithmetic is on exact integer ratios because a float
    or a rounded Decimal division could turn an exact 140 into 141.
    """
    if units_type == "visits":
        return 1
    if dose_g is None:
        raise ValueError("billing units need the session's dose")
    if billing_unit_mg <= 0:
        raise ValueError("the billing unit must be a positive number of mg")
    if not dose_g.is_finite() or dose_g <= 0:
        raise ValueError("the dose must be a positive number of grams")
    numerator, denominator = dose_g.as_integer_ratio()
    return -(-(numerator * 1000) // (denominator * billing_unit_mg))


def units_label(units_type: UnitsType, billing_unit_mg: int | None) -> str:
    """What an authorization's units are, in the payer's words: a visit is a visit, but a
    billing unit means nothing to a clerk comparing it with the approval letter unless its
    size is said (a 500 mg IVIG unit is not a 10 mg infliximab one). `billing_unit_mg`: None
    when no session says which drug it is."""
    if units_type == "visits":
        return "visits"
    return f"billing units ({billing_unit_mg} mg)" if billing_unit_mg else "billing units"


@dataclass(frozen=True)
class Need:
    """One booked session that needs an authorization to be paid."""

    appointment_id: uuid.UUID
    day: date
    service_code: str
    course_id: uuid.UUID | None
    dose_g: Decimal | None
    billing_unit_mg: int


@dataclass(frozen=True)
class Grant:
    """One authorization as it stands today."""

    authorization_id: uuid.UUID
    status: str
    service_code: str
    course_id: uuid.UUID | None  # None: any course of the patient for this service
    valid_from: date
    valid_to: date
    units_type: UnitsType
    units_left: int  # approved minus what completed sessions already consumed


@dataclass(frozen=True)
class Allocation:
    appointment_id: uuid.UUID
    authorization_id: uuid.UUID | None
    units: int  # taken from that authorization; 0 when uncovered
    reason: str | None  # None when covered, else one of UNCOVERED_REASONS


def _applies(grant: Grant, need: Need) -> bool:
    # Codes are stored upper-case (the API accepts only [A-Z][0-9]{4}): compared as they are,
    # since this runs for every session and authorization of every patient in a sweep.
    return grant.service_code == need.service_code and (
        grant.course_id is None or grant.course_id == need.course_id
    )


def _valid_on(grant: Grant, day: date) -> bool:
    return grant.valid_from <= day <= grant.valid_to


def allocate(needs: Sequence[Need], grants: Sequence[Grant]) -> list[Allocation]:
    """Which authorization pays for each session, in (day, appointment) order.

    Earlier sessions are served first, each from the applicable authorization that expires
    soonest, so units that would lapse unused are spent before units that last longer.
    Greedy, not optimal: a session is never split over two authorizations, and a large dose
    early on may take units a later, smaller one could have used.

    Raises ValueError when two grants share an authorization id (their units would be counted
    twice), or when a billing-unit authorization could pay for a session without a usable dose.
    """
    ids = [g.authorization_id for g in grants]
    if len(set(ids)) != len(ids):
        raise ValueError("each authorization may appear only once")
    left = {g.authorization_id: g.units_left for g in grants}
    covers: list[Allocation] = []
    # Which grants apply depends only on the session's service and course: worked out once
    # for each, since this runs for every session of every patient in a sweep.
    applicable_to: dict[tuple[str, uuid.UUID | None], list[Grant]] = {}
    for need in sorted(needs, key=_in_order):
        key = (need.service_code, need.course_id)
        applicable = applicable_to.get(key)
        if applicable is None:
            applicable = applicable_to[key] = [g for g in grants if _applies(g, need)]
        # The candidate that expires soonest (then the lowest id), the first such one found.
        chosen: Grant | None = None
        chosen_units = 0
        for grant in applicable:
            if grant.status not in APPROVED or not _valid_on(grant, need.day):
                continue
            if left[grant.authorization_id] <= 0:
                continue
            try:
                units = session_units(grant.units_type, need.dose_g, need.billing_unit_mg)
            except ValueError as exc:
                raise ValueError(f"appointment {need.appointment_id}: {exc}") from exc
            if units <= left[grant.authorization_id] and (
                chosen is None
                or (grant.valid_to, grant.authorization_id)
                < (chosen.valid_to, chosen.authorization_id)
            ):
                chosen, chosen_units = grant, units
        if chosen is not None:
            left[chosen.authorization_id] -= chosen_units
            covers.append(
                Allocation(need.appointment_id, chosen.authorization_id, chosen_units, None)
            )
        else:
            covers.append(
                Allocation(need.appointment_id, None, 0, _why_uncovered(need, applicable))
            )
    return covers


def _in_order(need: Need) -> tuple[date, uuid.UUID]:
    return need.day, need.appointment_id


def _why_uncovered(need: Need, applicable: Sequence[Grant]) -> str:
    """The most useful thing to tell the clerk, most actionable first: top up an authorization
    that covers the day, appeal a denial, chase a pending request, renew, or request one."""
    on_day = {g.status for g in applicable if _valid_on(g, need.day)}
    if on_day.intersection(_OUT_OF_UNITS):
        return "units_exhausted"
    if "denied" in on_day:
        return "authorization_denied"
    if on_day.intersection(WAITING):
        return "authorization_pending"
    if any(g.status in _ONCE_APPROVED for g in applicable):
        return "outside_period"
    return "no_authorization"


@dataclass(frozen=True)
class Usage:
    units_approved: int
    units_used: int  # consumed by completed sessions
    units_scheduled: int  # taken by booked future sessions
    units_remaining: int  # approved - used - scheduled, never below 0
    projected_exhaustion: date | None
    renew_by: date | None


def projected_exhaustion(
    remaining_after_scheduled: int,
    last_scheduled: date | None,
    units_per_session: int | None,
    interval_days: int | None,
    valid_to: date,
) -> date | None:
    """The day of the last session the authorization can pay for at the planned pace, or None
    when the period ends first (or nothing says when the units run out).

    After the last booked session, the units left pay for `remaining // units_per_session`
    more sessions, one every `interval_days`. Without a known pace, the only thing certain is
    that units below one session's worth run out at the last booked session.
    """
    if (
        units_per_session is None
        or units_per_session <= 0
        or interval_days is None
        or interval_days <= 0
    ):
        one_session = units_per_session if units_per_session and units_per_session > 0 else 1
        if remaining_after_scheduled >= one_session:
            return None
        exhaustion = last_scheduled
    elif last_scheduled is None:
        # Nothing booked yet: no anchor for the pace, so no date to promise.
        return None
    else:
        more_sessions = max(0, remaining_after_scheduled) // units_per_session
        exhaustion = last_scheduled + timedelta(days=more_sessions * interval_days)
    if exhaustion is None or exhaustion > valid_to:
        return None
    return exhaustion


def renew_by(
    valid_to: date, exhaustion: date | None, turnaround_days: int, margin_days: int
) -> date:
    """The last day to send a renewal so the payer's answer arrives, with some margin, before
    the authorization stops paying (its end date or the day its units run out)."""
    if turnaround_days < 0 or margin_days < 0:
        raise ValueError("turnaround and margin are counts of days, not negative")
    stops = valid_to if exhaustion is None else min(valid_to, exhaustion)
    return stops - timedelta(days=turnaround_days + margin_days)


def usage(
    units_approved: int,
    units_used: int,
    units_scheduled: int,
    last_scheduled: date | None,
    units_per_session: int | None,
    interval_days: int | None,
    valid_from: date,
    valid_to: date,
    turnaround_days: int,
    margin_days: int,
) -> Usage:
    if valid_from > valid_to:
        raise ValueError("the authorization period ends before it starts")
    if min(units_approved, units_used, units_scheduled) < 0:
        raise ValueError("unit counts cannot be negative")
    # Sessions completed or booked beyond the approval are a billing problem to flag, not a
    # negative balance to carry into the forecast.
    remaining = max(0, units_approved - units_used - units_scheduled)
    exhaustion = projected_exhaustion(
        remaining, last_scheduled, units_per_session, interval_days, valid_to
    )
    return Usage(
        units_approved=units_approved,
        units_used=units_used,
        units_scheduled=units_scheduled,
        units_remaining=remaining,
        projected_exhaustion=exhaustion,
        renew_by=renew_by(valid_to, exhaustion, turnaround_days, margin_days),
    )
