"""The clock: instants are always timezone-aware UTC.

Every rule that depends on "now" (check-in windows, past starts, no-show, lapses) asks this
module. Tests that need a session to be due without waiting for it shift the clock of one
request (`shifted`); servers honour that only when started with the test clock, which the
settings refuse outside the test environment.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime, timedelta, tzinfo

_shift: ContextVar[timedelta] = ContextVar("chairside_clock_shift", default=timedelta(0))


def utcnow() -> datetime:
    return datetime.now(UTC) + _shift.get()


def wall_now() -> datetime:
    """The real time, never shifted: for security timers (token lifetimes and idle limits,
    sign-in throttling, calendar-feed revocation), the audit trail's timestamps, and the
    machinery (job runs and their leases, webhook deliveries), which no request may move."""
    return datetime.now(UTC)


def today(tz: tzinfo) -> date:
    """Today's date in a time zone."""
    return utcnow().astimezone(tz).date()


@contextmanager
def shifted(now: datetime) -> Iterator[None]:
    """Within the block, the clock reads `now` (and runs on from there)."""
    token = _shift.set(now - datetime.now(UTC))
    try:
        yield
    finally:
        _shift.reset(token)
