"""The batch benchmarks (the night's booking, the billing sweep, the planners) run once at a
tiny size, as the request ones do in test_bench_smoke.py."""

from __future__ import annotations

import pytest

from tests.support.bench_runs import DB, run_once

# name -> (arguments, what its output must say, whether it needs PostgreSQL)
RUNS: dict[str, tuple[list[str], str, bool]] = {
    "autobook": (["--db", "sqlite", "--courses", "10", "--sizes", "10"], "met", False),
    "courses": (["--db", "sqlite", "--courses", "10"], "", False),
    "demand": (["--db", "sqlite", "--courses", "20", "--runs", "1"], "", False),
    "night": (["--centers", "2", "--courses", "5"], "met", True),
    "sweep": (["--db", DB, "--patients", "50", "--sessions-per-patient", "4"], "GOAL", False),
}


@pytest.mark.parametrize("name", sorted(RUNS))
def test_the_benchmark_runs_at_a_tiny_size(name: str) -> None:
    args, says, pg_only = RUNS[name]
    run_once(name, args, says, pg_only)
