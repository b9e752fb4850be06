"""Rows that are only ever added (history, outbox events, the audit trail), written together
as the transaction commits: one statement for all of them on PostgreSQL, where each would
otherwise cost a round trip of its own in the middle of the request.

Nothing reads these rows back in the transaction that adds them, so holding them until the
commit changes nothing but the number of round trips. A row added inside a savepoint is
written at once instead, so that rolling the savepoint back takes it with it; rows added
before the savepoint are the outer transaction's and outlive its rollback. A transaction that
rolls back drops what it was holding.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import Insert, Select, event, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

_PENDING = "chairside.appends"  # session.info: [(model, row), ...] in the order added
Model = type[Any]  # a mapped class


async def add(session: AsyncSession, model: Model, row: Mapping[str, Any]) -> None:
    """Add a row of the model's table when the transaction commits."""
    await add_all(session, model, [row])


async def add_all(session: AsyncSession, model: Model, rows: Sequence[Mapping[str, Any]]) -> None:
    if not rows:
        return
    if session.in_nested_transaction():
        await session.execute(insert(model), list(rows))
        return
    pending: list[tuple[Model, Mapping[str, Any]]] = session.info.setdefault(_PENDING, [])
    pending.extend((model, row) for row in rows)


def _groups(
    pending: Sequence[tuple[Model, Mapping[str, Any]]],
) -> list[tuple[Model, list[Mapping[str, Any]]]]:
    """The rows by table (and by the columns they give), in the order first added."""
    groups: dict[tuple[Model, tuple[str, ...]], list[Mapping[str, Any]]] = {}
    for model, row in pending:
        groups.setdefault((model, tuple(row)), []).append(row)
    return [(model, rows) for (model, _), rows in groups.items()]


def statements(
    dialect: str, pending: Sequence[tuple[Model, Mapping[str, Any]]]
) -> list[tuple[Insert, list[Mapping[str, Any]] | None]]:
    """What writes `pending`: on PostgreSQL one statement, each table's rows a multi-row
    INSERT in a WITH clause of the last one's; elsewhere an executemany per table (SQLite
    is in the process: a statement costs no round trip)."""
    groups = _groups(pending)
    if dialect != "postgresql":
        return [(insert(model), rows) for model, rows in groups]
    if len(groups) == 1 and len(groups[0][1]) == 1:
        model, rows = groups[0]
        return [(insert(model), rows)]  # the same statement each time: compiled once
    inserts = [insert(model).values(rows) for model, rows in groups]
    final = inserts[-1]
    for number, earlier in enumerate(inserts[:-1]):
        final = final.add_cte(earlier.cte(f"append_{number}"))
    return [(final, None)]


Q = TypeVar("Q", Select[Any], Insert)


def riding(session: AsyncSession, query: Q) -> Q:
    """`query` with what the transaction holds written by the same statement, on PostgreSQL
    (a data-modifying WITH clause runs once, whatever the query returns, and its foreign keys
    are checked as the statement ends): a read that is a request's last statement carries its
    audit event, a booking's INSERT its history, event and audit event, instead of leaving
    them round trips of their own. Elsewhere, or inside a savepoint, `query` as it is."""
    if session.in_nested_transaction() or session.get_bind().dialect.name != "postgresql":
        return query
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return query
    for number, (model, rows) in enumerate(_groups(pending)):
        query = query.add_cte(insert(model).values(rows).cte(f"append_{number}"))
    return query


@event.listens_for(Session, "before_commit")
def _write(session: Session) -> None:
    # Also called as a savepoint is released: its rows were written already (see `add`), and
    # what is held belongs to the outer transaction, written when that commits.
    if session.in_nested_transaction():
        return
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    for statement, rows in statements(session.get_bind().dialect.name, pending):
        session.execute(statement, rows)


@event.listens_for(Session, "after_transaction_end")
def _dropped(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the whole transaction ended: committed or not
        session.info.pop(_PENDING, None)
