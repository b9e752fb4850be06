"""Throwing away what no longer serves: failed sign-ins older than the throttle looks back.

Sign-in throttling only counts failures inside its window; rows older than that are kept a
day more (for whoever looks into an attack) and then deleted, so guessing with made-up
accounts cannot grow the table without end.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete

from app.auth.models import SignInFailure
from app.settings import get_settings
from core.clock import wall_now
from core.db import Database

KEEP_BEYOND_WINDOW = timedelta(days=1)


async def housekeeping(db: Database) -> dict[str, int]:
    window = timedelta(minutes=get_settings().sign_in_window_minutes)
    before = wall_now() - window - KEEP_BEYOND_WINDOW
    async with db.unit_of_work() as session:
        result = await session.execute(delete(SignInFailure).where(SignInFailure.at < before))
    return {"sign_in_failures_deleted": int(result.rowcount or 0)}  # type: ignore[attr-defined]
