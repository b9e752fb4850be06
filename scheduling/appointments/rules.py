"""An appointment's own rules as plain functions: how long it may be, on what minutes it
starts, which status each action leads to, and when each action may happen."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from scheduling.localtime import day_bounds, local_date

MAX_APPOINTMENT = timedelta(hours=24)


# Appointment lifecycle: action -> (statuses it may start from, status it leads to).
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "check-in": (frozenset({"booked"}), "checked_in"),
    "start": (frozenset({"checked_in"}), "in_progress"),
    "complete": (frozenset({"in_progress"}), "completed"),
    "cancel": (frozenset({"booked", "checked_in"}), "cancelled"),
    "no-show": (frozenset({"booked"}), "no_show"),
}


def next_status(current: str, action: str) -> str | None:
    """The status `action` leads to from `current`, or None when the move is illegal."""
    sources, target = TRANSITIONS[action]
    return target if current in sources else None


def span_problem(start: datetime, end: datetime) -> str | None:
    if end <= start:
        return "end must be after start"
    if end - start > MAX_APPOINTMENT:
        return "an appointment lasts at most 24 hours"
    if start.second or start.microsecond or end.second or end.microsecond:
        return "appointments start and end on whole minutes"
    return None


def checkin_opens(start: datetime, tz: ZoneInfo, opens_minutes: int) -> datetime:
    """When check-in opens for a visit: `opens_minutes` before its start, but never before the
    visit's local day begins (a patient checks in on the day of the visit, not the night
    before)."""
    day_starts, _ = day_bounds(local_date(start, tz), tz)
    return max(start - timedelta(minutes=opens_minutes), day_starts)


def timing_problem(
    action: str, start: datetime, now: datetime, tz: ZoneInfo, opens_minutes: int
) -> str | None:
    """Why `action` cannot happen now to a visit starting at `start`, or None. Check-in is on
    the visit's local day only: from `opens_minutes` before the start (a late patient still
    checks in) until the day ends."""
    if action == "check-in":
        opens = checkin_opens(start, tz, opens_minutes)
        if now < opens:
            local = opens.astimezone(tz)
            return f"check-in opens at {local:%H:%M} on {local:%Y-%m-%d} (center time)"
        _, day_ends = day_bounds(local_date(start, tz), tz)
        if now >= day_ends:
            return "check-in closed at the end of the visit's day (center time)"
    if action == "no-show" and now < start:
        return "a visit can be marked missed only once its start has passed"
    return None


def past_start_problem(start: datetime, now: datetime, record_reason: str | None) -> str | None:
    """A visit is booked or moved to a start that has passed only to record it after the fact,
    with the reason on its history."""
    if start <= now and not record_reason:
        return "that start has passed; to record a visit after the fact, give record_reason"
    return None
