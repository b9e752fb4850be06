"""Two scheduler processes on one database: one runs the jobs; kill it with SIGKILL in the
middle of the nightly booking run and the other takes over and finishes, booking nothing
twice and no loading course by halves."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.db import Database
from patients.schemas import PatientCreate
from patients.service import create_patient
from scheduling.courses import service as courses
from scheduling.courses.schemas import CourseCreate
from tests.support.factories import gamunex, make_chair
from tests.support.servers import ROOT, Server, server_env, start_server, stop_server
from tests.support.waiting import wait_for

COURSES = 300


@pytest.fixture
def own_server(server: Server, tmp_path: Path) -> Iterator[Server]:
    """A server on a database of its own: the schedulers book every course they find."""
    srv = start_server(server.kind, tmp_path)
    try:
        yield srv
    finally:
        stop_server(srv)


def scheduler(database_url: str, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **server_env(database_url),
        "CHAIRSIDE_SCHEDULER_TICK_SECONDS": "0.5",
        "CHAIRSIDE_JOB_STALE_SECONDS": "2",
        "CHAIRSIDE_SCHEDULER": "true",
        "CHAIRSIDE_LOG_LEVEL": "INFO",
    }
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "app.cli", "scheduler"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def loading_courses(api: httpx.Client, database_url: str) -> str:
    """A center booking at midnight (so it is due now), and loading courses starting over the
    next four weeks: enough work that the booking run takes a few seconds. The orders go in
    through the course service in one transaction (hundreds of API calls would take longer
    than the run)."""
    center = api.post(
        "/api/v1/centers",
        json={
            "name": "Night run",
            "timezone": "America/New_York",
            "patients_per_nurse": 4,
            "opening_hours": [
                {"weekday": d, "opens": "07:00", "closes": "19:00"} for d in range(7)
            ],
            "staffing": [
                {"weekday": d, "start": "07:00", "end": "19:00", "nurses": 40} for d in range(7)
            ],
            "auto_book_at": "00:00",
            "booking_horizon_days": 35,
        },
    ).json()
    for _ in range(40):
        make_chair(api, center["id"])
    product = uuid.UUID(gamunex(api))

    async def order_all() -> None:
        db = Database(database_url)
        try:
            async with db.unit_of_work() as session:
                for i in range(COURSES):
                    patient = await create_patient(
                        session,
                        PatientCreate(
                            mrn=f"NIGHT{i:05d}",
                            given_name="Night",
                            family_name=f"Run{i}",
                            birth_date=date(1960, 1, 1),
                            sex="female",
                            weight_kg=Decimal(70),
                            height_cm=Decimal(165),
                        ),
                        None,
                    )
                    order = {
                        "patient_id": patient.id,
                        "center_id": uuid.UUID(center["id"]),
                        "product_id": product,
                        "diagnosis_code": "G61.0",
                        "induction": {"total_dose_g_per_kg": 2, "days": 5},
                        "start_date": date.today() + timedelta(days=2 + i % 28),
                    }
                    await courses.create_course(session, CourseCreate.model_validate(order), None)
        finally:
            await db.dispose()

    asyncio.run(order_all())
    center_id: str = center["id"]
    return center_id


def runs(api: httpx.Client) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = api.get(
        "/api/v1/jobs/runs", params={"job": "auto_book", "limit": 50}
    ).json()["items"]
    return items


def test_a_survivor_finishes_the_booking_run_of_a_killed_leader(
    own_server: Server, tmp_path: Path
) -> None:
    with own_server.client("admin") as api:
        center_id = loading_courses(api, own_server.database_url)
        logs = [tmp_path / "first.log", tmp_path / "second.log"]
        processes = [scheduler(own_server.database_url, log) for log in logs]
        try:
            running = wait_for(
                "a booking run under way",
                lambda: next((r for r in runs(api) if r["outcome"] == "running"), None),
            )
            pids = {p.pid: p for p in processes}
            leader_pid = int(running["runner"].rsplit(":", 1)[1])
            assert leader_pid in pids
            survivor = next(p for p in processes if p.pid != leader_pid)
            survivor_log = logs[processes.index(survivor)]
            # One process leads. On SQLite only the leader books; on PostgreSQL any scheduler
            # books the centers it claims, leader or not (tests/test_scheduler_sharing.py).
            assert sum(b"now runs the jobs" in log.read_bytes() for log in logs) == 1
            if own_server.kind == "sqlite":
                assert b"now runs the jobs" not in survivor_log.read_bytes()

            wait_for(
                "some sessions booked",
                lambda: api.get("/api/v1/appointments", params={"center_id": center_id}).json()[
                    "items"
                ],
            )
            os.kill(leader_pid, signal.SIGKILL)
            pids[leader_pid].wait(10)
            killed_mid_run = next(r for r in runs(api) if r["id"] == running["id"])
            assert killed_mid_run["outcome"] == "running"

            finished = wait_for(
                "the survivor's finished run",
                lambda: next(
                    (
                        r
                        for r in runs(api)
                        if r["outcome"] == "succeeded" and r["runner"].endswith(f":{survivor.pid}")
                    ),
                    None,
                ),
            )
            assert finished["counts"]["failed"] == 0
            assert b"now runs the jobs" in survivor_log.read_bytes()
        finally:
            for p in processes:
                if p.poll() is None:
                    p.terminate()
                    p.wait(10)

        # The dead leader's run is closed as failed, not left "running".
        dead = next(r for r in runs(api) if r["id"] == running["id"])
        assert dead["outcome"] == "failed" and "stopped" in dead["error"]
        # Every loading course booked whole, and no session twice.
        sessions: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = api.get(
                "/api/v1/appointments",
                params={
                    "center_id": center_id,
                    "limit": 500,
                    **({"cursor": cursor} if cursor else {}),
                },
            ).json()
            sessions += page["items"]
            cursor = page["next_cursor"]
            if not cursor:
                break
        per_patient = Counter(a["patient_id"] for a in sessions if a["status"] == "booked")
        assert len(per_patient) == COURSES and set(per_patient.values()) == {5}
