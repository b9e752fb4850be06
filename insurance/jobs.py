"""Insurance's background jobs."""

from __future__ import annotations

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
