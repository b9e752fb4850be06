"""What a running server has stored, read straight from its database."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from app.audit.models import AuditEvent
from core.db import Database
from tests.support.servers import Server


def audit_rows(server: Server) -> int:
    """How many events the server's audit trail holds."""

    async def count() -> int:
        db = Database(server.database_url)
        try:
            async with db.unit_of_work(write=False) as session:
                return int(await session.scalar(select(func.count()).select_from(AuditEvent)) or 0)
        finally:
            await db.dispose()

    return asyncio.run(count())


def audit_request_ids(server: Server, role: str, outcome: str) -> set[str]:
    """The request ids of the events the server's audit trail holds for `role` and `outcome`."""

    async def read() -> set[str]:
        db = Database(server.database_url)
        try:
            async with db.unit_of_work(write=False) as session:
                rows = await session.scalars(
                    select(AuditEvent.request_id).where(
                        AuditEvent.role == role, AuditEvent.outcome == outcome
                    )
                )
                return set(rows)
        finally:
            await db.dispose()

    return asyncio.run(read())
