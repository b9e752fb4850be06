"""Every benchmark runs once at a tiny size, so none rots unnoticed: each is started as `make
bench` starts it (`python -m bench.NAME`), must finish cleanly and print its figures. What it
prints is never compared with a timing; these machines are shared and noisy. The request
benchmarks are here, the batch ones (jobs, sweeps, planners) in test_bench_smoke_batch.py, so
the suite's two workers share them; the day board's has a smoke test of its own,
tests/test_bench_board_smoke.py."""

from __future__ import annotations

import pytest

from tests.support.bench_runs import DB, PG, run_once

# name -> (arguments, what its output must say, whether it needs PostgreSQL)
RUNS: dict[str, tuple[list[str], str, bool]] = {
    "booking": (
        ["--db", DB, "--requests", "20", "--clients", "4", "--patients", "40", "--days", "5"],
        "goal: booking throughput",
        False,
    ),
    "portal": (
        [
            "--appointments",
            "2000",
            "--patients",
            "200",
            "--users",
            "8",
            "--clients",
            "4",
            "--seconds",
            "1",
            "--warmup",
            "0.5",
        ],
        "goal:",
        True,
    ),
    "statements": (["--db", DB, "--requests", "5"], "statements a request", False),
    "vials": (["--doses", "200"], "", False),
    "optimiser": (["--seeds", "1", "--time-limit", "1"], "", False),
}


def _pg_url_args(name: str) -> list[str]:
    return ["--pg-url", PG] if PG and name in ("booking", "portal", "statements") else []


@pytest.mark.parametrize("name", sorted(RUNS))
def test_the_benchmark_runs_at_a_tiny_size(name: str) -> None:
    args, says, pg_only = RUNS[name]
    run_once(name, [*args, *_pg_url_args(name)], says, pg_only)
