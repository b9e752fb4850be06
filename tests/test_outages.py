"""Which failures are outages (503 with Retry-After) and which are bugs (500), told from
real errors raised by the real drivers; and a commit whose connection went is "unknown"."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from core.db import Database
from core.outages import CommitOutcomeUnknown, Outage, classify
from tests.support.databases import drop_database, fresh_database, postgres_admin_url
from tests.support.faults import TcpRelay

needs_postgres = pytest.mark.skipif(postgres_admin_url() is None, reason="needs PostgreSQL")


def sqlite_error(path: Path | str, *statements: str, uri: bool = False) -> sqlite3.Error:
    with pytest.raises(sqlite3.Error) as caught:
        connection = sqlite3.connect(str(path), timeout=0, uri=uri, isolation_level=None)
        try:
            for statement in statements:
                connection.execute(statement)
        finally:
            connection.close()
    return caught.value


def test_sqlite_locked_is_busy_read_only_is_unavailable_and_bad_sql_is_a_bug(
    tmp_path: Path,
) -> None:
    path = tmp_path / "x.db"
    holder = sqlite3.connect(str(path), isolation_level=None)
    holder.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    holder.execute("BEGIN IMMEDIATE")
    try:
        assert classify(sqlite_error(path, "BEGIN IMMEDIATE")) is Outage.BUSY
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    read_only = f"file:{path}?mode=ro"
    assert classify(sqlite_error(read_only, "INSERT INTO t VALUES (1)", uri=True)) is (
        Outage.UNAVAILABLE
    )
    assert classify(sqlite_error(path, "SELECT * FROM missing")) is None
    assert (
        classify(sqlite_error(path, "INSERT INTO t VALUES (1)", "INSERT INTO t VALUES (1)")) is None
    )
    assert classify(ValueError("not a database error")) is None
    assert classify(FileNotFoundError("a file, not a connection")) is None


@needs_postgres
def test_postgres_refused_terminated_and_lock_timeout_are_outages_constraints_are_not(
    tmp_path: Path,
) -> None:
    url = fresh_database("postgresql", tmp_path)

    async def errors() -> list[BaseException]:
        found: list[BaseException] = []
        refused = Database(make_url(url).set(port=1).render_as_string(hide_password=False))
        try:
            async with refused.unit_of_work() as session:
                await session.execute(text("SELECT 1"))
        except Exception as exc:
            found.append(exc)
        finally:
            await refused.dispose()
        db, other = Database(url), Database(url)
        try:
            async with db.engine.connect() as conn:
                await conn.execute(text("CREATE TABLE t (id int PRIMARY KEY)"))
                await conn.commit()
                pid = await conn.scalar(text("SELECT pg_backend_pid()"))
                async with other.engine.connect() as killer:
                    await killer.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
                try:
                    await conn.execute(text("SELECT 1"))
                except Exception as exc:
                    found.append(exc)
            async with db.engine.connect() as a, other.engine.connect() as b:
                await a.execute(text("LOCK TABLE t IN ACCESS EXCLUSIVE MODE"))
                await b.execute(text("SET lock_timeout = '50ms'"))
                try:
                    await b.execute(text("SELECT * FROM t"))
                except Exception as exc:
                    found.append(exc)
            async with db.engine.connect() as conn:
                await conn.execute(text("INSERT INTO t VALUES (1)"))
                try:
                    await conn.execute(text("INSERT INTO t VALUES (1)"))
                except Exception as exc:
                    found.append(exc)
                await conn.rollback()
                try:
                    await conn.execute(text("SELEC 1"))
                except Exception as exc:
                    found.append(exc)
        finally:
            await db.dispose()
            await other.dispose()
        return found

    try:
        refused, terminated, lock_timeout, duplicate, syntax = asyncio.run(errors())
    finally:
        drop_database(url)
    assert classify(refused) is Outage.UNAVAILABLE
    assert classify(terminated) is Outage.UNAVAILABLE
    assert classify(lock_timeout) is Outage.BUSY
    assert classify(duplicate) is None
    assert classify(syntax) is None


@needs_postgres
def test_a_commit_whose_connection_is_cut_is_reported_as_unknown(tmp_path: Path) -> None:
    url = fresh_database("postgresql", tmp_path)
    parsed = make_url(url)
    relay = TcpRelay(parsed.host or "127.0.0.1", parsed.port or 5432).start()
    relayed = parsed.set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False)

    async def cut_before_commit() -> tuple[type[BaseException], type[BaseException]]:
        db = Database(relayed)
        try:
            async with db.unit_of_work() as session:
                await session.execute(text("CREATE TABLE t (id uuid PRIMARY KEY)"))
            # Cut while the statement has run but the commit has not: the server may or may
            # not have committed, for all the client can know.
            with pytest.raises(CommitOutcomeUnknown) as unknown:
                async with db.unit_of_work() as session:
                    await session.execute(text("INSERT INTO t VALUES (:id)"), {"id": uuid.uuid4()})
                    await asyncio.to_thread(relay.cut, 0)
            # A statement (not a commit) on a cut connection: nothing was saved.
            with pytest.raises(Exception) as plain:
                async with db.unit_of_work() as session:
                    await session.execute(text("SELECT 1"))
                    await asyncio.to_thread(relay.cut, 0)
                    await session.execute(text("SELECT 2"))
            return type(unknown.value), type(plain.value)
        finally:
            await db.dispose()

    try:
        commit_error, statement_error = asyncio.run(cut_before_commit())
    finally:
        relay.stop()
        drop_database(url)
    assert commit_error is CommitOutcomeUnknown
    assert statement_error is not CommitOutcomeUnknown
