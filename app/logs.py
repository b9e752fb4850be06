"""JSON log lines. Messages carry ids, routes and counts; never patient data."""

from __future__ import annotations

import json
import logging
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
        if record.exc_info and record.exc_info[0] is not None:
            # The exception type and stack, without the exception's message (it may hold values).
            entry["error"] = record.exc_info[0].__name__
            entry["stack"] = self.formatStack(
                "".join(logging.Formatter().formatException(record.exc_info).splitlines(True)[:-1])
            )
        return json.dumps(entry)


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("chairside")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
