"""Rows held until the commit (core/appends.py) are written exactly once, on both databases: at
the commit, or with the statement they ride; never when the transaction or the savepoint they
were added in rolls back; and a savepoint's rollback never takes what was added before it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from app.audit.models import AuditEvent
from core import appends
from core.db import Database
from core.outbox.models import OutboxEvent


@pytest.fixture
def db(migrated_url: str) -> Iterator[Database]:
    database = Database(migrated_url)
    yield database
    asyncio.run(database.dispose())


def _event(kind: str) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "type": kind,
        "occurred_at": datetime.now(UTC),
        "data": {"n": 1},
        "dedupe_key": None,
        "fanned_out": False,
    }


def _audit(request_id: str) -> dict[str, Any]:
    return {
        "id": uuid.uuid4(),
        "at": datetime.now(UTC),
        "actor_id": None,
        "role": "admin",
        "action": "read",
        "patient_id": None,
        "resource_type": "patient",
        "resource_id": None,
        "outcome": "success",
        "request_id": request_id,
        "client": None,
    }


async def _count(db: Database, kind: str) -> int:
    async with db.unit_of_work(write=False) as session:
        return int(
            await session.scalar(
                select(func.count()).select_from(OutboxEvent).where(OutboxEvent.type == kind)
            )
            or 0
        )


def test_held_rows_are_written_at_the_commit_and_dropped_with_a_rollback(db: Database) -> None:
    kind = f"test.{uuid.uuid4().hex[:8]}"

    async def run() -> tuple[int, int, int]:
        async with db.unit_of_work() as session:
            await appends.add(session, OutboxEvent, _event(kind))
            await appends.add_all(session, OutboxEvent, [_event(kind), _event(kind)])
            held = await session.scalar(
                select(func.count()).select_from(OutboxEvent).where(OutboxEvent.type == kind)
            )
        committed = await _count(db, kind)
        with pytest.raises(RuntimeError):
            async with db.unit_of_work() as session:
                await appends.add(session, OutboxEvent, _event(kind))
                raise RuntimeError("the request failed")
        return int(held or 0), committed, await _count(db, kind)

    held, committed, after_rollback = asyncio.run(run())
    assert held == 0  # not written until the commit
    assert committed == 3
    assert after_rollback == 3


def test_a_savepoint_rollback_takes_its_own_rows_and_leaves_the_earlier_ones(
    db: Database,
) -> None:
    before, inside, kept = (f"test.{uuid.uuid4().hex[:8]}" for _ in range(3))

    async def run() -> tuple[int, int, int]:
        async with db.unit_of_work() as session:
            await appends.add(session, OutboxEvent, _event(before))
            savepoint = await session.begin_nested()
            await appends.add(session, OutboxEvent, _event(inside))
            await savepoint.rollback()
            async with session.begin_nested():  # released: its row stays
                await appends.add(session, OutboxEvent, _event(kept))
        return await _count(db, before), await _count(db, inside), await _count(db, kept)

    assert asyncio.run(run()) == (1, 0, 1)


def test_rows_of_several_tables_ride_a_read_once(db: Database) -> None:
    kind, request_id = f"test.{uuid.uuid4().hex[:8]}", uuid.uuid4().hex

    async def run() -> tuple[int, int, int]:
        async with db.unit_of_work() as session:
            await appends.add(session, OutboxEvent, _event(kind))
            await appends.add(session, AuditEvent, _audit(request_id))
            await appends.add(session, OutboxEvent, _event(kind))
            query, params = appends.riding(
                session, select(func.count()).select_from(OutboxEvent), {}
            )
            rode = "WITH" in str(query)
            await session.execute(query, params)
        async with db.unit_of_work(write=False) as session:
            audits = await session.scalar(
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.request_id == request_id)
            )
        return int(rode), await _count(db, kind), int(audits or 0)

    rode, events, audits = asyncio.run(run())
    assert rode == (db.dialect == "postgresql")  # SQLite writes them at the commit instead
    assert (events, audits) == (2, 1)  # once each, whichever way


def test_a_statement_that_fails_takes_the_rows_riding_it(db: Database) -> None:
    kind = f"test.{uuid.uuid4().hex[:8]}"

    async def run() -> int:
        with pytest.raises(Exception):  # noqa: B017 - the database's own error, either kind
            async with db.unit_of_work() as session:
                await appends.add(session, OutboxEvent, _event(kind))
                # A second row under the first's id: the statement fails as a whole.
                duplicate = _event(kind)
                await appends.add(session, OutboxEvent, duplicate)
                await appends.add(session, OutboxEvent, {**_event(kind), "id": duplicate["id"]})
        return await _count(db, kind)

    assert asyncio.run(run()) == 0


def test_on_postgresql_the_held_rows_are_one_statement() -> None:
    pending = [
        (OutboxEvent, _event("a")),
        (AuditEvent, _audit("r")),
        (OutboxEvent, _event("b")),
    ]
    ((statement, params),) = appends.statements("postgresql", pending)
    sql = str(statement)
    assert sql.startswith("WITH append_0 AS") and sql.count("INSERT INTO") == 3
    assert params["append_1_request_id"] == "r" and params["append_2_type"] == "b"
    # The same shape: the same statement, so SQLAlchemy compiles it once.
    assert appends.statements("postgresql", pending)[0][0] is statement
    assert statement._generate_cache_key() is not None
    by_table = appends.statements("sqlite", pending)
    assert [len(rows) for _, rows in by_table] == [2, 1]
    many = [(OutboxEvent, _event("c")) for _ in range(appends.ONE_STATEMENT_MOST + 1)]
    assert [len(rows) for _, rows in appends.statements("postgresql", many)] == [len(many)]
