"""The in-process tier: service code run against a migrated database of each kind, inside a
transaction that is rolled back when the test ends, so tests leave nothing behind and need
no server. Use cases flush and never commit, so everything they do is visible inside the
transaction and gone after it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from app.migrate import upgrade
from core.db import Database
from tests.support.databases import drop_database, fresh_database

T = TypeVar("T")


def migrated_database(kind: str, tmp: Path) -> Iterator[str]:
    """A fresh database of `kind` at the latest revision, dropped afterwards (a fixture body)."""
    url = fresh_database(kind, tmp)
    try:
        upgrade(url)
        yield url
    finally:
        drop_database(url)


@asynccontextmanager
async def rolled_back(db: Database) -> AsyncIterator[AsyncSession]:
    """A session in a transaction that never commits: on leaving, it is rolled back. A
    savepoint stands in for any transaction the code under test begins itself."""
    async with db.engine.connect() as connection:
        transaction = await connection.begin()
        session = AsyncSession(
            bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
        )
        try:
            yield session
        finally:
            await session.close()
            await transaction.rollback()


def in_transaction(url: str, body: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `body` in a rolled-back transaction on the database at `url`."""

    async def run() -> T:
        db = Database(url)
        try:
            async with rolled_back(db) as session:
                return await body(session)
        finally:
            await db.dispose()

    return asyncio.run(run())
