"""Database engine, sessions, the unit of work and the column types every domain shares.

SQLite is the embedded default and PostgreSQL the production database; the same models and
migrations serve both. On SQLite every write transaction takes the database lock up front
(BEGIN IMMEDIATE) so a check followed by an insert cannot race another writer.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, MetaData, event
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator, Uuid

from core.clock import utcnow
from core.outages import CommitOutcomeUnknown, lost_in_commit
from core.settle import forget, settle

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Instant(TypeDecorator[datetime]):
    """A point in time, stored in UTC, always returned timezone-aware.

    PostgreSQL keeps it as timestamptz. SQLite has no such type, so the value is stored as naive
    UTC text, which sorts and compares correctly as text (the overlap triggers rely on that).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; give an offset")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class IdMixin:
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(Instant, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(Instant, default=utcnow, onupdate=utcnow)


def async_url(url: str) -> str:
    """Accept the standard URL forms and pick the async driver ourselves."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgresql" and parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    elif backend == "sqlite" and parsed.drivername == "sqlite":
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    return parsed.render_as_string(hide_password=False)


def _prepare_sqlite_file(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:" and not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)


def create_engine(url: str, *, pool_size: int = 10, max_overflow: int = 20) -> AsyncEngine:
    url = async_url(url)
    if make_url(url).get_backend_name() == "sqlite":
        _prepare_sqlite_file(url)
        engine = create_async_engine(
            url, pool_size=pool_size, max_overflow=max_overflow, hide_parameters=True
        )
        _configure_sqlite(engine)
        return engine
    # No pre-ping: it costs a round trip per checkout; a connection found dead is discarded
    # on its first error and long-idle ones are recycled.
    return create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_recycle=1800,
        hide_parameters=True,  # statement values are patient data: keep them out of errors
    )


def _configure_sqlite(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


_EACH_ON_ITS_OWN = {"isolation_level": "AUTOCOMMIT"}
_holding_write_queue: ContextVar[bool] = ContextVar("holding_write_queue", default=False)


class Database:
    """The engine plus two session factories: read-only work and write work.

    Write sessions take SQLite's write lock when they begin; on PostgreSQL both are the same.
    """

    def __init__(self, url: str, *, pool_size: int = 40, max_overflow: int = 0) -> None:
        self.engine = create_engine(url, pool_size=pool_size, max_overflow=max_overflow)
        self.dialect = self.engine.dialect.name
        writer = self.engine.execution_options(sqlite_begin="IMMEDIATE")
        self.read_sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self.write_sessions = async_sessionmaker(writer, expire_on_commit=False)
        # SQLite has one writer at a time and its busy handler retries in no particular order,
        # so a few unlucky writers wait seconds. Queue this process's writers first-come
        # first-served instead; other processes still meet at the database lock.
        self._write_queue: asyncio.Lock | None = (
            asyncio.Lock() if self.dialect == "sqlite" else None
        )

    @asynccontextmanager
    async def unit_of_work(
        self, *, write: bool = True, statements: bool = False
    ) -> AsyncIterator[AsyncSession]:
        """One transaction: committed when the block succeeds, once what its changes imply
        is settled (`core.settle`); rolled back when it raises. A PostgreSQL connection lost
        while committing raises `CommitOutcomeUnknown` (`core.outages`): saved or not, the
        caller cannot know.

        Do not open a write unit of work inside another one: on SQLite the inner one would
        wait for the outer one's lock.

        `statements`, for a read that takes no locks and no savepoints: on PostgreSQL its
        statements run each on its own (autocommit), which spares the BEGIN and COMMIT round
        trips; under READ COMMITTED each statement sees a snapshot of its own in a
        transaction too. What it adds (its audit event) is written by one more statement.
        """
        committing = False
        try:
            async with AsyncExitStack() as stack:
                if write and self._write_queue is not None:
                    if _holding_write_queue.get():
                        raise RuntimeError("a write unit of work inside another would wait")
                    await stack.enter_async_context(self._write_queue)
                    _holding_write_queue.set(True)
                    stack.callback(_holding_write_queue.set, False)
                factory = self.write_sessions if write else self.read_sessions
                session = await stack.enter_async_context(factory())
                await stack.enter_async_context(session.begin())
                if statements and not write and self.dialect == "postgresql":
                    await session.connection(execution_options=_EACH_ON_ITS_OWN)
                try:
                    yield session
                    await settle(session)  # what the changes imply commits with them
                except BaseException:
                    forget(session)
                    raise
                committing = write  # the stack's exit commits
        except Exception as exc:
            if committing and lost_in_commit(exc):
                raise CommitOutcomeUnknown() from exc
            raise

    async def dispose(self) -> None:
        await self.engine.dispose()
