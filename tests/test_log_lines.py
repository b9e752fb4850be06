"""Every log line is the service's JSON, libraries' too (issue 14, 5): when the database
refused connections, APScheduler's own logger printed chained tracebacks ending in the
driver's message. In a real process: a library logs an exception whose message holds a
statement's values; what reaches stderr is JSON lines naming types and code locations only."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = """
import logging
from core.logs import configure_logging

configure_logging("INFO")
try:
    try:
        raise ConnectionRefusedError("connect to 10.0.0.7 refused for user clinic")
    except ConnectionRefusedError as exc:
        raise RuntimeError("INSERT ... VALUES ('Okafor', 'MRN-4471')") from exc
except RuntimeError:
    logging.getLogger("apscheduler.executors.default").exception('Job "reminders" raised')
    logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
    logging.getLogger("sqlalchemy.pool").error("pool error", exc_info=True)
logging.getLogger("chairside.jobs").info('{"event": "job_failed"}')
"""


def test_library_exceptions_are_json_without_their_messages() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=True
    )
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line is JSON
    assert [e["logger"] for e in entries] == [
        "apscheduler.executors.default",
        "uvicorn.error",
        "sqlalchemy.pool",
        "chairside.jobs",
    ]
    for entry in entries[:3]:
        assert entry["error"] == "RuntimeError"
        assert entry["stack"][0] == "RuntimeError" and "ConnectionRefusedError" in entry["stack"]
        assert any(":" in frame and " in " in frame for frame in entry["stack"][1:])
    for secret in ("Okafor", "MRN-4471", "10.0.0.7", "clinic"):
        assert secret not in done.stderr
