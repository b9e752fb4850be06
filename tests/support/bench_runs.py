"""Running a benchmark once as `make bench` runs it (`python -m bench.NAME`), for the suite's
smoke tests: it must finish cleanly and print its figures, whatever they are."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.databases import postgres_admin_url

ROOT = Path(__file__).resolve().parents[2]
PG = postgres_admin_url()
DB = "postgresql" if PG else "sqlite"  # the kind deployments run, where the suite has it


def run_once(name: str, args: list[str], says: str, pg_only: bool) -> None:
    """`python -m bench.NAME ARGS` finishes cleanly and its output says `says`."""
    if pg_only and PG is None:
        pytest.skip("set CHAIRSIDE_TEST_POSTGRES_URL")
    done = subprocess.run(
        [sys.executable, "-m", f"bench.{name}", *args],
        cwd=ROOT,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.strip(), done.stderr[-3000:]
    assert says in done.stdout, done.stdout[-3000:]
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
