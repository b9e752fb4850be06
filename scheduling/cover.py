"""Whether insurance would pay for a course session: what a `block` center asks before it keeps
a booking or a move.

Scheduling does not know how cover is decided; insurance provides the answer when it is
loaded (`provide`), and scheduling only asks (`check`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession


class CoverCheck(Protocol):
    async def uncovered(
        self, session: AsyncSession, patient_id: uuid.UUID, *, locked: bool = True
    ) -> dict[uuid.UUID, str]:
        """The patient's booked course sessions no authorization would pay for, and why.
        `locked`: under the patient's cover lock (False: a plain read)."""
        ...

    async def why_uncovered(
        self, session: AsyncSession, patient_id: uuid.UUID, appointment_id: uuid.UUID
    ) -> str | None:
        """Why no authorization would pay for this booked session; None when one would."""
        ...

    async def paid_periods(
        self, session: AsyncSession, appointment_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, tuple[date, date]]:
        """For each of these booked sessions an authorization pays for, that authorization's
        valid period (first and last day): where the session may go and still be paid."""
        ...


_provided: CoverCheck | None = None


def provide(check: CoverCheck) -> None:
    global _provided
    _provided = check


def check() -> CoverCheck:
    if _provided is None:
        raise RuntimeError("no cover check: insurance is not loaded")
    return _provided
