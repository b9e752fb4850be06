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

from sqlalchemy import Insert, Select, bindparam, event, insert, inspect
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


# Up to this many rows go in one statement (each its own INSERT in a WITH clause, so that the
# statement is the same each time and compiled once: SQLAlchemy caches no multi-row VALUES);
# more, such as a planner's dozens of sessions, go by table, an executemany each. A loading
# course booked whole (five days and two maintenance doses: a history row and an event each)
# fits: at 8, the nightly run's 500 such courses in 2,000 paid two executemanys of ~4.7 ms.
ONE_STATEMENT_MOST = 16
Shape = tuple[tuple[Model, tuple[str, ...]], ...]
_BUILT: dict[tuple[object, Shape], Any] = {}  # (query or None, shape) -> statement


def _shape(pending: Sequence[tuple[Model, Mapping[str, Any]]]) -> Shape:
    return tuple((model, tuple(row)) for model, row in pending)


def _row_inserts(shape: Shape) -> list[Insert]:
    """One single-row INSERT per pending row, its values bound parameters named by position."""
    out = []
    for number, (model, keys) in enumerate(shape):
        columns = inspect(model).columns
        values = {k: bindparam(f"append_{number}_{k}", type_=columns[k].type) for k in keys}
        out.append(insert(model).values(values))
    return out


def _params(pending: Sequence[tuple[Model, Mapping[str, Any]]]) -> dict[str, Any]:
    return {
        f"append_{number}_{k}": v for number, (_, row) in enumerate(pending) for k, v in row.items()
    }


def _built(query: object, shape: Shape, build: Any) -> Any:
    key = (query, shape)
    statement = _BUILT.get(key)
    if statement is None:
        if len(_BUILT) >= 512:  # shapes are few; bounded all the same
            _BUILT.clear()
        statement = _BUILT[key] = build()
    return statement


def statements(
    dialect: str, pending: Sequence[tuple[Model, Mapping[str, Any]]]
) -> list[tuple[Insert, Any]]:
    """What writes `pending`: on PostgreSQL, up to ONE_STATEMENT_MOST rows in one statement
    (all but the last row's INSERT in WITH clauses of the last one's); otherwise an
    executemany per table (SQLite is in the process: a statement costs no round trip)."""
    if dialect != "postgresql" or len(pending) > ONE_STATEMENT_MOST:
        groups: dict[tuple[Model, tuple[str, ...]], list[Mapping[str, Any]]] = {}
        for model, row in pending:
            groups.setdefault((model, tuple(row)), []).append(row)
        return [(insert(model), rows) for (model, _), rows in groups.items()]
    shape = _shape(pending)

    def build() -> Insert:
        *earlier, final = _row_inserts(shape)
        for number, statement in enumerate(earlier):
            final = final.add_cte(statement.cte(f"append_{number}"))
        return final

    return [(_built(None, shape, build), _params(pending))]


Q = TypeVar("Q", Select[Any], Insert)


def riding(session: AsyncSession, query: Q, params: Mapping[str, Any]) -> tuple[Q, dict[str, Any]]:
    """`query` with what the transaction holds written by the same statement, on PostgreSQL
    (a data-modifying WITH clause runs once, whatever the query returns, and its foreign keys
    are checked as the statement ends), and the parameters for both: a read that is a
    request's last statement carries its audit event, a booking's INSERT its history, event
    and audit event, instead of leaving them round trips of their own. Elsewhere, inside a
    savepoint, or with more than ONE_STATEMENT_MOST rows held, `query` as it is (the rows
    wait for the commit)."""
    pending = session.info.get(_PENDING)
    if (
        not pending
        or len(pending) > ONE_STATEMENT_MOST
        or session.in_nested_transaction()
        or session.get_bind().dialect.name != "postgresql"
    ):
        return query, dict(params)
    del session.info[_PENDING]
    shape = _shape(pending)

    def build() -> Q:
        carried = query
        for number, statement in enumerate(_row_inserts(shape)):
            carried = carried.add_cte(statement.cte(f"append_{number}"))
        return carried

    built: Q = _built(query, shape, build)
    return built, {**params, **_params(pending)}


@event.listens_for(Session, "before_commit")
def _write(session: Session) -> None:
    # Also called as a savepoint is released: its rows were written already (see `add`), and
    # what is held belongs to the outer transaction, written when that commits.
    if session.in_nested_transaction():
        return
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    for statement, params in statements(session.get_bind().dialect.name, pending):
        session.execute(statement, params)


@event.listens_for(Session, "after_transaction_end")
def _dropped(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:  # the whole transaction ended: committed or not
        session.info.pop(_PENDING, None)
