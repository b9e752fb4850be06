"""JSON log lines. Messages carry ids, routes and counts; never patient data."""

from __future__ import annotations

import json
import logging
import traceback
from datetime import UTC, datetime


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        entry: dict[str, object] = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        try:
            parsed = json.loads(message)
            entry.update(parsed if isinstance(parsed, dict) else {"message": message})
        except ValueError:
            entry["message"] = message
        if record.exc_info and record.exc_info[1] is not None:
            entry["error"] = type(record.exc_info[1]).__name__
            entry["stack"] = describe(record.exc_info[1])
        return json.dumps(entry)


def describe(exc: BaseException) -> list[str]:
    """Where an exception and its causes happened: type names and code locations only.

    Exception messages are left out on purpose: database errors quote the values of the
    statement (names, MRNs), and nothing from a request may reach the logs.
    """
    lines: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        lines.append(type(current).__name__)
        lines += [
            f"  {frame.filename}:{frame.lineno} in {frame.name}"
            for frame in traceback.extract_tb(current.__traceback__)
        ]
        current = current.__cause__ or current.__context__
    return lines


def configure_logging(level: str = "INFO") -> None:
    """Chairside's own lines at `level`; the libraries' (APScheduler, uvicorn, SQLAlchemy,
    asyncio) at warning and above, through the same JSON lines: an exception any of them logs
    is described by type and code location only, never by its message (a driver's message
    quotes the statement's values)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    ours = logging.getLogger("chairside")
    ours.handlers[:] = [handler]
    ours.setLevel(level.upper())
    ours.propagate = False
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    for name in ("apscheduler", "uvicorn", "uvicorn.error", "uvicorn.access"):
        library = logging.getLogger(name)
        library.handlers[:] = []  # theirs print plain text with the whole traceback
        library.propagate = True
