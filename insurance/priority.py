"""How urgent each item on billing's work queue is, and in what order the queue shows them:
pure rules over plain values, no session, no clock.

The queue is read top down by a biller with a day's worth of calls to make, so the order is:
1. severity: `critical` (act today: the session is days away or past, or a deadline has
   passed), then `warning` (weeks to act), then `info`;
2. within a severity, money at risk, largest first (an alert whose amount is unknown, because
   the drug has no price, counts as nothing at stake and comes last);
3. then the due date, soonest first (for a session, the day it is given);
4. then the alert's id, so every page of the queue is stable.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

SEVERITIES = ("critical", "warning", "info")  # most urgent first

# Whatever the payer, a session this close is days away: there is no time left for the
# ordinary request-and-wait, so billing must act today (an expedited request, a reschedule).
DAYS_AWAY = 7


def critical_window(turnaround_days: int | None) -> int:
    """How many days before an uncovered session it becomes critical: once an authorization
    requested today could not be decided before it (the payer's turnaround), and never less
    than a week."""
    return max(DAYS_AWAY, turnaround_days or 0)


def uncovered_session_severity(days_to_session: int, turnaround_days: int | None) -> str:
    """A booked session nobody will pay for is an unpaid bill of thousands, never mere
    information: `critical` when it is inside the critical window (or already passed),
    otherwise `warning`. `turnaround_days`: that of the payer covering the session's day,
    None when no coverage does."""
    return "critical" if days_to_session <= critical_window(turnaround_days) else "warning"


def queue_key(
    severity: str, amount_at_risk: Decimal | None, due_date: date
) -> tuple[int, Decimal, date]:
    """The sort key of an alert on the work queue (see the module's docstring); the queries
    in `insurance/worklist.py` sort by the same terms."""
    return SEVERITIES.index(severity), -(amount_at_risk or Decimal(0)), due_date
