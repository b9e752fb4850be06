"""Bookings while PostgreSQL goes away: backends terminated, then every connection reset and
new ones refused for a few seconds. The server must answer every request (201, 409 or a 503
with Retry-After; never a 500), say not ready while the database is out of reach, recover by
itself, and every booking it answered 201 must be stored. A 503 that could not tell whether
the commit happened says so; the same request sent again with its Idempotency-Key settles it.

The server reaches PostgreSQL through a TCP relay (tests/support/faults.py) the test cuts:
real connections, really reset and refused.
"""

from __future__ import annotations

import asyncio
import random
import subprocess
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url

from app.auth.service import create_user
from app.migrate import upgrade
from core.db import Database
from tests.support.databases import drop_database, fresh_database, postgres_admin_url
from tests.support.factories import make_center, make_chair, make_patient
from tests.support.faults import TcpRelay
from tests.support.servers import (
    PASSWORD,
    ROOT,
    Server,
    free_port,
    server_command,
    server_env,
    wait_healthy,
)

pytestmark = [
    pytest.mark.concurrency,
    pytest.mark.skipif(postgres_admin_url() is None, reason="needs PostgreSQL"),
]
OUTAGE_SLUGS = {"database-unavailable", "database-busy", "commit-outcome-unknown"}
FIRST_DAY = date(2027, 3, 1)


async def _users(url: str) -> None:
    db = Database(url)
    try:
        async with db.unit_of_work() as session:
            for role in ("admin", "nurse"):
                await create_user(session, f"{role}@test.local", role, PASSWORD, None)
    finally:
        await db.dispose()


@pytest.fixture
def relayed(tmp_path: Path) -> Iterator[tuple[Server, TcpRelay]]:
    """A server whose every database connection goes through a relay the test can cut."""
    url = fresh_database("postgresql", tmp_path)
    parsed = make_url(url)
    relay = TcpRelay(parsed.host or "127.0.0.1", parsed.port or 5432).start()
    process: subprocess.Popen[bytes] | None = None
    try:
        upgrade(url)
        asyncio.run(_users(url))
        through_relay = parsed.set(host="127.0.0.1", port=relay.port).render_as_string(
            hide_password=False
        )
        port = free_port()
        env = server_env(url) | {"CHAIRSIDE_DATABASE_URL": through_relay}
        process = subprocess.Popen(server_command(port), cwd=ROOT, env=env)
        base = f"http://127.0.0.1:{port}"
        wait_healthy(process, base, "relayed")
        server = Server("postgresql", url, base, process)
        for role in ("admin", "nurse"):
            server.tokens[role] = server.login(f"{role}@test.local")
        yield server, relay
    finally:
        if process is not None:
            process.terminate()
            process.wait(15)
        relay.stop()
        drop_database(url)


def terminate_backends(url: str, seconds: float) -> int:
    """pg_terminate_backend on every connection to the server's database, every 200 ms, as
    an administrator (or a failover) does; straight to PostgreSQL, not through the relay."""
    database = make_url(url).database
    admin = make_url(url).set(drivername="postgresql", database="postgres")

    async def run() -> int:
        conn = await asyncpg.connect(admin.render_as_string(hide_password=False))
        killed = 0
        try:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                killed += await conn.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = $1 AND pid <> pg_backend_pid()",
                    database,
                )
                await asyncio.sleep(0.2)
        finally:
            await conn.close()
        return killed

    return asyncio.run(run())


def bookings(chairs: list[str], patients: list[str], count: int) -> list[dict[str, Any]]:
    rng = random.Random(14)
    out = []
    for _ in range(count):
        day = FIRST_DAY + timedelta(days=rng.randrange(60))
        out.append(
            {
                "patient_id": rng.choice(patients),
                "chair_id": rng.choice(chairs),
                "start": f"{day.isoformat()}T{rng.randrange(8, 17):02d}:00:00-05:00",
                "duration_minutes": 60,
            }
        )
    return out


Answer = tuple[int, str, dict[str, Any], httpx.Response | None]


def book_until(server: Server, plan: list[dict[str, Any]], stop: threading.Event) -> list[Answer]:
    answers: list[Answer] = []
    with server.client("nurse") as nurse:
        for body in plan:
            if stop.is_set():
                break
            key = uuid.uuid4().hex
            try:
                r = nurse.post("/api/v1/appointments", json=body, headers={"Idempotency-Key": key})
            except httpx.TransportError:
                answers.append((0, key, body, None))  # no answer at all: a failure here
                continue
            answers.append((r.status_code, key, body, r))
    return answers


