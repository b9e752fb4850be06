"""Users, managed by admins through the API: who may sign in, in what role, lockouts lifted,
and who did what named on the audit trail."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import service
from core.db import Database
from core.problems import Conflict
from tests.support.factories import make_patient
from tests.support.servers import PASSWORD, Server
from tests.support.transactions import in_transaction


def new_user(admin: httpx.Client, role: str = "nurse", **extra: Any) -> dict[str, Any]:
    body = {"email": f"u-{uuid.uuid4().hex[:8]}@test.local", "role": role, "password": PASSWORD}
    r = admin.post("/api/v1/users", json=body | extra)
    assert r.status_code == 201, r.text
    assert r.headers["Location"] == f"/api/v1/users/{r.json()['id']}"
    user: dict[str, Any] = r.json()
    return user


# Sign-ins from an address of this module's own: the schema fuzzing's wrong guesses from the
# usual one count against it (per-address throttling).
ADDRESS = "127.0.0.5"


def sign_in(server: Server, email: str, password: str = PASSWORD) -> httpx.Response:
    with httpx.Client(
        base_url=server.base_url, transport=httpx.HTTPTransport(local_address=ADDRESS)
    ) as c:
        return c.post("/api/v1/auth/token", data={"username": email, "password": password})


def signed_in(server: Server, email: str) -> httpx.Client:
    r = sign_in(server, email)
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    return httpx.Client(
        base_url=server.base_url, headers={"Authorization": f"Bearer {token}"}, timeout=60
    )


def test_admins_create_list_and_read_users(server: Server, admin: httpx.Client) -> None:
    user = new_user(admin, email=f"Mixed-{uuid.uuid4().hex[:6]}@Test.Local")
    assert user["email"] == user["email"].lower() and user["role"] == "nurse"
    assert user["active"] is True and user["version"] == 1 and "password" not in str(user)
    listed = admin.get("/api/v1/users", params={"role": "nurse", "limit": 500}).json()["items"]
    assert user["id"] in {u["id"] for u in listed}
    got = admin.get(f"/api/v1/users/{user['id']}")
    assert got.json() == user and got.headers["ETag"] == '"1"'
    with signed_in(server, user["email"]) as nurse:
        assert nurse.get("/api/v1/auth/me").status_code == 200

    patient = make_patient(admin)
    portal = new_user(admin, role="patient", patient_id=patient["id"])
    assert portal["patient_id"] == patient["id"]
    assert admin.get(f"/api/v1/users/{uuid.uuid4()}").status_code == 404


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"role": "surgeon"}, 422),
        ({"role": "patient"}, 422),  # a patient user needs its patient
        ({"role": "nurse", "patient_id": str(uuid.uuid4())}, 422),  # and staff have none
        ({"role": "patient", "patient_id": str(uuid.uuid4())}, 422),  # no such patient
        ({"password": "short"}, 422),
        ({"email": "no-at-sign"}, 422),
        ({"email": "a@b\u0007c"}, 422),
        ({"superuser": True}, 422),
    ],
)
def test_bad_users_are_refused_and_not_stored(
    admin: httpx.Client, body: dict[str, Any], status: int
) -> None:
    email = f"bad-{uuid.uuid4().hex[:8]}@test.local"
    r = admin.post(
        "/api/v1/users", json={"email": email, "role": "nurse", "password": PASSWORD} | body
    )
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    emails = {u["email"] for u in admin.get("/api/v1/users", params={"limit": 500}).json()["items"]}
    assert email not in emails


def test_an_email_is_one_user(admin: httpx.Client) -> None:
    user = new_user(admin)
    again = admin.post(
        "/api/v1/users", json={"email": user["email"], "role": "billing", "password": PASSWORD}
    )
    assert again.status_code == 409, again.text


def test_shutting_a_user_out_stops_their_tokens_at_once(
    server: Server, admin: httpx.Client
) -> None:
    user = new_user(admin)
    url = f"/api/v1/users/{user['id']}"
    with signed_in(server, user["email"]) as them:
        assert them.get("/api/v1/auth/me").status_code == 200
        stale = admin.patch(url, json={"active": False}, headers={"If-Match": '"7"'})
        assert stale.status_code == 412
        assert admin.patch(url, json={"active": False}).status_code == 428
        off = admin.patch(url, json={"active": False}, headers={"If-Match": '"1"'})
        assert off.status_code == 200 and off.json()["active"] is False
        assert off.headers["ETag"] == '"2"'
        assert them.get("/api/v1/auth/me").status_code == 401
    assert sign_in(server, user["email"]).status_code == 401
    back = admin.patch(url, json={"active": True}, headers={"If-Match": '"2"'})
    assert back.status_code == 200
    with signed_in(server, user["email"]) as them:
        assert them.get("/api/v1/auth/me").status_code == 200


def test_a_new_role_takes_effect_on_the_next_request(server: Server, admin: httpx.Client) -> None:
    user = new_user(admin, role="nurse")
    with signed_in(server, user["email"]) as them:
        assert them.get("/api/v1/billing/worklist.csv").status_code == 403
        r = admin.patch(
            f"/api/v1/users/{user['id']}", json={"role": "billing"}, headers={"If-Match": '"1"'}
        )
        assert r.status_code == 200 and r.json()["role"] == "billing"
        assert them.get("/api/v1/billing/worklist.csv").status_code == 200
    patient = make_patient(admin)
    portal = new_user(admin, role="patient", patient_id=patient["id"])
    refused = admin.patch(
        f"/api/v1/users/{portal['id']}", json={"role": "nurse"}, headers={"If-Match": '"1"'}
    )
    assert refused.status_code == 422
    for bad in ({"role": "patient"}, {"active": "maybe"}, {"email": "x@y.z"}):
        r = admin.patch(f"/api/v1/users/{user['id']}", json=bad, headers={"If-Match": '"2"'})
        assert r.status_code == 422, (bad, r.text)


def new_user_state(admin: httpx.Client, user: dict[str, Any]) -> dict[str, Any]:
    r = admin.get(f"/api/v1/users/{user['id']}")
    assert r.status_code == 200, r.text
    state: dict[str, Any] = r.json()
    return state


def test_an_admin_lifts_a_sign_in_lockout(server: Server, admin: httpx.Client) -> None:
    user = new_user(admin)
    # From an address of its own, so no other test's guesses count against this one.
    with httpx.Client(
        base_url=server.base_url, transport=httpx.HTTPTransport(local_address="127.0.0.4")
    ) as c:

        def sign_in(password: str) -> int:
            r = c.post("/api/v1/auth/token", data={"username": user["email"], "password": password})
            return r.status_code

        assert [sign_in("wrong-guess") for _ in range(5)] == [401] * 5
        # The admin sees the lockout, in the list and on the user, with when it lifts.
        locked = new_user_state(admin, user)["locked_until"]
        assert sign_in(PASSWORD) == 429  # locked out, even with the right password
        assert locked is not None and datetime.fromisoformat(locked) > datetime.now(UTC)
        listed = admin.get("/api/v1/users", params={"limit": 500}).json()["items"]
        assert {u["id"]: u["locked_until"] for u in listed}[user["id"]] == locked
        # A change of role leaves the lockout as it was, and says so.
        version = admin.get(f"/api/v1/users/{user['id']}").headers["ETag"]
        changed = admin.patch(
            f"/api/v1/users/{user['id']}", json={"role": "billing"}, headers={"If-Match": version}
        )
        assert changed.status_code == 200 and changed.json()["locked_until"] == locked
        unlocked = admin.post(f"/api/v1/users/{user['id']}/unlock")
        assert unlocked.status_code == 200, unlocked.text
        assert unlocked.json()["locked_until"] is None
        assert sign_in(PASSWORD) == 200
    assert admin.post(f"/api/v1/users/{uuid.uuid4()}/unlock").status_code == 404


def test_audit_events_name_the_actor_by_email(admin: httpx.Client, nurse: httpx.Client) -> None:
    patient = make_patient(nurse)
    assert nurse.get(f"/api/v1/patients/{patient['id']}").status_code == 200
    events = admin.get("/api/v1/audit-events", params={"patient_id": patient["id"]}).json()
    read = next(e for e in events["items"] if e["action"] == "read")
    assert read["actor_email"] == "nurse@test.local" and read["role"] == "nurse"


def test_the_last_active_admin_can_be_neither_demoted_nor_shut_out(migrated_url: str) -> None:
    """In a database of its own, where the count of admins is known."""

    async def body(session: AsyncSession) -> None:
        first = await service.create_user(session, "first@test.local", "admin", PASSWORD, None)
        for role, active in (("nurse", True), ("admin", False)):
            with pytest.raises(Conflict, match="last active admin"):
                await service.update_user(session, first.id, first.version, role, active)
        with pytest.raises(Conflict, match="last active admin"):
            await service.deactivate_user(session, "first@test.local")
        second = await service.create_user(session, "second@test.local", "admin", PASSWORD, None)
        demoted = await service.update_user(session, first.id, first.version, "nurse", None)
        assert (demoted.role, demoted.version) == ("nurse", 2)
        with pytest.raises(Conflict):
            await service.update_user(session, second.id, second.version, None, False)

    in_transaction(migrated_url, body)


def test_two_admins_demoting_each_other_at_once_leave_one(migrated_url: str) -> None:
    """Real transactions on real connections: each demotes the other admin and holds its
    transaction open a moment; one of them must find it would leave no admin."""

    async def run() -> list[str]:
        db = Database(migrated_url)
        try:
            async with db.unit_of_work() as session:
                a = await service.create_user(session, "a@race.local", "admin", PASSWORD, None)
                b = await service.create_user(session, "b@race.local", "admin", PASSWORD, None)

            async def demote(user_id: uuid.UUID) -> str:
                try:
                    async with db.unit_of_work() as session:
                        await service.update_user(session, user_id, 1, "nurse", None)
                        await asyncio.sleep(0.3)  # the other decides meanwhile, or waits
                    return "demoted"
                except Conflict:
                    return "refused"

            return sorted(await asyncio.gather(demote(a.id), demote(b.id)))
        finally:
            await db.dispose()

    assert asyncio.run(run()) == ["demoted", "refused"]


def test_what_admins_change_is_on_the_trail_and_found_by_its_filters(
    admin: httpx.Client, nurse: httpx.Client
) -> None:
    """Users made, changed and unlocked, and jobs run by hand, leave events as patient data
    does; the trail filters by action, resource type and a time range."""
    user = new_user(admin)
    changed = admin.patch(
        f"/api/v1/users/{user['id']}", json={"role": "billing"}, headers={"If-Match": '"1"'}
    )
    assert changed.status_code == 200, changed.text
    assert admin.post(f"/api/v1/users/{user['id']}/unlock").status_code == 200
    run = admin.post("/api/v1/jobs/housekeeping/run")
    assert run.status_code == 200, run.text
    refused = nurse.post("/api/v1/users", json={"email": "x@test.local", "role": "nurse"})
    assert refused.status_code in (403, 422)

    def events(**params: str) -> list[dict[str, Any]]:
        r = admin.get("/api/v1/audit-events", params={"limit": "200", **params})
        assert r.status_code == 200, r.text
        items: list[dict[str, Any]] = r.json()["items"]
        return items

    mine = [e for e in events(resource_type="user") if e["resource_id"] == user["id"]]
    assert sorted(e["action"] for e in mine) == ["create", "unlock", "update"]
    assert {e["actor_email"] for e in mine} == {"admin@test.local"}
    ran = events(action="run", resource_type="job")
    assert ran and ran[0]["outcome"] == "success"
    assert ran[0]["resource_id"] == run.json()["id"]  # the run, which names the job
    assert all(e["action"] == "run" for e in ran)
    newest = ran[0]["at"]
    assert events(action="run", until=newest) == [e for e in ran if e["at"] < newest]
    assert events(action="run", since=newest)[-1]["at"] == newest
    r = admin.get("/api/v1/audit-events", params={"since": newest, "until": newest})
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem")
    assert admin.get("/api/v1/audit-events", params={"action": "DROP TABLE"}).status_code == 422
