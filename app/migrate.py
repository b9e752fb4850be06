"""Applying the Alembic migrations from code (CLI, tests, `make run`)."""

from __future__ import annotations

import asyncio
from functools import lru_cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

import migrations
from core.db import Database

# Where the installed package is, so an installed wheel migrates as a checkout does;
# alembic.ini only serves the `alembic` command in a checkout.
SCRIPTS = Path(migrations.__file__).resolve().parent


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    config.attributes["database_url"] = database_url
    config.attributes["skip_logging"] = True
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


@lru_cache
def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


async def database_revision(database_url: str) -> str | None:
    """The revision the database is at (None: never migrated)."""
    db = Database(database_url, pool_size=1, max_overflow=0)

    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    try:
        async with db.engine.connect() as connection:
            return await connection.run_sync(read)
    finally:
        await db.dispose()


def behind(database_url: str) -> str | None:
    """Why the database cannot serve this code yet, or None when it is at the latest revision."""
    current = asyncio.run(database_revision(database_url))
    if current == head_revision():
        return None
    return (
        f"the database is at revision {current or 'none'} and this code needs "
        f"{head_revision()}: run `chairside migrate` first (once per deploy)"
    )
