"""The `chairside` command on a fresh database, as `make run` uses it."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from app.migrate import database_revision, head_revision
from tests.support.databases import drop_database, fresh_database, postgres_admin_url
from tests.support.servers import ROOT, SECRET


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
    assert "12 treatment courses" in first.stdout and "left unbooked" not in first.stdout
    sessions = int(first.stdout.split("courses (CIDP, MMN, GBS) with ")[1].split(" sessions")[0])
    with sqlite3.connect(db) as conn:
        courses = conn.execute(
            "SELECT diagnosis_code, induction_days IS NOT NULL, interval_days IS NOT NULL,"
            " unbookable FROM courses"
        ).fetchall()
        per_course = conn.execute(
            "SELECT course_id, count(*), sum(phase = 'induction'), sum(phase = 'maintenance')"
            " FROM appointments WHERE course_id IS NOT NULL AND status = 'booked'"
            " GROUP BY course_id"
        ).fetchall()
        others = conn.execute(
            "SELECT count(*) FROM appointments a JOIN courses c ON c.patient_id = a.patient_id"
            " WHERE a.course_id IS NULL OR a.course_id != c.id"
        ).fetchone()[0]
        flagged = conn.execute(
            "SELECT count(DISTINCT patient_id) FROM alerts"
            " WHERE kind = 'session_uncovered' AND status = 'open'"
        ).fetchone()[0]
    assert len(courses) == 12 and {c[0] for c in courses} == {"G61.81", "G61.82", "G61.0"}
    assert all(unbookable in (None, "null") for *_, unbookable in courses)
    # CIDP with and without its loading phase, MMN maintenance only, GBS induction only
    assert {(c[0], bool(c[1]), bool(c[2])) for c in courses} == {
        ("G61.81", True, True),
        ("G61.81", False, True),
        ("G61.82", False, True),
        ("G61.0", True, False),
    }
    assert len(per_course) == 12 and all(count >= 2 for _, count, _, _ in per_course)
    assert sum(count for _, count, _, _ in per_course) == sessions > 40
    assert sum(induction for _, _, induction, _ in per_course) % 5 == 0  # whole inductions
    assert others == 0  # course patients have no other demo appointments
    # The demo's course sessions have no authorization yet: billing hears of every course
    # patient as the demo books them (their cover is settled with the bookings), so the sweep
    # has nothing left to flag.
    assert flagged == 12
    swept = chairside(["sweep"], db)
    assert swept.returncode == 0 and " 0 alerts opened" in swept.stdout, swept.stdout
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

    # The demo's portal user is a patient with a course; a user can be deactivated.
    assert "patient@chairside.local" in first.stdout
    with sqlite3.connect(db) as conn:
        linked = conn.execute(
            "SELECT count(*) FROM users u JOIN courses c ON c.patient_id = u.patient_id"
            " WHERE u.role = 'patient'"
        ).fetchone()[0]
    assert linked == 1
    gone = chairside(["users", "deactivate", "--email", "LEAD@example.org"], db)
    assert gone.returncode == 0, gone.stderr
    with sqlite3.connect(db) as conn:
        active = conn.execute("SELECT active FROM users WHERE email = 'lead@example.org'")
        assert active.fetchone()[0] == 0
    assert chairside(["users", "deactivate", "--email", "nobody@x.org"], db).returncode == 1


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


def test_the_command_line_and_the_api_know_every_job() -> None:
    from typing import get_args

    from app.api.jobs import JobName
    from app.cli import JOB_NAMES
    from app.jobs.registry import JOBS

    assert set(JOB_NAMES) == set(JOBS) == set(get_args(JobName))


def test_servers_and_schedulers_do_not_migrate_they_refuse_a_database_behind_the_code(
    tmp_path: Path,
) -> None:
    """`chairside migrate` is the release step: replicas starting together never race to
    change the schema, and none of them serves on a schema older than its code."""
    db = tmp_path / "fresh.db"
    env = {"CHAIRSIDE_SECRET_KEY": SECRET}
    for command in (["serve", "--port", "1"], ["scheduler"]):
        refused = chairside(command, db, **env)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "run `chairside migrate` first" in refused.stderr
    with sqlite3.connect(db) as conn:  # nothing was created
        assert conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
    assert chairside(["migrate"], db).returncode == 0
    again = chairside(["migrate"], db)  # a second release step finds nothing to do
    assert again.returncode == 0, again.stderr
    # A single instance may migrate as it starts (this one then cannot bind, and stops).
    alone = tmp_path / "alone.db"
    chairside(["serve", "--migrate", "--host", "256.0.0.1", "--port", "8"], alone, **env)
    assert asyncio.run(database_revision(f"sqlite:///{alone}")) == head_revision()


@pytest.mark.skipif(postgres_admin_url() is None, reason="needs CHAIRSIDE_TEST_POSTGRES_URL")
def test_two_release_steps_at_once_take_turns_on_postgresql() -> None:
    url = fresh_database("postgresql", Path("."))
    try:
        env = {**os.environ, "CHAIRSIDE_DATABASE_URL": url}
        both = [
            subprocess.Popen(
                [sys.executable, "-m", "app.cli", "migrate"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        outcomes = [(p.wait(120), p.stderr.read() if p.stderr else "") for p in both]
        assert [code for code, _ in outcomes] == [0, 0], outcomes
        assert asyncio.run(database_revision(url)) == head_revision()
    finally:
        drop_database(url)
