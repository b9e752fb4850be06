"""The access policy, cell by cell: every route of the app, every method, every role and no
one signed in. Generated from the app's routes, so a new route is checked the day it lands."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.api import policy
from app.auth.models import AccessToken
from app.auth.service import issue_token, token_digest
from app.main import ROUTERS, create_app, served
from app.settings import Settings
from core.db import Database
from tests.support.factories import patient_user
from tests.support.servers import SECRET, Server
from tests.support.stored import audit_rows

# Path parameters that must take a known value for the route to be reached at all.
KNOWN = {"action": "cancel", "name": "reminders", "secret": "0" * 72}


def routes() -> list[tuple[str, str]]:
    create_app(Settings(database_url="sqlite:///unused.db"))  # refuses a policy out of date
    return sorted({(r.method, r.path) for r in served(ROUTERS)})


def test_every_route_has_exactly_one_row_in_the_policy_table() -> None:
    routes_served = routes()
    assert len(routes_served) > 60
    assert set(routes_served) == set(policy.POLICY)  # the app also refuses to start otherwise
    with pytest.raises(RuntimeError, match="missing"):
        policy.check([*served(ROUTERS), policy.Served("GET", "/api/v1/nowhere", False, True)])


def test_the_table_says_how_each_route_runs_and_the_app_checks_it() -> None:
    """A route that commits in transactions of its own (a sweep, a job run, the optimiser's
    search) must say so: a write transaction around it would wait on SQLite's one writer
    forever."""
    table = served(ROUTERS)
    own = sorted((r.method, r.path) for r in table if r.opens_transactions)
    assert own == [
        ("POST", "/api/v1/authorizations/{authorization_id}/submit"),
        ("POST", "/api/v1/billing/sweep"),
        ("POST", "/api/v1/centers/{center_id}/optimise"),
        ("POST", "/api/v1/coverages/{coverage_id}/eligibility-check"),
        ("POST", "/api/v1/jobs/{name}/run"),
        ("POST", "/api/v1/payers/{payer_id}/pas-notifications"),
    ]
    assert all(policy.POLICY[key].transaction == "own" for key in own)
    assert all(not policy.POLICY[key].timeout for key in own)  # runs that take minutes
    policy.check(table)
    forgot = [
        replace(r, opens_transactions=True) if r.path == "/api/v1/patients/search" else r
        for r in table
    ]
    with pytest.raises(RuntimeError, match="transaction='own'"):
        policy.check(forgot)
    rule = policy.POLICY
    assert not rule[("GET", "/api/v1/portal/appointments")].writes("GET")  # statements read


def test_only_get_routes_may_run_statement_by_statement(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a transaction a day's lock or a savepoint would hold nothing."""
    key = ("POST", "/api/v1/patients/search")
    monkeypatch.setitem(policy.POLICY, key, replace(policy.POLICY[key], transaction="statements"))
    with pytest.raises(RuntimeError, match="GET routes only"):
        policy.check(served(ROUTERS))


def test_reads_and_writes_are_told_apart() -> None:
    rule = policy.POLICY
    assert not rule[("POST", "/api/v1/patients/search")].writes("POST")  # a search reads
    assert rule[("GET", "/api/v1/portal/calendar-token")].writes("GET")  # made on first asking
    assert rule[("POST", "/api/v1/appointments")].writes("POST")
    assert not rule[("GET", "/api/v1/appointments")].writes("GET")


def url_of(path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: KNOWN.get(m.group(1), str(uuid.uuid4())), path)


@pytest.fixture
def clients(server: Server, nurse: httpx.Client) -> Iterator[dict[str, httpx.Client]]:
    _, patient = patient_user(server, nurse)
    made = {"anonymous": httpx.Client(base_url=server.base_url), "patient": patient}
    for role in ("nurse", "billing", "admin"):  # tokens of their own: the last call signs out
        token = server.login(f"{role}@test.local")
        made[role] = httpx.Client(
            base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}
        )
    try:
        yield made
    finally:
        for client in made.values():
            client.close()


def fresh_token(server: Server, token: str) -> str:
    """A new token for the user behind `token`."""

    async def issue() -> str:
        db = Database(server.database_url)
        try:
            async with db.unit_of_work() as session:
                user_id = await session.scalar(
                    select(AccessToken.user_id).where(
                        AccessToken.token_hash == token_digest(token, SECRET)
                    )
                )
                assert user_id is not None
                fresh, _ = await issue_token(session, user_id, SECRET, timedelta(hours=1))
                return fresh
        finally:
            await db.dispose()

    return asyncio.run(issue())


def test_every_role_on_every_route_gets_what_the_table_says(
    server: Server, clients: dict[str, httpx.Client]
) -> None:
    """401 for no one signed in, 403 for a role the table leaves out, neither for a role it
    lets in (those get 200, 404 or 422 with these made-up ids and empty bodies). And each
    call to a route that touches patient data leaves exactly one audit event, whatever its
    outcome."""
    before = audit_rows(server)
    audited_calls = 0
    wrong: list[str] = []
    # Signing out last (a bearer token's logout or the web session's end): it ends the
    # session the other calls use.
    sign_outs = {("POST", "/api/v1/auth/logout"), ("DELETE", "/api/v1/auth/session")}
    for method, path in sorted(policy.POLICY, key=lambda key: key in sign_outs):
        rule = policy.POLICY[(method, path)]
        url = url_of(path)
        for who, client in clients.items():
            if (method, path) in sign_outs and who != "anonymous":
                # Each sign-out with a session of its own: the first one ended the others'.
                token = client.headers["Authorization"].removeprefix("Bearer ")
                client.headers["Authorization"] = f"Bearer {fresh_token(server, token)}"
            body: dict[str, Any] | None = {} if method in ("POST", "PATCH", "PUT") else None
            # No If-Match: who may not change a record hears so before any precondition.
            headers = {"Idempotency-Key": uuid.uuid4().hex}
            status = client.request(method, url, headers=headers, json=body).status_code
            if rule.public:
                expected = "not 401/403"
                ok = status not in (401, 403)
            elif who == "anonymous":
                expected, ok = "401", status == 401
            elif who in rule.roles:
                expected = "not 401/403"
                ok = status not in (401, 403) and status < 500
            else:
                expected, ok = "403", status == 403
            if not ok:
                wrong.append(f"{who:9} {method:6} {path}: {status}, expected {expected}")
            if rule.audit is not None:
                audited_calls += 1
    assert wrong == []
    assert audit_rows(server) - before == audited_calls
