"""Named locks, in the order they must be taken.

A transaction that needs several of these takes them in the order of `ORDER` (several of one
kind in sorted order), so no two transactions can each hold what the other waits for:

1. `idempotency_key` — a creating POST's Idempotency-Key; a retry that arrives while the first
   attempt still runs is told to come back (409), so it never waits.
2. `courses` — course rows: everyone who changes a course's sessions takes its row first.
3. `course_planning` — per center: course planners (booking runs, cascades, changes to course
   sessions) lock several days in an order set by preferences, so two of them could otherwise
   each hold a day the other wants.
4. `appointment` — an appointment's row, so racing changes queue up and each sees the status
   the previous one left.
5. `center_day` — per center and local day: nurse capacity cannot be a constraint, so the
   decisions for one day are serialised.
6. `patient_cover` — per patient: one coverage decision at a time (units are shared between
   sessions).
7. `authorization` — an authorization's row, changed under its patient's cover lock.
8. `drug_lots` — drug lot rows (stock): taken last, so a visit completed with the vials it
   used draws them after everything its completion settled.

One exception: a course planner holding a center's planning lock may take that center's days
after a patient's cover lock (see `_planner_exception`). For that to be safe, a patient's cover
is never locked after a day at a center whose planning the transaction does not hold.

All are held until the transaction ends. Taking one out of order raises `LockOrderError`: a
deadlock waiting to happen, found on SQLite too, where these locks cost nothing (every write
transaction holds the database's one write lock from its start). Taking again a lock the
transaction already holds is never out of order.

Apart from the order, and outside any transaction: `scheduler_leader_key`, the session lock a
scheduler holds on a connection of its own while it is the one that runs jobs.
"""

from __future__ import annotations

import functools
import hashlib
import uuid
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any, TypeVar

from sqlalchemy import bindparam, event, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

M = TypeVar("M")
K = TypeVar("K")

ORDER = (
    "idempotency_key",
    "courses",
    "course_planning",
    "appointment",
    "center_day",
    "patient_cover",
    "authorization",
    "drug_lots",
)
_RANK = {name: rank for rank, name in enumerate(ORDER)}
_HELD = "chairside.locks"  # session.info: what this transaction holds


class LockOrderError(RuntimeError):
    """A lock asked for after one that comes later in `ORDER`."""


class _Held:
    def __init__(self) -> None:
        self.highest = -1
        self.keys: set[tuple[str, object]] = set()


def _held(session: AsyncSession) -> _Held:
    held: _Held = session.info.setdefault(_HELD, _Held())
    return held


@event.listens_for(Session, "after_transaction_end")
def _released(session: Session, transaction: SessionTransaction) -> None:
    """Every lock here ends with the transaction: the next one starts holding none."""
    if transaction.parent is None:
        session.info.pop(_HELD, None)


def _check(
    session: AsyncSession, name: str, keys: Iterable[K], *, planned_at: uuid.UUID | None = None
) -> list[K]:
    """Sorted keys, after checking that taking those not yet held keeps the order.

    Every key is locked again even when held: re-taking a lock one holds costs a round trip
    and no wait, and a lock taken inside a savepoint that rolled back may be gone."""
    held = _held(session)
    wanted = sorted(set(keys), key=str)
    if any((name, k) not in held.keys for k in wanted):
        rank = _RANK[name]
        if rank < held.highest and not _planner_exception(held, rank, planned_at):
            raise LockOrderError(f"{name} lock asked for after the {ORDER[held.highest]} lock")
        held.highest = max(rank, held.highest)
        held.keys.update((name, k) for k in wanted)
    return wanted


def _planner_exception(held: _Held, rank: int, center_id: uuid.UUID | None) -> bool:
    """A planner at a `block` center asks insurance after each session it places, then books
    the next day: a day after a cover lock. Whoever else waits on a patient's cover while
    holding one of that center's days is a planner there too, and so waits on this one's
    planning lock first: no circle."""
    return (
        rank == _RANK["center_day"]
        and held.highest == _RANK["patient_cover"]
        and center_id is not None
        and ("course_planning", center_id) in held.keys
    )


def holds(session: AsyncSession, name: str, key: object) -> bool:
    """Whether this transaction took that lock (for tests and assertions)."""
    return (name, key) in _held(session).keys


