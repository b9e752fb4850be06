"""How a session's insurance cover is shown on appointments, the day board and the plan."""

from __future__ import annotations

from insurance.allocation import SessionPayment
from scheduling.appointments.schemas import SessionPaymentOut


def coverage_out(cover: SessionPayment | None) -> SessionPaymentOut | None:
    if cover is None:
        return None
    return SessionPaymentOut(
        state="covered" if cover.reason is None else "uncovered",
        authorization_id=cover.authorization_id,
        reason=cover.reason,
    )
