"""Sign-in, tokens, and who may call what."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from tests.support.factories import make_center, make_patient
from tests.support.servers import PASSWORD, Server


def test_login_logout_and_revocation(server: Server) -> None:
    token = server.login("nurse@test.local")
    with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}) as c:
        assert c.get("/api/v1/centers").status_code == 200
        assert c.post("/api/v1/auth/logout").status_code == 204
        r = c.get("/api/v1/centers")
        assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"


def test_wrong_password_and_unknown_user_look_the_same(anonymous: httpx.Client) -> None:
    bad = anonymous.post(
        "/api/v1/auth/token", data={"username": "nurse@test.local", "password": "nope-nope"}
    )
    unknown = anonymous.post(
        "/api/v1/auth/token", data={"username": "ghost@test.local", "password": PASSWORD}
    )
    assert bad.status_code == unknown.status_code == 401
    assert bad.json()["detail"] == unknown.json()["detail"]


def test_missing_or_garbage_tokens_are_401(anonymous: httpx.Client) -> None:
    assert anonymous.get("/api/v1/centers").status_code == 401
    for header in ("Bearer", "Bearer not-a-token", "Basic abc", "Token abc"):
        r = anonymous.get("/api/v1/centers", headers={"Authorization": header})
        assert r.status_code == 401, header
        assert r.headers["WWW-Authenticate"] == "Bearer"


def test_billing_reads_but_does_not_write(billing: httpx.Client, nurse: httpx.Client) -> None:
    center = make_center(nurse)
    assert billing.get(f"/api/v1/centers/{center['id']}").status_code == 200
    r = billing.post(f"/api/v1/centers/{center['id']}/chairs", json={"label": "X1"})
    assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"
    assert billing.get(f"/api/v1/centers/{center['id']}/chairs").json()["items"] == []


def test_patients_may_not_use_staff_routes(server: Server, nurse: httpx.Client) -> None:
    from app.auth.service import create_user
    from core.db import Database

    patient = make_patient(nurse)
    email = f"p-{uuid.uuid4().hex[:6]}@test.local"

    async def add() -> None:
        db = Database(server.database_url)
        async with db.unit_of_work() as session:
            await create_user(session, email, "patient", PASSWORD, uuid.UUID(patient["id"]))
        await db.dispose()

    asyncio.run(add())
    token = server.login(email)
    with httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}) as c:
        for path in (
            "/api/v1/centers",
            "/api/v1/patients",
            f"/api/v1/patients/{patient['id']}",
            "/api/v1/appointments",
        ):
            assert c.get(path).status_code == 403, path
        assert c.post("/api/v1/patients", json={}).status_code in (403, 422)
        assert c.post("/api/v1/auth/logout").status_code == 204


def test_openapi_and_docs_are_public_and_document_errors(anonymous: httpx.Client) -> None:
    spec = anonymous.get("/openapi.json")
    assert spec.status_code == 200
    assert anonymous.get("/docs").status_code == 200
    paths = spec.json()["paths"]
    assert "/api/v1/appointments" in paths
    post = paths["/api/v1/appointments"]["post"]["responses"]
    assert {"201", "409", "422"} <= set(post)


def test_idle_and_expired_tokens_are_refused(server: Server) -> None:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from app.auth.models import AccessToken
    from app.auth.service import token_digest
    from core.db import Database
    from tests.support.servers import SECRET

    async def age(token: str, **values: datetime) -> None:
        db = Database(server.database_url)
        async with db.unit_of_work() as session:
            await session.execute(
                update(AccessToken)
                .where(AccessToken.token_hash == token_digest(token, SECRET))
                .values(**values)
            )
        await db.dispose()

    now = datetime.now(UTC)
    for values in (
        {"last_used_at": now - timedelta(minutes=31)},
        {"expires_at": now - timedelta(seconds=1)},
    ):
        token = server.login("billing@test.local")
        with httpx.Client(
            base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}
        ) as c:
            assert c.get("/api/v1/centers").status_code == 200
            asyncio.run(age(token, **values))
            assert c.get("/api/v1/centers").status_code == 401


def test_control_characters_in_a_login_are_just_a_failed_login(anonymous: httpx.Client) -> None:
    r = anonymous.post("/api/v1/auth/token", data={"username": "a\x00b@x", "password": "whatever1"})
    assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"


def test_log_lines_never_carry_exception_messages() -> None:
    """Database errors quote statement values; the JSON log keeps only types and places."""
    import logging

    from sqlalchemy.exc import IntegrityError

    from core.logs import JsonFormatter

    try:
        try:
            raise ValueError("MRN-4471 Jane Secretname")
        except ValueError as inner:
            raise IntegrityError("INSERT ...", {"mrn": "MRN-4471"}, inner) from inner
    except IntegrityError as exc:
        record = logging.LogRecord(
            "chairside",
            logging.ERROR,
            __file__,
            1,
            "boom",
            None,
            (type(exc), exc, exc.__traceback__),
        )
    line = JsonFormatter().format(record)
    assert "IntegrityError" in line and "ValueError" in line
    assert "MRN-4471" not in line and "Secretname" not in line


def test_sign_in_guessing_is_throttled_per_account_alike_for_unknown_accounts(
    server: Server, nurse: httpx.Client
) -> None:
    email = f"throttled-{uuid.uuid4().hex[:6]}@test.local"
    _add_user(server, email)
    ghost = f"ghost-{uuid.uuid4().hex[:6]}@test.local"
    with httpx.Client(base_url=server.base_url) as c:
        for who in (email, ghost):
            answers = [
                c.post("/api/v1/auth/token", data={"username": who, "password": "wrong-wrong"})
                for _ in range(5)
            ]
            assert {a.status_code for a in answers} == {401}
            # Even the right password waits now: the account is being guessed at.
            r = c.post("/api/v1/auth/token", data={"username": who, "password": PASSWORD})
            assert r.status_code == 429, r.text
            assert 0 < int(r.headers["Retry-After"]) <= 15 * 60
            assert r.headers["content-type"] == "application/problem+json"
        # Other accounts from the same address are not held up by it.
        ok = c.post(
            "/api/v1/auth/token", data={"username": "nurse@test.local", "password": PASSWORD}
        )
        assert ok.status_code == 200


def test_sign_in_guessing_is_throttled_per_address(server: Server) -> None:
    # Another loopback address: this test's failures must not hold up the rest of the suite.
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(base_url=server.base_url, transport=transport) as c:
        for _ in range(20):
            who = f"ghost-{uuid.uuid4().hex[:8]}@test.local"
            r = c.post("/api/v1/auth/token", data={"username": who, "password": "wrong-wrong"})
            assert r.status_code == 401
        r = c.post(
            "/api/v1/auth/token", data={"username": "admin@test.local", "password": PASSWORD}
        )
        assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    server.login("admin@test.local")  # from 127.0.0.1, still fine


def _add_user(server: Server, email: str) -> None:
    from app.auth.service import create_user
    from core.db import Database

    async def add() -> None:
        db = Database(server.database_url)
        try:
            async with db.unit_of_work() as session:
                await create_user(session, email, "billing", PASSWORD, None)
        finally:
            await db.dispose()

    asyncio.run(add())


def test_a_deactivated_user_is_signed_out_everywhere(server: Server) -> None:
    from app.auth.service import deactivate_user
    from core.db import Database

    email = f"leaver-{uuid.uuid4().hex[:6]}@test.local"
    _add_user(server, email)
    tokens = [server.login(email), server.login(email)]

    async def deactivate() -> None:
        db = Database(server.database_url)
        try:
            async with db.unit_of_work() as session:
                await deactivate_user(session, email)
        finally:
            await db.dispose()

    for token in tokens:
        me = httpx.get(
            f"{server.base_url}/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}
        )
        assert me.status_code == 200
    asyncio.run(deactivate())
    for token in tokens:
        me = httpx.get(
            f"{server.base_url}/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}
        )
        assert me.status_code == 401
    r = httpx.post(
        f"{server.base_url}/api/v1/auth/token", data={"username": email, "password": PASSWORD}
    )
    assert r.status_code == 401


async def _through_guard(inner: Any, method: str, path: str, limit: float) -> httpx.Response:
    """One request through the request guard (time limit, body limit) around `inner`."""
    from app.api.metrics import Metrics
    from app.api.middleware import RequestGuard

    app = RequestGuard(inner, max_bytes=1000, metrics=Metrics(), timeout=limit)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        return await c.request(method, path)


def test_a_request_that_runs_too_long_is_answered_503_and_undone() -> None:

    finished = []

    async def slow(scope: Any, receive: Any, send: Any) -> None:
        await asyncio.sleep(5)
        finished.append(True)

    r = asyncio.run(_through_guard(slow, "GET", "/api/v1/anything", limit=0.2))
    assert r.status_code == 503 and r.headers["content-type"] == "application/problem+json"
    assert finished == []  # cancelled, not left running


def test_a_route_the_policy_exempts_lifts_the_time_limit() -> None:
    """Job runs and sweeps (timeout=False in the policy table) lift the request's deadline
    from inside the route, once routing has told which route it is."""
    from starlette.requests import Request

    from app.api.deps import unlimited

    finished = []

    async def long_run(scope: Any, receive: Any, send: Any) -> None:
        unlimited(Request(scope))
        await asyncio.sleep(0.6)
        finished.append(True)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})

    r = asyncio.run(_through_guard(long_run, "POST", "/api/v1/jobs/auto_book/run", limit=0.2))
    assert (r.status_code, r.text, finished) == (200, "done", [True])


def test_a_burst_of_guesses_sent_at_once_gets_no_more_tries_than_the_limit(server: Server) -> None:
    email = f"burst-{uuid.uuid4().hex[:6]}@test.local"
    _add_user(server, email)

    async def burst() -> list[int]:
        transport = httpx.AsyncHTTPTransport(local_address="127.0.0.3")
        async with httpx.AsyncClient(base_url=server.base_url, transport=transport) as c:
            answers = await asyncio.gather(
                *(
                    c.post(
                        "/api/v1/auth/token", data={"username": email, "password": "guess-guess"}
                    )
                    for _ in range(12)
                )
            )
        return [a.status_code for a in answers]

    statuses = asyncio.run(burst())
    assert set(statuses) <= {401, 429} and statuses.count(401) <= 5, statuses
    assert statuses.count(429) >= 7


def test_housekeeping_throws_away_old_failed_sign_ins_only(
    server: Server, admin: httpx.Client
) -> None:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import func, select

    from app.auth.models import SignInFailure
    from core.db import Database

    async def plant_and_count(plant: bool) -> tuple[int, int]:
        db = Database(server.database_url)
        now = datetime.now(UTC)
        try:
            if plant:
                async with db.unit_of_work() as session:
                    for age in (timedelta(days=3), timedelta(minutes=1)):
                        session.add(
                            SignInFailure(at=now - age, account=b"k" * 32, address="198.51.100.7")
                        )
            async with db.unit_of_work(write=False) as session:
                mine = select(func.count()).where(SignInFailure.address == "198.51.100.7")
                old = await session.scalar(mine.where(SignInFailure.at < now - timedelta(days=2)))
                new = await session.scalar(mine.where(SignInFailure.at >= now - timedelta(days=2)))
                return int(old or 0), int(new or 0)
        finally:
            await db.dispose()

    assert asyncio.run(plant_and_count(True)) == (1, 1)
    run = admin.post("/api/v1/jobs/housekeeping/run").json()
    assert run["outcome"] == "succeeded" and run["counts"]["sign_in_failures_deleted"] >= 1
    assert asyncio.run(plant_and_count(False)) == (0, 1)