def _key(name: str) -> int:
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _postgresql(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


async def _advisory(session: AsyncSession, names: Sequence[str]) -> None:
    if not _postgresql(session):
        return  # SQLite write transactions already hold the database lock
    for name in names:
        await session.execute(_ADVISORY, {"key": _key(name)})


_ADVISORY = text("SELECT pg_advisory_xact_lock(:key)")


async def _rows(
    session: AsyncSession, name: str, model: type[M], ids: Iterable[uuid.UUID]
) -> list[M]:
    wanted = _check(session, name, ids)
    if not wanted:
        return []
    mapped: Any = model
    return list(await session.scalars(_locking(mapped), {"ids": list(wanted)}))


@functools.cache
def _locking(model: type[Any]) -> Any:
    """The statement locking rows of `model` by id, built once per model (a nightly run locks
    a course per transaction)."""
    return (
        select(model)
        .where(model.id.in_(bindparam("ids", expanding=True)))
        .order_by(model.id)
        .with_for_update()
        .execution_options(populate_existing=True)  # the row as locked, not as last read
    )


# --- 1 ---------------------------------------------------------------------------------------


async def idempotency_key(session: AsyncSession, user_id: uuid.UUID, scope: str, key: str) -> bool:
    """Whether this transaction now holds the key; False while another attempt holds it."""
    (name,) = _check(session, "idempotency_key", [f"{user_id}|{scope}|{key}"])
    if not _postgresql(session):
        return True
    return bool(await session.scalar(select(func.pg_try_advisory_xact_lock(_key(name)))))


# --- 2 ---------------------------------------------------------------------------------------


async def courses(
    session: AsyncSession, model: type[M], course_ids: Iterable[uuid.UUID]
) -> list[M]:
    """Lock these course rows (sorted by id) and return them as locked."""
    return await _rows(session, "courses", model, course_ids)


# --- 3 ---------------------------------------------------------------------------------------


async def course_planning(session: AsyncSession, center_ids: Iterable[uuid.UUID]) -> None:
    """Serialise course planners at these centers; several centers in sorted order."""
    wanted = _check(session, "course_planning", center_ids)
    await _advisory(session, [f"{c}/course-planning" for c in wanted])


# --- 4 ---------------------------------------------------------------------------------------


async def appointment(session: AsyncSession, model: type[M], appointment_id: uuid.UUID) -> M | None:
    """Lock the appointment's row and return it as locked (None: no such appointment)."""
    found = await _rows(session, "appointment", model, [appointment_id])
    return found[0] if found else None


# --- 5 ---------------------------------------------------------------------------------------


async def center_day(session: AsyncSession, center_id: uuid.UUID, day: date) -> None:
    """Serialise capacity decisions for one center and local day."""
    _check(session, "center_day", [(center_id, day)], planned_at=center_id)
    await _advisory(session, [f"{center_id}/{day.isoformat()}"])


async def center_days(session: AsyncSession, center_id: uuid.UUID, days: Iterable[date]) -> None:
    """`center_day` for several of one center's days, in sorted order, in one round trip (a
    course planner that has chosen its days locks them all at once)."""
    wanted = _check(session, "center_day", [(center_id, d) for d in days], planned_at=center_id)
    if not wanted or not _postgresql(session):
        return
    keys = [_key(f"{c}/{d.isoformat()}") for c, d in wanted]
    await session.execute(
        text(
            "SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS bigint[])) "
            "WITH ORDINALITY AS t(k, n) ORDER BY n"
        ),
        {"keys": keys},
    )


# --- 6 ---------------------------------------------------------------------------------------


def _cover(patient_id: uuid.UUID) -> str:
    return f"{patient_id}/coverage"


def _unplanned_days(held: _Held) -> list[object]:
    """The days this transaction holds at centers whose planning it does not hold. A cover
    lock after one of those could close a circle with a planner there (see
    `_planner_exception`), so it is refused."""
    return [
        key
        for name, key in held.keys
        if name == "center_day" and ("course_planning", key[0]) not in held.keys  # type: ignore[index]
    ]


def _check_cover(session: AsyncSession) -> _Held:
    held = _held(session)
    if _unplanned_days(held):
        raise LockOrderError(
            "patient_cover lock asked for after a center_day lock at a center whose "
            "course_planning lock this transaction does not hold"
        )
    return held


async def patient_cover(session: AsyncSession, patient_ids: Iterable[uuid.UUID]) -> None:
    """One coverage decision at a time for each of these patients (sorted)."""
    _check_cover(session)
    wanted = _check(session, "patient_cover", patient_ids)
    await _advisory(session, [_cover(p) for p in wanted])


async def try_patient_cover(
    session: AsyncSession, patient_ids: Sequence[uuid.UUID]
) -> list[uuid.UUID]:
    """Those of these patients whose cover lock was free, now locked for this transaction.
    The others are being recomputed by a request at this moment: a sweep leaves them be."""
    if not patient_ids:
        return []
    held = _check_cover(session)
    if _RANK["patient_cover"] < held.highest:
        raise LockOrderError(f"patient_cover lock asked for after the {ORDER[held.highest]} lock")
    if not _postgresql(session):
        got = list(patient_ids)
    else:
        keys = {_key(_cover(p)): p for p in patient_ids}
        rows = await session.scalars(
            text(
                "SELECT k FROM unnest(CAST(:keys AS bigint[])) AS k "
                "WHERE pg_try_advisory_xact_lock(k) ORDER BY k"
            ),
            {"keys": sorted(keys)},
        )
        got = [keys[k] for k in rows]
    held.highest = _RANK["patient_cover"]
    held.keys.update(("patient_cover", p) for p in got)
    return sorted(got)


# --- 7 ---------------------------------------------------------------------------------------


async def authorization(
    session: AsyncSession, model: type[M], authorization_id: uuid.UUID
) -> M | None:
    """Lock the authorization's row and return it as locked (None: no such authorization)."""
    found = await _rows(session, "authorization", model, [authorization_id])
    return found[0] if found else None


# --- 8 ---------------------------------------------------------------------------------------


async def drug_lots(session: AsyncSession, model: type[M], lot_ids: Iterable[uuid.UUID]) -> list[M]:
    """Lock these drug lot rows (sorted by id) and return them as locked."""
    return await _rows(session, "drug_lots", model, lot_ids)


# --- apart -----------------------------------------------------------------------------------


def migration_key() -> int:
    """Held by `chairside migrate` while it migrates PostgreSQL, so two at once take turns."""
    return _key("chairside/migrations")


def scheduler_leader_key() -> int:
    """The session-level advisory lock a scheduler holds on its own connection while it runs
    jobs. Not part of the order: it is never taken inside a transaction."""
    return _key("chairside/scheduler")


def center_booking_key(center_id: uuid.UUID) -> int:
    """The session-level advisory lock a scheduler holds on a connection of its own while it
    books one center's night (PostgreSQL), so schedulers share the night center by center.
    Not part of the order: it is never taken inside a transaction."""
    return _key(f"chairside/auto-book/{center_id}")
