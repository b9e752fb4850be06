"""Named locks, in the order they must be taken."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from datetime import date

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


async def lock_center_day(session: AsyncSession, center_id: uuid.UUID, day: date) -> None:
    """Serialise capacity decisions for one center and local day until the transaction ends."""
    if session.get_bind().dialect.name != "postgresql":
        return  # SQLite write transactions already hold the database lock.
    await _advisory_lock(session, f"{center_id}/{day.isoformat()}")


async def _advisory_lock(session: AsyncSession, name: str) -> None:
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    key = int.from_bytes(digest, "big", signed=True)
    await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


async def lock_course_planning(session: AsyncSession, center_ids: list[uuid.UUID]) -> None:
    """Serialise course planners (booking runs, cascades, changes to course sessions) at the
    centers. A planner locks several days in an order set by preferences, so two of them could
    otherwise each hold a day the other wants. Taken after the course row and before any day;
    several centers in one order."""
    if session.get_bind().dialect.name != "postgresql":
        return
    for center_id in sorted(set(center_ids)):
        await _advisory_lock(session, f"{center_id}/course-planning")


def _lock_key(patient_id: uuid.UUID) -> int:
    digest = hashlib.blake2b(f"{patient_id}/coverage".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def lock_patient(session: AsyncSession, patient_id: uuid.UUID) -> None:
    """One coverage decision at a time per patient (units are shared between sessions)."""
    if session.get_bind().dialect.name != "postgresql":
        return  # SQLite write transactions already hold the database lock
    await session.execute(
        text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(patient_id)}
    )


async def try_lock_patients(
    session: AsyncSession, patient_ids: Sequence[uuid.UUID]
) -> list[uuid.UUID]:
    """Those of these patients whose coverage lock is free, now locked for this transaction.
    The others are being recomputed by a request at this moment: the sweep leaves them be."""
    if session.get_bind().dialect.name != "postgresql" or not patient_ids:
        return list(patient_ids)
    keys = {_lock_key(p): p for p in patient_ids}
    got = await session.scalars(
        text(
            "SELECT k FROM unnest(CAST(:keys AS bigint[])) AS k "
            "WHERE pg_try_advisory_xact_lock(k) ORDER BY k"
        ),
        {"keys": sorted(keys)},
    )
    return sorted(keys[k] for k in got)
