"""A flood of requests with bad tokens (issue 14, defect 9): every refusal is counted, in one
tally per client address and minute, not one audit event each; past the per-address limit
the flood is turned away (429, Retry-After) before anything is written; and someone signed
in from the same address is served as usual."""

from __future__ import annotations

import asyncio
import math
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.auth.flood import Gate
from core.db import Database
from tests.support.databases import backends
from tests.support.servers import Server, start_server, stop_server
from tests.support.stored import audit_rows

LIMIT = 100  # refusals answered per address and minute on the flood's server
REQUESTS = 1000
THREADS = 8


@pytest.fixture(params=backends())
def flooded(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    """A server of its own: the flood leaves the loopback address throttled for a minute,
    and the shared test servers keep every refusal an event of its own (see server_env)."""
    srv = start_server(
        request.param,
        tmp_path,
        env={
            "CHAIRSIDE_UNAUTHENTICATED_PER_ADDRESS_PER_MINUTE": str(LIMIT),
            "CHAIRSIDE_UNAUTHENTICATED_EVENTS_PER_ADDRESS_PER_MINUTE": "1",
        },
    )
    try:
        yield srv
    finally:
        stop_server(srv)


def flood(server: Server, part: int) -> tuple[list[httpx.Response], list[int]]:
    """This thread's share: bad and missing credentials on audited routes (a patient's
    record, the patient search) and an unaudited one (the centers). The first thread also
    asks as a nurse now and then (each must be served): how many of its flood's answers were
    429s before each of the nurse's."""
    paths = [f"/api/v1/patients/{uuid.uuid4()}", "/api/v1/patients", "/api/v1/centers"]
    answers: list[httpx.Response] = []
    nurse: list[int] = []
    turned_away = 0
    with httpx.Client(base_url=server.base_url, timeout=60) as c, server.client("nurse") as n:
        for i in range(part, REQUESTS, THREADS):
            headers = {"Authorization": f"Bearer not-a-token-{i}"} if i % 10 else {}
            answers.append(c.get(paths[i % len(paths)], headers=headers))
            turned_away += answers[-1].status_code == 429
            if part == 0 and i % 40 == 0:
                served = n.get("/api/v1/centers")
                assert served.status_code == 200, served.text
                nurse.append(turned_away)
    return answers, nurse


def minutes_between(start: datetime, end: datetime) -> int:
    first = start.replace(second=0, microsecond=0)
    return int((end.replace(second=0, microsecond=0) - first) / timedelta(minutes=1)) + 1


def tallies(admin: httpx.Client, **params: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, "limit": "500", **({"cursor": cursor} if cursor else {})}
        page = admin.get("/api/v1/audit/refusals", params=query)
        assert page.status_code == 200, page.text
        found += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return found


def test_a_bad_token_flood_is_counted_in_a_tally_and_throttled(flooded: Server) -> None:
    before = audit_rows(flooded)
    started = datetime.now(UTC)
    with ThreadPoolExecutor(THREADS) as pool:
        parts = list(pool.map(lambda p: flood(flooded, p), range(THREADS)))
    ended = datetime.now(UTC)
    answers = [r for part, _ in parts for r in part]
    statuses = Counter(r.status_code for r in answers)
    added = audit_rows(flooded) - before
    with flooded.client("admin") as admin:
        counted = tallies(admin, client="127.0.0.1")
        trail = admin.get("/api/v1/audit-events", params={"limit": "500"}).json()["items"]

    minutes = minutes_between(started, ended)
    tally = sum(t["count"] for t in counted)
    print(
        f"\n{flooded.kind}: {len(answers)} requests sent in {(ended - started).total_seconds():.1f}"
        f" s, {statuses[401]} answered 401, {statuses[429]} answered 429, {added} audit rows "
        f"added, tally count {tally} in {len(counted)} tally rows over {minutes} minute(s); "
        f"the nurse's {len(parts[0][1])} requests from the same address all answered 200"
    )
    assert set(statuses) == {401, 429}, statuses
    refill = math.ceil((ended - started).total_seconds() * LIMIT / 60)
    assert LIMIT <= statuses[401] <= LIMIT + refill, "a burst of the limit, then the refill only"
    # Every answered refusal is counted: the tally has them all, and the trail one a minute.
    assert tally == statuses[401]
    assert len(counted) <= minutes and 1 <= added <= minutes
    assert sum(t["events"] for t in counted) == added
    assert {t["client"] for t in counted} == {"127.0.0.1"}
    answered = {r.headers["x-request-id"] for r in answers if r.status_code == 401}
    assert {t["first_request_id"] for t in counted} <= answered
    refused = [e for e in trail if e["outcome"] == "denied"]
    assert len(refused) == added and {e["request_id"] for e in refused} <= answered
    assert all((e["role"], e["actor_id"]) == ("anonymous", None) for e in refused)

    turned_away = [r for r in answers if r.status_code == 429]
    for r in turned_away:
        assert r.headers["content-type"] == "application/problem+json"
        assert 1 <= int(r.headers["Retry-After"]) <= 60
        assert r.json()["type"] == "https://chairside.dev/problems/too-many-requests"
    # Someone signed in, from the same address, while it is throttled: served as usual.
    assert parts[0][1][-1] > 0, "the nurse asked after the address was turned away"

    # The tally only grows: the database refuses to lower or remove it.
    async def tamper() -> list[str]:
        db = Database(flooded.database_url)
        refusals = []
        try:
            for statement in (
                "UPDATE refusal_tallies SET count = 1",
                "DELETE FROM refusal_tallies",
            ):
                try:
                    async with db.unit_of_work() as session:
                        await session.execute(text(statement))
                except DBAPIError:
                    refusals.append(statement)
        finally:
            await db.dispose()
        return refusals

    assert len(asyncio.run(tamper())) == 2
    with flooded.client("admin") as admin:
        assert sum(t["count"] for t in tallies(admin, client="127.0.0.1")) == tally

    # Guessed calendar links (the link's secret is the credential): 404 each, counted in the
    # tally, not an audit event each either.
    before = audit_rows(flooded)
    with httpx.Client(base_url=flooded.base_url, timeout=60) as c:
        guesses = [c.get(f"/calendar/{uuid.uuid4().hex}.ics").status_code for _ in range(20)]
    assert guesses == [404] * 20
    assert audit_rows(flooded) - before <= 1
    with flooded.client("admin") as admin:
        assert sum(t["count"] for t in tallies(admin, client="127.0.0.1")) == tally + 20


def test_the_gate_lets_a_burst_through_then_one_per_share_of_the_minute() -> None:
    now = [0.0]
    gate = Gate(60, clock=lambda: now[0])
    assert [gate.admit("a") for _ in range(60)] == [0] * 60
    assert gate.admit("a") == 1  # one comes back every second
    assert gate.admit("b") == 0, "addresses are counted apart"
    now[0] += 1.0
    assert gate.admit("a") == 0 and gate.admit("a") == 1
    now[0] += 120.0
    assert [gate.admit("a") for _ in range(60)] == [0] * 60, "a quiet minute fills it again"


def test_the_gate_forgets_quiet_addresses_when_it_holds_too_many() -> None:
    now = [0.0]
    gate = Gate(5, clock=lambda: now[0], max_addresses=100)
    for i in range(100):
        gate.admit(f"10.0.0.{i}")
    now[0] += 120.0
    gate.admit("10.0.1.1")
    assert len(gate) <= 100
    for _ in range(5):
        gate.admit("10.0.1.1")
    assert gate.admit("10.0.1.1") > 0, "a busy address is not forgotten"
