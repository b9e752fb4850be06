"""Test support: fresh databases, a real server per database, and small factories."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy.engine import make_url

from app.auth.service import create_user
from app.migrate import upgrade
from core.db import Database

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct-horse-battery"
SECRET = "test-secret-not-for-production"


def postgres_admin_url() -> str | None:
    return os.environ.get("CHAIRSIDE_TEST_POSTGRES_URL") or None


def backends() -> list[str]:
    return ["sqlite", "postgresql"] if postgres_admin_url() else ["sqlite"]


def _pg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _pg_admin(admin: str, sql: str) -> None:
    # CREATE/DROP DATABASE cannot run inside a transaction block: plain asyncpg, autocommit.
    conn = await asyncpg.connect(_pg_dsn(admin))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def fresh_database(
    kind: str, tmp: Path, admin: str | None = None, prefix: str = "chairside_test"
) -> str:
    """A new, empty database of `kind`; tests and benchmarks never rely on leftovers."""
    if kind == "sqlite":
        return f"sqlite:///{tmp / f'{prefix}-{uuid.uuid4().hex[:8]}.db'}"
    admin = admin or postgres_admin_url()
    assert admin is not None, "set CHAIRSIDE_TEST_POSTGRES_URL"
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_admin(admin, f'CREATE DATABASE "{name}"'))
    return make_url(admin).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str, admin: str | None = None) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        admin = admin or postgres_admin_url()
        assert admin is not None, "set CHAIRSIDE_TEST_POSTGRES_URL"
        asyncio.run(_pg_admin(admin, f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def server_command(port: int) -> list[str]:
    """The Chairside API as uvicorn runs it, on the loopback."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "app.main:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]


def wait_healthy(process: subprocess.Popen[bytes], base: str, what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    process.wait(10)
    raise RuntimeError(f"the {what} server did not start")


async def _make_users(url: str) -> dict[str, uuid.UUID]:
    db = Database(url)
    try:
        async with db.unit_of_work() as session:
            ids = {}
            for role in ("admin", "nurse", "billing"):
                user = await create_user(session, f"{role}@test.local", role, PASSWORD, None)
                ids[role] = user.id
            return ids
    finally:
        await db.dispose()


@dataclass
class Server:
    """A running `uvicorn` process serving Chairside on a fresh, migrated database."""

    kind: str
    database_url: str
    base_url: str
    process: subprocess.Popen[bytes]
    tokens: dict[str, str] = field(default_factory=dict)

    def client(self, role: str | None = "admin", **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=60, **kwargs)

    def login(self, email: str, password: str = PASSWORD) -> str:
        with httpx.Client(base_url=self.base_url, timeout=60) as c:
            r = c.post("/api/v1/auth/token", data={"username": email, "password": password})
            r.raise_for_status()
            token: str = r.json()["access_token"]
            return token


def server_env(database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "CHAIRSIDE_DATABASE_URL": database_url,
        "CHAIRSIDE_ENVIRONMENT": "test",
        "CHAIRSIDE_SECRET_KEY": SECRET,
        "CHAIRSIDE_LOG_LEVEL": "WARNING",
        # Retry failed webhook deliveries at once, so tests need not wait for the backoff.
        "CHAIRSIDE_WEBHOOK_RETRY_SECONDS": "0",
        # Test servers run no jobs of their own (the scheduler test starts schedulers itself),
        # and the tests' webhook receiver listens on the loopback.
        "CHAIRSIDE_SCHEDULER": "false",
        "CHAIRSIDE_WEBHOOK_ALLOW_PRIVATE": "true",
    }


def start_server(kind: str, tmp: Path) -> Server:
    url = fresh_database(kind, tmp)
    try:
        upgrade(url)
        asyncio.run(_make_users(url))
        port = free_port()
        process = subprocess.Popen(server_command(port), cwd=ROOT, env=server_env(url))
        base = f"http://127.0.0.1:{port}"
        wait_healthy(process, base, "test")
        server = Server(kind, url, base, process)
        for role in ("admin", "nurse", "billing"):
            server.tokens[role] = server.login(f"{role}@test.local")
    except BaseException:
        drop_database(url)
        raise
    return server


def stop_server(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(10)
    except subprocess.TimeoutExpired:
        server.process.kill()
    drop_database(server.database_url)


# --- factories -------------------------------------------------------------------------------

WEEK = range(7)


def make_center(
    api: httpx.Client,
    *,
    timezone: str = "America/New_York",
    opens: str = "07:00",
    closes: str = "19:00",
    nurses: int = 4,
    patients_per_nurse: int = 4,
    days: range = WEEK,
) -> dict[str, Any]:
    r = api.post(
        "/api/v1/centers",
        json={
            "name": f"Center {uuid.uuid4().hex[:6]}",
            "timezone": timezone,
            "patients_per_nurse": patients_per_nurse,
            "opening_hours": [{"weekday": d, "opens": opens, "closes": closes} for d in days],
            "staffing": [
                {"weekday": d, "start": opens, "end": closes, "nurses": nurses} for d in days
            ],
        },
    )
    assert r.status_code == 201, r.text
    center: dict[str, Any] = r.json()
    return center


def make_chair(api: httpx.Client, center_id: str, kind: str = "chair") -> dict[str, Any]:
    r = api.post(
        f"/api/v1/centers/{center_id}/chairs",
        json={"label": f"{kind[0].upper()}-{uuid.uuid4().hex[:6]}", "kind": kind},
    )
    assert r.status_code == 201, r.text
    chair: dict[str, Any] = r.json()
    return chair


def make_patient(api: httpx.Client, **overrides: Any) -> dict[str, Any]:
    body = {
        "mrn": f"T{uuid.uuid4().hex[:12]}",
        "given_name": "Test",
        "family_name": "Patient",
        "birth_date": "1961-04-12",
        "sex": "female",
        "weight_kg": 70.5,
        "height_cm": 168,
        **overrides,
    }
    r = api.post("/api/v1/patients", json=body)
    assert r.status_code == 201, r.text
    patient: dict[str, Any] = r.json()
    return patient


def book(
    api: httpx.Client, patient_id: str, chair_id: str, start: str, minutes: int = 180, **extra: Any
) -> httpx.Response:
    return api.post(
        "/api/v1/appointments",
        json={
            "patient_id": patient_id,
            "chair_id": chair_id,
            "start": start,
            "duration_minutes": minutes,
            **extra,
        },
    )


def patient_user(server: Server, api: httpx.Client) -> tuple[dict[str, Any], httpx.Client]:
    """A new patient, and a client signed in as the patient user linked to them (close it)."""

    patient = make_patient(api)
    email = f"p-{uuid.uuid4().hex[:8]}@test.local"

    async def add() -> None:
        db = Database(server.database_url)
        try:
            async with db.unit_of_work() as session:
                await create_user(session, email, "patient", PASSWORD, uuid.UUID(patient["id"]))
        finally:
            await db.dispose()

    asyncio.run(add())
    token = server.login(email)
    client = httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {token}"})
    return patient, client
