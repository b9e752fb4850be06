"""The day board benchmark (bench/board.py) runs end to end at a tiny size on SQLite: it builds
its center, starts the real server, renders the board and the week, books from the dialog, and
prints its figures. Only that it finishes and prints them is checked, never a timing."""

from __future__ import annotations

import pytest

from bench import board


def test_the_board_benchmark_runs_and_prints_its_figures(
    capsys: pytest.CaptureFixture[str],
) -> None:
    board.main(
        [
            "--db",
            "sqlite",
            "--chairs",
            "3",
            "--visits",
            "5",
            "--others",
            "4",
            "--reps",
            "2",
            "--bookings",
            "2",
            "--warmup",
            "0",
        ]
    )
    out = capsys.readouterr().out
    assert "== sqlite ==" in out
    assert "skipped" not in out
    assert "WARNING" not in out, out
    assert "bookings from the dialog       : 2 booked of 2 tried" in out, out
    for measure in (
        "baseline  GET /healthz",
        "baseline  GET /api/v1/auth/me",
        "GET /api/v1/centers/{id}/day",
        "GET /api/v1/centers/{id}/week",
        "POST /api/v1/patients/search",
        "POST /api/v1/appointments/check",
        "POST /api/v1/appointments ",
        "build the board (wall)",
    ):
        line = next((ln for ln in out.splitlines() if measure in ln), None)
        assert line is not None, f"{measure!r} missing from:\n{out}"
        assert "(no samples)" not in line, line
    # A verdict is printed for each target (which one is not checked: the machine is shared).
    assert out.count("p95 <= 150 ms: ") == 1
    assert out.count("p95 <= 200 ms: ") == 2
