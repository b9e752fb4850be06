"""How a session's insurance cover is shown on appointments, the day board and the plan."""

from __future__ import annotations

from insurance.allocation import SessionState
from scheduling.appointments.schemas import SessionCoverage


def coverage_out(cover: SessionState | None) -> SessionCoverage | None:
    if cover is None:
        return None
    return SessionCoverage(
        state="covered" if cover.reason is None else "uncovered",
        authorization_id=cover.authorization_id,
        reason=cover.reason,
    )
