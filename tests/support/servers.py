"""A real Chairside server per database kind, started as production starts it (uvicorn in a
process of its own), with a user of each role."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from app.auth.service import create_user
from app.migrate import upgrade
from core.db import Database
from tests.support.databases import drop_database, fresh_database

ROOT = Path(__file__).resolve().parents[2]  # the project's root
PASSWORD = "correct-horse-battery"
SECRET = "test-secret-not-for-production"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def server_command(port: int) -> list[str]:
    """The Chairside API as production serves it (`chairside serve`: uvicorn with the header
    limits of `app.http_limits`), on the loopback. Whether it runs jobs is left to the
    environment (`CHAIRSIDE_SCHEDULER`, false in `server_env`)."""
    return [
        sys.executable,
        "-m",
        "app.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
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


def at(now: datetime) -> dict[str, str]:
    """Headers that make a test server handle the request as if it were `now` (aware)."""
    return {"Chairside-Test-Now": now.isoformat()}


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
        # Requests may carry Chairside-Test-Now (see `at`) to act on sessions booked ahead.
        "CHAIRSIDE_TEST_CLOCK": "true",
        # Each refusal of no one signed in an audit event (tests count them; test_refusal_flood
        # checks the folding into the minute's tally on servers of its own).
        "CHAIRSIDE_UNAUTHENTICATED_EVENTS_PER_ADDRESS_PER_MINUTE": "1000000",
        # All the tests' requests come from the loopback, and the schema fuzz alone sends
        # thousands of bad credentials a minute: the throttle would answer later tests 429.
        "CHAIRSIDE_UNAUTHENTICATED_PER_ADDRESS_PER_MINUTE": "1000000",
    }


def start_server(kind: str, tmp: Path, env: dict[str, str] | None = None) -> Server:
    """A real server on a fresh database of `kind`; `env` adds or overrides its settings."""
    url = fresh_database(kind, tmp)
    try:
        upgrade(url)
        asyncio.run(_make_users(url))
        port = free_port()
        process = subprocess.Popen(
            server_command(port), cwd=ROOT, env=server_env(url) | (env or {})
        )
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
