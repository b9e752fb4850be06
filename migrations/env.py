"""Alembic environment: runs migrations through the same async engine the service uses."""

from __future__ import annotations

import asyncio
import logging.config

from alembic import context
from sqlalchemy.engine import Connection

from app.models import Base
from app.settings import get_settings
from core.db import create_engine
from core.locks import migration_key

config = context.config
if config.config_file_name is not None and not config.attributes.get("skip_logging"):
    logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _url() -> str:
    url = config.attributes.get("database_url") or get_settings().database_url
    return str(url)


def _run(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # SQLite changes a table by copying it and dropping the original, which rows pointing
        # at it would refuse. Foreign keys are off while migrating (it must be said outside a
        # transaction, so on the driver's connection) and checked before the end.
        _foreign_keys(connection, "OFF")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=sqlite,
        compare_type=True,
    )
    with context.begin_transaction():
        if not sqlite:
            # Two migrators started at once: the second waits here, then finds nothing to do.
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({migration_key()})")
        context.run_migrations()
        if sqlite:
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"migrating left {len(broken)} rows pointing nowhere")
    if sqlite:
        if connection.in_transaction():
            connection.commit()
        _foreign_keys(connection, "ON")


def _foreign_keys(connection: Connection, state: str) -> None:
    if connection.in_transaction():
        raise RuntimeError("foreign keys can only be switched outside a transaction")
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    cursor.execute(f"PRAGMA foreign_keys={state}")
    cursor.close()


async def _run_online() -> None:
    engine = create_engine(_url(), pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    asyncio.run(_run_online())


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `chairside migrate`")
run_migrations_online()
