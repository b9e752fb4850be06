"""Insurance's background jobs."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from core.db import Database
from insurance import worklist


async def lapse_sweep(db: Database) -> dict[str, int]:
    """Recompute the cover and alerts of the patients whose review date has come."""
    outcome, _ = await worklist.sweep(db)
    return {
        "patients": outcome.patients,
        "opened": outcome.opened,
        "updated": outcome.updated,
        "resolved": outcome.resolved,
    }


async def review_now(db: Database, patient_ids: Sequence[uuid.UUID]) -> dict[str, int]:
    """Recompute these patients' cover now (after a booking run), in chunks of their own."""
    outcome = await worklist.recompute_patients(db, sorted(patient_ids))
    return {"patients": outcome.patients, "opened": outcome.opened}