def test_bookings_through_terminated_and_refused_connections(
    relayed: tuple[Server, TcpRelay],
) -> None:
    server, relay = relayed
    with server.client("admin") as admin:
        center = make_center(admin, nurses=60, patients_per_nurse=4)
        chairs = [make_chair(admin, center["id"])["id"] for _ in range(12)]
        patients = [make_patient(admin)["id"] for _ in range(60)]

    stop = threading.Event()
    results: list[list[Answer]] = [[] for _ in range(4)]
    workers = [
        threading.Thread(
            target=lambda i=i: results[i].extend(
                book_until(server, bookings(chairs, patients, 5000)[i::4], stop)
            )
        )
        for i in range(4)
    ]
    for w in workers:
        w.start()
    ready_codes: Counter[int] = Counter()
    try:
        time.sleep(2)
        terminated = terminate_backends(server.database_url, 3)
        time.sleep(1)
        cutter = threading.Thread(target=relay.cut, args=(3,))
        cutter.start()
        time.sleep(0.5)
        with httpx.Client(base_url=server.base_url, timeout=30) as probe:
            while cutter.is_alive():
                ready = probe.get("/readyz")
                ready_codes[ready.status_code] += 1
                if ready.status_code == 503:
                    assert ready.headers.get("retry-after")
                time.sleep(0.2)
            cutter.join()
            # The pool recovers by itself: ready again without a restart.
            recovered = time.monotonic()
            deadline = recovered + 30
            while probe.get("/readyz").status_code != 200:
                assert time.monotonic() < deadline, "not ready 30 s after the outage"
                time.sleep(0.1)
            recovery_seconds = time.monotonic() - recovered
        time.sleep(2)
    finally:
        stop.set()
        for w in workers:
            w.join(120)
    answers = [a for worker in results for a in worker]
    codes = Counter(code for code, *_ in answers)
    slugs = Counter(
        r.json()["type"].rsplit("/", 1)[1] for code, _, _, r in answers if code == 503 and r
    )
    print(
        f"\n{len(answers)} bookings: {dict(sorted(codes.items()))}; 503 kinds {dict(slugs)};"
        f" {terminated} backends terminated; readyz during the cut {dict(ready_codes)};"
        f" ready again {recovery_seconds:.2f} s after it"
    )
    assert set(codes) <= {201, 409, 503}, codes
    assert codes[503] > 0 and codes[201] > 0  # the faults hit, and bookings went through
    assert ready_codes[503] > 0
    for code, _, _, r in answers:
        if code == 503:
            assert r is not None and r.headers["content-type"] == "application/problem+json"
            assert int(r.headers["retry-after"]) >= 1
    assert set(slugs) <= OUTAGE_SLUGS

    with server.client("nurse") as nurse:
        # Every 201 is stored, as answered.
        booked: dict[str, str] = {}
        for code, key, body, r in answers:
            if code == 201 and r is not None:
                stored = nurse.get(f"/api/v1/appointments/{r.json()['id']}")
                assert stored.status_code == 200
                assert stored.json()["patient_id"] == body["patient_id"]
                booked[key] = r.json()["id"]
        # Each request the outage answered 503, sent again with its key: saved once at most.
        for code, key, body, _ in answers:
            if code == 503:
                again = nurse.post(
                    "/api/v1/appointments", json=body, headers={"Idempotency-Key": key}
                )
                assert again.status_code in (201, 409), again.text
                if again.status_code == 201:
                    booked[key] = again.json()["id"]
        stored_ids: set[str] = set()
        cursor = None
        while True:
            page = nurse.get(
                "/api/v1/appointments",
                params={
                    "center_id": center["id"],
                    "limit": 500,
                    **({"cursor": cursor} if cursor else {}),
                },
            ).json()
            stored_ids |= {a["id"] for a in page["items"]}
            cursor = page["next_cursor"]
            if not cursor:
                break
    # Nothing stored that no answer owns, and no booking twice.
    assert stored_ids == set(booked.values())
    assert len(booked) == len(set(booked.values()))
