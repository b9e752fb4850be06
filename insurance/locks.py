"""One coverage decision at a time per patient."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence

from sqlalchemy import (
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession


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
