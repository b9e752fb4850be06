"""What a change implies, settled in one place before the transaction commits.

A use case that changes something others depend on does not call those others: it marks the
consequence on the unit of work (`mark(session, COVER, patient_id)`), and whoever owns that
consequence has registered a settler for it (insurance recomputes a patient's cover and
billing alerts). `settle` runs the settlers for what was marked, once per key however often it
was marked, until nothing is left; a settler may mark more (drawing units marks the patient's
cover).

It runs when the outermost `use_case` returns, so the reply a route builds from its result
already shows what followed, and again before every commit (`Database.unit_of_work`), so a job
step or a script that changed something outside a use case cannot leave it unsettled. A
consequence nobody settles is a programming error and stops the commit.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import asynccontextmanager
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

P = ParamSpec("P")
R = TypeVar("R")

Settler = Callable[[AsyncSession, list[Any]], Awaitable[None]]

# What can follow a change. Keys are ids unless said otherwise.
SESSION_GIVEN = "session given"  # (appointment id, dose given in g or None): units are drawn
COVER = "cover"  # patients whose cover and billing alerts are recomputed now
COVER_LATER = "cover later"  # patients whose cover the next sweep recomputes (bulk runs)
CENTER_CHANGED = "center changed"  # centers whose time zone changed: their patients' cover
PRODUCT_CHANGED = "product changed"  # products whose billing unit changed: their patients'
PAYER_CHANGED = "payer changed"  # payers whose turnaround or margins changed: their patients'
COURSE_UNBOOKABLE = "course unbookable"  # (course id, why): billing hears of a stuck course
COURSE_BOOKED = "course booked"  # courses that booked cleanly: billing's flag on them clears
CHAIR_FREED = "chair freed"  # (appointment id, chair id, start, end, cause): a waitlist opening
WAITLIST_WANTED = "waitlist wanted"  # (course id, appointment id | None, earliest, latest)

_SETTLERS: dict[str, Settler] = {}
_MARKS = "chairside.marks"
_DEPTH = "chairside.use_case_depth"


def settles(consequence: str) -> Callable[[Settler], Settler]:
    """Register the settler of a consequence. Settlers run in the order they were registered
    (a domain registers its own in the order they must run)."""

    def register(fn: Settler) -> Settler:
        if consequence in _SETTLERS and _SETTLERS[consequence] is not fn:
            raise RuntimeError(f"{consequence!r} already has a settler")
        _SETTLERS[consequence] = fn
        return fn

    return register


def mark(session: AsyncSession, consequence: str, *keys: Hashable) -> None:
    """Note that `consequence` must follow for these keys before the transaction commits."""
    marks: dict[str, dict[Hashable, None]] = session.info.setdefault(_MARKS, {})
    marks.setdefault(consequence, {}).update(dict.fromkeys(keys))


def pending(session: AsyncSession) -> dict[str, list[Any]]:
    """What is marked and not settled yet (for tests and assertions)."""
    marks: dict[str, dict[Hashable, None]] = session.info.get(_MARKS, {})
    return {c: list(keys) for c, keys in marks.items() if keys}


def forget(session: AsyncSession) -> None:
    """Drop what is marked: the transaction it belonged to rolled back."""
    session.info.pop(_MARKS, None)


async def settle(session: AsyncSession) -> None:
    """Run the settlers of everything marked, earliest-registered first, until none is left."""
    marks: dict[str, dict[Hashable, None]] = session.info.get(_MARKS, {})
    while True:
        due = [c for c, keys in marks.items() if keys]
        if not due:
            return
        unknown = [c for c in due if c not in _SETTLERS]
        if unknown:
            raise RuntimeError(f"nothing settles {', '.join(sorted(unknown))}")
        consequence = min(due, key=list(_SETTLERS).index)
        keys = list(marks.pop(consequence))
        await _SETTLERS[consequence](session, keys)


def use_case(
    fn: Callable[Concatenate[AsyncSession, P], Awaitable[R]],
) -> Callable[Concatenate[AsyncSession, P], Awaitable[R]]:
    """A use case that routes, jobs and the command line call: when the outermost one returns,
    what its changes imply is settled, so its result already shows it."""

    @functools.wraps(fn)
    async def run(session: AsyncSession, /, *args: P.args, **kwargs: P.kwargs) -> R:
        depth: int = session.info.get(_DEPTH, 0)
        session.info[_DEPTH] = depth + 1
        try:
            result = await fn(session, *args, **kwargs)
        finally:
            session.info[_DEPTH] = depth
        if depth == 0:
            await settle(session)
        return result

    return run


@asynccontextmanager
async def batch(session: AsyncSession) -> AsyncIterator[None]:
    """Several use cases in one transaction, settled once when the block ends, as if they were
    one: a script that orders and books many courses takes every patient's cover lock once, at
    the end, after all its bookings (see core.locks for why the order matters)."""
    depth: int = session.info.get(_DEPTH, 0)
    session.info[_DEPTH] = depth + 1
    try:
        yield
    finally:
        session.info[_DEPTH] = depth
    if depth == 0:
        await settle(session)
