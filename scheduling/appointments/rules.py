"""An appointment's own rules as plain functions: how long it may be, on what minutes it
starts, and which status each action leads to."""

from __future__ import annotations

from datetime import datetime, timedelta

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
