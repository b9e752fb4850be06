"""A finished request leaves nothing for the cycle collector.

Anything a request builds that refers back to itself (a callback holding the request that
holds the callback) outlives the request until a full collection walks it. Under load those
full collections came every second or so and stopped every request in flight for tens of
milliseconds: the API's worst latencies. Reference counting frees a request at once when
nothing in it forms a cycle, so the test runs audited requests with the collector off and
asks it what it would have had to free."""

from __future__ import annotations

import asyncio
import gc
import uuid

import httpx
from starlette.requests import Request

from app.auth.service import create_user
from app.main import create_app
from app.settings import Settings
from core.db import Database
from tests.support.factories import patient_body
from tests.support.servers import PASSWORD, SECRET


async def _audited_requests(url: str) -> None:
    """Sign in, then an audited write and an audited read, in process."""
    db = Database(url)
    email = f"nurse-{uuid.uuid4().hex[:8]}@test.local"
    try:
        async with db.unit_of_work() as session:
            await create_user(session, email, "nurse", PASSWORD, None)
        app = create_app(
            Settings(database_url=url, environment="test", secret_key=SECRET, scheduler=False)
        )
        app.state.db = db  # what the lifespan would set (not run here: it freezes the heap)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://chairside") as c:
            r = await c.post("/api/v1/auth/token", data={"username": email, "password": PASSWORD})
            assert r.status_code == 200, r.text
            c.headers["Authorization"] = f"Bearer {r.json()['access_token']}"

            async def work() -> None:
                made = await c.post("/api/v1/patients", json=patient_body())
                assert made.status_code == 201, made.text
                read = await c.get(f"/api/v1/patients/{made.json()['id']}")
                assert read.status_code == 200, read.text

            await work()  # first use builds caches, which live on and are no garbage
            gc.collect()
            gc.disable()
            try:
                for _ in range(3):
                    await work()
                gc.set_debug(gc.DEBUG_SAVEALL)
                gc.collect()
            finally:
                gc.set_debug(0)
                gc.enable()
    finally:
        await db.dispose()


def test_audited_requests_leave_no_cycles_behind(migrated_url: str) -> None:
    del gc.garbage[:]
    try:
        asyncio.run(_audited_requests(migrated_url))
        left = [o for o in gc.garbage if isinstance(o, Request)]
    finally:
        del gc.garbage[:]
    assert left == [], f"{len(left)} requests were left for the cycle collector"
