"""The `chairside` command on a fresh database, as `make run` uses it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support import ROOT, SECRET


def chairside(args: list[str], db: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "CHAIRSIDE_DATABASE_URL": f"sqlite:///{db}", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_demo_loads_once_and_users_can_be_created(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    assert chairside(["migrate"], db).returncode == 0
    first = chairside(["demo", "--if-empty"], db)
    assert first.returncode == 0, first.stderr
    assert "24 chairs, 60 patients" in first.stdout and "admin@chairside.local" in first.stdout
    booked = int(first.stdout.split("patients, ")[1].split(" appointments")[0])
    assert booked > 100
    again = chairside(["demo", "--if-empty"], db)
    assert again.returncode == 0 and "already has a center" in again.stdout

    made = chairside(
        ["users", "create", "--email", "Lead@Example.org", "--role", "nurse"],
        db,
        CHAIRSIDE_NEW_USER_PASSWORD="a-long-enough-password",
    )
    assert made.returncode == 0 and "lead@example.org" in made.stdout
    dup = chairside(
        [
            "users",
            "create",
            "--email",
            "lead@example.org",
            "--role",
            "nurse",
            "--password",
            "another-password",
        ],
        db,
    )
    assert dup.returncode == 1 and "already exists" in dup.stderr


def test_refuses_to_start_outside_development_with_the_default_secret(tmp_path: Path) -> None:
    result = chairside(["migrate"], tmp_path / "x.db", CHAIRSIDE_ENVIRONMENT="production")
    assert result.returncode != 0 and "CHAIRSIDE_SECRET_KEY" in result.stderr
    ok = chairside(
        ["migrate"],
        tmp_path / "x.db",
        CHAIRSIDE_ENVIRONMENT="production",
        CHAIRSIDE_SECRET_KEY=SECRET,
    )
    assert ok.returncode == 0, ok.stderr
