"""What a database failure means for the one who asked: come back in a moment, or check.

Three answers, each a 503 with Retry-After at the API, never a 500:
- busy: the database broke a lock cycle, a serialisation conflict or waited too long for a
  lock; nothing was saved, and the same request will most likely succeed a moment later;
- unavailable: it could not be reached or kept (refused, terminated, shutting down, too many
  connections, read-only, out of disk); nothing was saved;
- outcome unknown: the connection went while the transaction was committing, so it may or
  may not have been saved. Retrying with the same Idempotency-Key is safe (the first reply
  comes back if it was saved); without one, read before sending it again.

Drivers differ in what they raise: asyncpg errors carry a SQLSTATE, sqlite3 errors an
extended result code, and a connection that cannot be opened at all raises the operating
system's error unwrapped. The engine's pool needs nothing from us: a connection found dead
is discarded with every pooled one older than it, and the next checkout opens a new one.
"""

from __future__ import annotations

import socket
from enum import Enum

from sqlalchemy.exc import DBAPIError, InterfaceError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from core.problems import Problem


class Outage(Enum):
    BUSY = "busy"
    UNAVAILABLE = "unavailable"


# PostgreSQL: a deadlock or serialisation failure broken by the server, a lock not granted.
BUSY_SQLSTATES = frozenset({"40P01", "40001", "55P03"})
# Connection exceptions (08), insufficient resources (53: too many connections, disk full,
# out of memory), operator intervention (57P: shut down, terminated, cannot connect now),
# system errors (58), and a read-only transaction (25006: a standby after a failover).
UNAVAILABLE_SQLSTATE_PREFIXES = ("08", "53", "57P", "58", "25006")
# sqlite3 primary result codes: BUSY, LOCKED, and NOMEM, READONLY, IOERR, FULL, CANTOPEN,
# PROTOCOL (the database file cannot be written or reached).
SQLITE_BUSY = frozenset({5, 6})
SQLITE_UNAVAILABLE = frozenset({7, 8, 10, 13, 14, 15})
# Operating-system errors that are about a file, not a connection: bugs, not outages.
_FILE_ERRORS = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)


def _original(exc: BaseException) -> BaseException:
    """The driver's own exception, where SQLAlchemy wrapped it."""
    if isinstance(exc, DBAPIError) and isinstance(exc.orig, BaseException):
        return exc.orig
    return exc


def _sqlstate(error: BaseException) -> str | None:
    code = getattr(error, "sqlstate", None)
    return code if isinstance(code, str) else None


def _sqlite_code(error: BaseException) -> int | None:
    code = getattr(error, "sqlite_errorcode", None)
    return code & 0xFF if isinstance(code, int) else None


def classify(exc: BaseException) -> Outage | None:
    """The outage behind an exception, or None when it is not one (a bug, a broken rule)."""
    if isinstance(exc, PoolTimeout):
        return Outage.BUSY  # every connection in use for longer than the pool waits
    original = _original(exc)
    state = _sqlstate(original)
    if state is not None:
        if state in BUSY_SQLSTATES:
            return Outage.BUSY
        if state.startswith(UNAVAILABLE_SQLSTATE_PREFIXES):
            return Outage.UNAVAILABLE
    sqlite = _sqlite_code(original)
    if sqlite in SQLITE_BUSY:
        return Outage.BUSY
    if sqlite in SQLITE_UNAVAILABLE:
        return Outage.UNAVAILABLE
    if isinstance(exc, DBAPIError) and (
        exc.connection_invalidated or isinstance(exc, InterfaceError)
    ):
        return Outage.UNAVAILABLE  # the driver found the connection closed under it
    if isinstance(original, OSError | socket.gaierror) and not isinstance(original, _FILE_ERRORS):
        return Outage.UNAVAILABLE  # refused, reset, unreachable, timed out while connecting
    return None


def lost_in_commit(exc: BaseException) -> bool:
    """Whether a failed COMMIT leaves the outcome unknown: the connection went, so the server
    may have committed before it could say so. (SQLite commits in this process: a failed
    commit there saved nothing.)"""
    return classify(exc) is Outage.UNAVAILABLE and _sqlite_code(_original(exc)) is None


class ServiceUnavailable(Problem):
    """503: come back in `retry_after` seconds (sent as Retry-After)."""

    status = 503
    slug = "unavailable"
    title = "Busy, try again"
    retry_after = 1


class CommitOutcomeUnknown(ServiceUnavailable):
    slug = "commit-outcome-unknown"
    title = "Saved or not: unknown"

    def __init__(self) -> None:
        super().__init__(
            "the connection to the database was lost while the change was being saved, so it "
            "may or may not have been saved; send it again with the same Idempotency-Key, or "
            "read it back before sending it again",
            outcome="unknown",
        )
