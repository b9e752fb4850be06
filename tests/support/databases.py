"""Fresh databases of either kind: tests and benchmarks never rely on leftovers."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url


def postgres_admin_url() -> str | None:
    return os.environ.get("CHAIRSIDE_TEST_POSTGRES_URL") or None


def backends() -> list[str]:
    return ["sqlite", "postgresql"] if postgres_admin_url() else ["sqlite"]


def _pg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _pg_admin(admin: str, sql: str) -> None:
    # CREATE/DROP DATABASE cannot run inside a transaction block: plain asyncpg, autocommit.
    conn = await asyncpg.connect(_pg_dsn(admin))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def fresh_database(
    kind: str, tmp: Path, admin: str | None = None, prefix: str = "chairside_test"
) -> str:
    """A new, empty database of `kind`; tests and benchmarks never rely on leftovers."""
    if kind == "sqlite":
        return f"sqlite:///{tmp / f'{prefix}-{uuid.uuid4().hex[:8]}.db'}"
    admin = admin or postgres_admin_url()
    assert admin is not None, "set CHAIRSIDE_TEST_POSTGRES_URL"
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_admin(admin, f'CREATE DATABASE "{name}"'))
    return make_url(admin).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str, admin: str | None = None) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        admin = admin or postgres_admin_url()
        assert admin is not None, "set CHAIRSIDE_TEST_POSTGRES_URL"
        asyncio.run(_pg_admin(admin, f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
