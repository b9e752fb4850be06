"""Where a hot request's time goes: its SQL statements and, optionally, a CPU profile.

The app runs in this process (no server, no network): a fresh migrated database, one center
filled through the API, then a number of bookings (POST /api/v1/appointments, each for a
different slot, as bench/booking.py plans them) and portal reads (GET
/api/v1/portal/appointments by a patient user). Printed per request kind: statements and
transactions a request, each distinct statement (shortened) with how often a request runs it,
and with --profile the functions where the CPU goes (cProfile, sorted by own time).

    .venv/bin/python -m bench.statements [--db postgresql|sqlite] [--requests 200] [--profile]

This is the measurement that decides what to change on the hot routes; it prints figures and
asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import pstats
import re
import secrets
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event

from app.main import create_app
from app.migrate import upgrade
from app.settings import Settings
from bench.booking import (
    ADMIN_EMAIL,
    DEFAULT_PG_URL,
    Setup,
    booking_jobs,
    center_job,
    make_admin,
    patient_job,
)
from core.db import Database
from tests.support.databases import drop_database, fresh_database

PATIENT_EMAIL = "patient@bench.local"
JSON = {"Content-Type": "application/json"}


class Statements:
    """Counts what the app's engine sends, by statement text."""

    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()
        self.on = False

    def __call__(self, conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        if self.on:
            self.seen[_short(statement)] += 1


def _short(statement: str) -> str:
    flat = re.sub(r"\s+", " ", statement).strip()
    return flat if len(flat) <= 110 else flat[:107] + "..."


async def _expect(response: Awaitable[httpx.Response], status: int) -> dict[str, Any]:
    r = await response
    if r.status_code != status:
        raise RuntimeError(f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text}")
    body: dict[str, Any] = r.json()
    return body


async def _created(c: httpx.AsyncClient, path: str, body: bytes) -> str:
    """POST a JSON body that must create something; its id."""
    return str((await _expect(c.post(path, content=body, headers=JSON), 201))["id"])


async def run(url: str, requests: int, profile: bool) -> None:
    password = secrets.token_urlsafe(16)
    await make_admin(url, password)
    settings = Settings(
        database_url=url, environment="test", secret_key="x" * 40, log_level="WARNING"
    )
    app = create_app(settings)
    counter = Statements()
    async with app.router.lifespan_context(app):
        db: Database = app.state.db
        event.listen(db.engine.sync_engine, "before_cursor_execute", counter)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport,
            base_url="http://bench",
        ) as c:
            token = (
                await _expect(
                    c.post(
                        "/api/v1/auth/token", data={"username": ADMIN_EMAIL, "password": password}
                    ),
                    200,
                )
            )["access_token"]
            c.headers["Authorization"] = f"Bearer {token}"
            center = await _created(c, "/api/v1/centers", center_job().body)
            chairs = [
                await _created(
                    c,
                    f"/api/v1/centers/{center}/chairs",
                    json.dumps({"label": f"C-{i:02d}", "kind": "chair"}).encode(),
                )
                for i in range(60)
            ]
            patients = [
                await _created(c, "/api/v1/patients", patient_job(i).body) for i in range(200)
            ]
            jobs = booking_jobs(Setup(center, chairs, patients), requests + 10, 30)
            for job in jobs[:10]:  # warm: first-use compilation is not a request's cost
                await _expect(c.post(job.path, content=job.body, headers=JSON), 201)
            await _expect(
                c.post(
                    "/api/v1/users",
                    json={
                        "email": PATIENT_EMAIL,
                        "role": "patient",
                        "password": password,
                        "patient_id": patients[0],
                    },
                ),
                201,
            )
            r = await c.post(
                "/api/v1/auth/token", data={"username": PATIENT_EMAIL, "password": password}
            )
            patient_token = r.json()["access_token"]
            portal = {"Authorization": f"Bearer {patient_token}"}
            await _expect(c.get("/api/v1/portal/appointments", headers=portal), 200)

            async def book() -> None:
                for job in jobs[10:]:
                    await _expect(c.post(job.path, content=job.body, headers=JSON), 201)

            async def read() -> None:
                for _ in range(requests):
                    await _expect(c.get("/api/v1/portal/appointments", headers=portal), 200)

            await measure("booking POST /api/v1/appointments", book, requests, counter, profile)
            portal_read = "portal GET /api/v1/portal/appointments"
            await measure(portal_read, read, requests, counter, profile)


async def measure(
    name: str,
    work: Callable[[], Awaitable[None]],
    requests: int,
    counter: Statements,
    profile: bool,
) -> None:
    counter.seen.clear()
    counter.on = True
    # CPU time, not wall time: the waits on the database are not this process's cost.
    profiler = cProfile.Profile(time.process_time) if profile else None
    if profiler:
        profiler.enable()
    await work()
    if profiler:
        profiler.disable()
    counter.on = False
    total = sum(counter.seen.values())
    print(f"\n== {name}: {total / requests:.1f} statements a request ==")
    for statement, n in counter.seen.most_common():
        print(f"{n / requests:6.2f}  {statement}")
    if profiler:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats("cumulative").print_stats(60)
        print(out.getvalue())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--db", choices=["postgresql", "sqlite"], default="postgresql")
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--profile", action="store_true")
    p.add_argument("--pg-url", default=DEFAULT_PG_URL)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="chairside-bench-") as tmp:
        url = fresh_database(args.db, Path(tmp), args.pg_url, prefix="chairside_bench")
        try:
            upgrade(url)
            asyncio.run(run(url, args.requests, args.profile))
        finally:
            drop_database(url, args.pg_url)


if __name__ == "__main__":
    main()
