"""Domain errors. Each carries its HTTP status and problem type; the API renders them as RFC 9457.

This module imports nothing from FastAPI so `scheduling` and `insurance` can raise these.
"""

from __future__ import annotations

from typing import Any

PROBLEM_BASE = "https://chairside.dev/problems/"


class Problem(Exception):
    status = 500
    slug = "internal-error"
    title = "Internal error"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    @property
    def type(self) -> str:
        return PROBLEM_BASE + self.slug


class NotFound(Problem):
    status = 404
    slug = "not-found"
    title = "Not found"


class Invalid(Problem):
    """Well-formed input that breaks a rule (outside opening hours, a closure, a bad time zone)."""

    status = 422
    slug = "invalid"
    title = "Unprocessable request"


class Conflict(Problem):
    status = 409
    slug = "conflict"
    title = "Conflict"


class BookingConflict(Conflict):
    slug = "booking-conflict"
    title = "The slot is taken"


class IllegalTransition(Conflict):
    slug = "illegal-transition"
    title = "Illegal status change"


class OutsideWindow(Conflict):
    """A course session would leave its clinical window (`window_start`, `window_end`)."""

    slug = "outside-window"
    title = "Outside the session's window"


class ProposalStale(Conflict):
    """An optimiser proposal for days that changed since it was made (`changed_days`)."""

    slug = "proposal-stale"
    title = "The schedule changed since this proposal"


class Duplicate(Conflict):
    slug = "duplicate"
    title = "Already exists"


class PreconditionRequired(Problem):
    status = 428
    slug = "precondition-required"
    title = "If-Match required"


class PreconditionFailed(Problem):
    status = 412
    slug = "precondition-failed"
    title = "Stale version"


class Unauthorized(Problem):
    status = 401
    slug = "unauthorized"
    title = "Authentication required"


class TooManyRequests(Problem):
    """Come back in `retry_after` seconds (sent as Retry-After)."""

    status = 429
    slug = "too-many-requests"
    title = "Too many requests"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class Forbidden(Problem):
    status = 403
    slug = "forbidden"
    title = "Not allowed"


def ensure_version(current: int, expected: int, what: str) -> None:
    """Optimistic concurrency: the caller's If-Match must name the version stored now."""
    if current != expected:
        raise PreconditionFailed(f"the {what} changed since you read it; reload and retry")
