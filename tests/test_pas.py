"""Electronic prior authorization against a fake Da Vinci PAS payer over real HTTP: a real
Chairside server (its output kept, to show no secret reaches the log) submits drafts, follows
pended ones with its inquiry job and a rest-hook, and keeps every exchange."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fhir.resources.R4B.bundle import Bundle

from app.migrate import upgrade
from insurance.pas.fhir import notification_bundle
from tests.support.databases import backends, fresh_database
from tests.support.factories import MONDAY, make_patient, order, weekday_center
from tests.support.fake_payer import FakePayer
from tests.support.servers import (
    Server,
    _make_users,
    at,
    free_port,
    server_command,
    server_env,
    start_server,
    stop_server,
    wait_healthy,
)

MAINTENANCE = {
    "dose_g_per_kg": 1,
    "interval_days": 21,
    "window_min_days": 21,
    "window_max_days": 28,
    "cycles": 5,
}
NOTIFY_TOKEN = "n" * 40 + "-payer-rest-hook-token"
SUBMIT, INQUIRE = "/Claim/$submit", "/Claim/$inquire"
# A name no factory uses: nothing the payer's failures produce may repeat it.
FAMILY, GIVEN = "Quixote-Marsh", "Zebulon"


def _day(offset: int) -> str:
    return (MONDAY + timedelta(days=offset)).isoformat()


@pytest.fixture(scope="module")
def fake() -> Iterator[FakePayer]:
    with FakePayer(slow_seconds=2.5) as payer:
        yield payer


@pytest.fixture(scope="module", params=backends())
def pas_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, Path]]:
    """A server that may call the loopback fake payer, waits 1 s for an answer, retries
    quickly, and writes what it logs (at INFO) to a file the tests read."""
    tmp = tmp_path_factory.mktemp(f"pas-{request.param}")
    url = fresh_database(request.param, tmp)
    log = tmp / "server.log"
    upgrade(url)
    asyncio.run(_make_users(url))
    port = free_port()
    env = server_env(url) | {
        "CHAIRSIDE_PAYER_ALLOW_PRIVATE": "true",
        "CHAIRSIDE_PAYER_READ_TIMEOUT_SECONDS": "1",
        "CHAIRSIDE_PAYER_RETRY_SECONDS": "0.05",
        "CHAIRSIDE_LOG_LEVEL": "INFO",
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            server_command(port),
            cwd=Path(__file__).resolve().parents[1],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    server = Server(request.param, url, base, process)
    try:
        wait_healthy(process, base, "PAS test")
        for role in ("admin", "nurse", "billing"):
            server.tokens[role] = server.login(f"{role}@test.local")
        yield server, log
    finally:
        stop_server(server)


@pytest.fixture
def server(pas_server: tuple[Server, Path]) -> Server:
    """This module's server, so that conftest's per-role clients talk to it."""
    return pas_server[0]


@pytest.fixture
def srv(server: Server) -> Server:
    return server


def electronic_payer(billing: httpx.Client, fake: FakePayer, **overrides: Any) -> dict[str, Any]:
    body = {
        "name": f"PAS payer {uuid.uuid4().hex[:8]}",
        "turnaround_days": 14,
        "expedited_turnaround_days": 3,
        "renewal_margin_days": 7,
        "pas_base_url": fake.base_url,
        "pas_client_id": fake.client_id,
        "pas_client_secret": fake.client_secret,
        "pas_notification_token": NOTIFY_TOKEN,
        **overrides,
    }
    r = billing.post("/api/v1/payers", json=body)
    assert r.status_code == 201, r.text
    payer: dict[str, Any] = r.json()
    return payer


def draft(
    nurse: httpx.Client,
    billing: httpx.Client,
    fake: FakePayer,
    member_id: str,
    *,
    book: bool = False,
    payer: dict[str, Any] | None = None,
    **auth: Any,
) -> dict[str, Any]:
    """A patient on a maintenance course (booked if asked), covered by an electronic payer
    under `member_id` (which picks the fake payer's behaviour), with a draft authorization."""
    center, _ = weekday_center(nurse)
    patient = make_patient(nurse, given_name=GIVEN, family_name=FAMILY)
    course = order(
        nurse,
        center["id"],
        patient_id=patient["id"],
        diagnosis_code="G61.82",
        induction=None,
        maintenance=MAINTENANCE,
    ).json()
    if book:
        through = {"through": (MONDAY + timedelta(weeks=16)).isoformat()}
        r = nurse.post(f"/api/v1/courses/{course['id']}/book", json=through)
        assert r.status_code == 200, r.text
    payer = payer or electronic_payer(billing, fake)
    cover = billing.post(
        f"/api/v1/patients/{patient['id']}/coverages",
        json={"payer_id": payer["id"], "member_id": member_id, "effective_from": _day(-30)},
    )
    assert cover.status_code == 201, cover.text
    body = {
        "patient_id": patient["id"],
        "coverage_id": cover.json()["id"],
        "course_id": course["id"],
        "service_code": "J1561",
        "valid_from": _day(0),
        "valid_to": _day(89),
        "units_type": "visits",
        "units_approved": 4,
        "prescriber_name": "Dr. Ada Byron",
        "prescriber_npi": "1234567893",
        **auth,
    }
    r = billing.post("/api/v1/authorizations", json=body)
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    assert created["status"] == "draft" and created["auth_number"] is None
    assert created["electronic"] is None
    return created


def submit(billing: httpx.Client, auth: dict[str, Any]) -> httpx.Response:
    return billing.post(f"/api/v1/authorizations/{auth['id']}/submit")


def exchanges(client: httpx.Client, auth: dict[str, Any]) -> list[dict[str, Any]]:
    r = client.get(f"/api/v1/authorizations/{auth['id']}/exchanges")
    assert r.status_code == 200, r.text
    found: list[dict[str, Any]] = r.json()
    return found


def current(billing: httpx.Client, auth: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = billing.get(f"/api/v1/authorizations/{auth['id']}").json()
    return found


def run_inquiries(admin: httpx.Client, now: datetime) -> dict[str, int]:
    r = admin.post("/api/v1/jobs/pas_inquiry/run", headers=at(now))
    assert r.status_code == 200, r.text
    assert r.json()["outcome"] == "succeeded", r.text
    counts: dict[str, int] = r.json()["counts"]
    return counts


def history(auth: dict[str, Any]) -> list[str]:
    return [h["to_status"] for h in auth["history"]]


def test_approved_at_once_with_the_number_period_and_units_certified(
    billing: httpx.Client, nurse: httpx.Client, fake: FakePayer
) -> None:
    auth = draft(nurse, billing, fake, "APPROVE-1")
    r = submit(billing, auth)
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["status"] == "approved"
    assert done["auth_number"].startswith("PA-")
    assert (done["valid_from"], done["valid_to"], done["units_approved"]) == (
        _day(0),
        _day(89),
        4,
    )
    assert history(done) == ["draft", "submitted", "approved"]
    billing_id = done["history"][0]["actor_id"]
    assert all(h["actor_id"] == billing_id for h in done["history"])
    assert done["requested_on"] is not None and done["decided_on"] is not None
    electronic = done["electronic"]
    assert electronic["claim_identifier"] == auth["id"]
    assert electronic["submitted_at"] and electronic["decided_at"]
    assert electronic["next_inquiry_at"] is None and electronic["last_error"] is None

    # What reached the payer: one PAS Bundle, valid FHIR, the Claim a preauthorization
    # identified by our authorization, naming the course's drug, diagnosis and prescriber.
    sent = fake.received(SUBMIT, auth["id"])
    assert len(sent) == 1
    assert sent[0].headers["authorization"].startswith("Bearer ")
    bundle = sent[0].body
    Bundle.model_validate(bundle)
    claim = bundle["entry"][0]["resource"]
    assert claim["resourceType"] == "Claim" and claim["use"] == "preauthorization"
    assert claim["identifier"][0]["value"] == auth["id"]
    item = claim["item"][0]
    assert item["productOrService"]["coding"][0]["code"] == "J1561"
    assert item["quantity"]["value"] == 4
    assert claim["diagnosis"][0]["diagnosisCodeableConcept"]["coding"][0]["code"] == "G61.82"
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert "Practitioner" in kinds and "Coverage" in kinds

    # Kept on the history, with timing; the documents for billing only.
    rows = exchanges(billing, auth)
    assert [(x["kind"], x["attempt"], x["http_status"], x["outcome"]) for x in rows] == [
        ("submit", 1, 200, "A1")
    ]
    row = rows[0]
    assert row["operation"] == "Claim/$submit" and row["duration_ms"] >= 0
    assert row["started_at"] <= row["finished_at"]
    assert row["request_bundle"] == bundle
    assert json.loads(row["response_body"])["resourceType"] == "Bundle"
    seen_by_nurse = exchanges(nurse, auth)
    assert len(seen_by_nurse) == 1
    assert "request_bundle" not in seen_by_nurse[0] and "response_body" not in seen_by_nurse[0]

    # No second submission of a request the payer has.
    again = submit(billing, auth)
    assert again.status_code == 409, again.text
    assert len(fake.received(SUBMIT, auth["id"])) == 1


def test_pended_then_approved_by_the_inquiry_job_with_backoff(
    billing: httpx.Client, nurse: httpx.Client, admin: httpx.Client, fake: FakePayer
) -> None:
    auth = draft(nurse, billing, fake, "PEND2-1")
    started = time.monotonic()
    r = submit(billing, auth)
    assert r.status_code == 200, r.text
    pended = r.json()
    assert pended["status"] == "pending" and pended["auth_number"] is None
    assert history(pended) == ["draft", "submitted", "pending"]
    first = datetime.fromisoformat(pended["electronic"]["next_inquiry_at"])
    submitted = datetime.fromisoformat(pended["electronic"]["submitted_at"])
    assert timedelta(minutes=14) < first - submitted <= timedelta(minutes=15, seconds=5)
    assert submit(billing, auth).status_code == 409  # with the payer: never sent again

    # Not due yet: nothing asked.
    run_inquiries(admin, datetime.now(UTC))
    assert fake.received(INQUIRE, auth["id"]) == []
    # Due: asked once, still pended; the next inquiry waits twice as long.
    later = first + timedelta(minutes=1)
    run_inquiries(admin, later)
    still = current(billing, auth)
    assert still["status"] == "pending" and still["electronic"]["inquiries"] == 1
    second = datetime.fromisoformat(still["electronic"]["next_inquiry_at"])
    assert timedelta(minutes=29) < second - later <= timedelta(minutes=31)
    # Asked again: approved.
    run_inquiries(admin, second + timedelta(minutes=1))
    done = current(billing, auth)
    elapsed = time.monotonic() - started
    assert done["status"] == "approved" and done["auth_number"].startswith("PA-")
    assert history(done) == ["draft", "submitted", "pending", "approved"]
    assert done["history"][-1]["actor_id"] is None  # the job decided it, not a biller
    assert done["electronic"]["next_inquiry_at"] is None

    at_payer = fake.received(claim_id=auth["id"])
    assert [r.path for r in at_payer] == [SUBMIT, INQUIRE, INQUIRE]
    rows = exchanges(billing, auth)
    assert [(x["kind"], x["outcome"]) for x in rows] == [
        ("inquire", "A1"),
        ("inquire", "A4"),
        ("submit", "A4"),
    ]
    for bundle in (r.body for r in at_payer):
        Bundle.model_validate(bundle)
    print(
        f"pended-then-approved: {len(at_payer)} requests at the payer for the claim "
        f"(1 $submit, 2 $inquire; tokens cached), exchange times "
        f"{[x['duration_ms'] for x in reversed(rows)]} ms, "
        f"{elapsed:.2f} s of wall time for the test's three steps"
    )


def test_partially_approved_with_what_was_certified(
    billing: httpx.Client, nurse: httpx.Client, fake: FakePayer
) -> None:
    auth = draft(nurse, billing, fake, "PARTIAL-1", units_approved=6)
    r = submit(billing, auth)
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["status"] == "partially_approved"
    assert done["units_approved"] == 3 and done["auth_number"].startswith("PA-")


def test_denied_with_the_reason_and_billing_hears_of_the_booked_sessions(
    billing: httpx.Client, nurse: httpx.Client, fake: FakePayer
) -> None:
    auth = draft(nurse, billing, fake, "DENY-1", book=True)
    r = submit(billing, auth)
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["status"] == "denied"
    assert "Clinical criteria not met" in done["history"][-1]["note"]
    alerts = billing.get(
        "/api/v1/alerts",
        params={"patient_id": auth["patient_id"], "kind": "auth_denied_with_bookings"},
    ).json()["items"]
    assert [a["authorization_id"] for a in alerts] == [auth["id"]]


def test_a_payer_that_does_not_answer_in_time_changes_nothing_and_a_retry_sends_the_same_claim(
    billing: httpx.Client, nurse: httpx.Client, fake: FakePayer
) -> None:
    auth = draft(nurse, billing, fake, "SLOW-1")
    r = submit(billing, auth)
    assert r.status_code == 504, r.text
    assert r.json()["type"].endswith("/payer-unreachable")
    left = current(billing, auth)
    assert left["status"] == "draft" and history(left) == ["draft"]
    assert left["version"] == auth["version"]
    assert left["electronic"]["submitted_at"] is None
    assert "did not answer in time" in left["electronic"]["last_error"]
    rows = exchanges(billing, auth)
    assert [(x["attempt"], x["outcome"], x["http_status"]) for x in rows] == [
        (3, "timeout", None),
        (2, "timeout", None),
        (1, "timeout", None),
    ]
    assert all(900 <= x["duration_ms"] < 2500 for x in rows)

    fake.slow_seconds = 0
    try:
        r = submit(billing, auth)
    finally:
        fake.slow_seconds = 2.5
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "approved"
    sent = fake.received(SUBMIT, auth["id"])
    assert len(sent) == 4
    # Every attempt the same request, byte for byte: the payer drops the repeats.
    assert len({json.dumps(s.body, sort_keys=True) for s in sent}) == 1
    assert fake.claim(auth["id"]).replays >= 1


def test_a_500_is_retried_inside_one_submit(
    billing: httpx.Client, nurse: httpx.Client, fake: FakePayer
) -> None:
    auth = draft(nurse, billing, fake, "FAIL500-1")
    r = submit(billing, auth)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "approved"
    assert [s.status for s in fake.received(SUBMIT, auth["id"])] == [500, 200]
    rows = exchanges(billing, auth)
    assert [(x["attempt"], x["http_status"], x["outcome"]) for x in rows] == [
        (2, 200, "A1"),
        (1, 500, "server_error"),
    ]


@pytest.mark.parametrize("member", ["GARBAGE-1", "GARBAGEHTML-1"])
def test_garbage_is_a_502_and_changes_nothing(
    billing: httpx.Client, nurse: httpx.Client, fake: FakePayer, member: str
) -> None:
    auth = draft(nurse, billing, fake, member)
    r = submit(billing, auth)
    assert r.status_code == 502, r.text
    assert r.json()["type"].endswith("/payer-garbled")
    left = current(billing, auth)
    assert left["status"] == "draft" and left["version"] == auth["version"]
    assert [x["outcome"] for x in exchanges(billing, auth)] == ["garbled"]
    assert len(fake.received(SUBMIT, auth["id"])) == 1  # a 200 is not retried


def test_a_refusal_is_a_clear_error_naming_the_payers_codes(
    billing: httpx.Client, nurse: httpx.Client, fake: FakePayer
) -> None:
    auth = draft(nurse, billing, fake, "REFUSE-1")
    r = submit(billing, auth)
    assert r.status_code == 502, r.text
    problem = r.json()
    assert problem["type"].endswith("/payer-refused")
    assert problem["codes"] == ["business-rule"] and "400" in problem["detail"]
    assert FAMILY not in r.text and GIVEN not in r.text and "REFUSE-1" not in r.text
    left = current(billing, auth)
    assert left["status"] == "draft"
    assert "business-rule" in left["electronic"]["last_error"]
    assert len(fake.received(SUBMIT, auth["id"])) == 1  # a 4xx is not retried
    assert [(x["http_status"], x["outcome"]) for x in exchanges(billing, auth)] == [
        (400, "refused")
    ]


def test_a_draft_of_a_payer_without_pas_is_refused(
    billing: httpx.Client, nurse: httpx.Client, fake: FakePayer
) -> None:
    plain = billing.post(
        "/api/v1/payers",
        json={
            "name": f"Paper payer {uuid.uuid4().hex[:8]}",
            "turnaround_days": 14,
            "expedited_turnaround_days": 3,
            "renewal_margin_days": 7,
        },
    ).json()
    assert plain["pas_base_url"] is None and plain["pas_client_secret_set"] is False
    auth = draft(nurse, billing, fake, "APPROVE-2", payer=plain)
    r = submit(billing, auth)
    assert r.status_code == 422 and "pas_base_url" in r.json()["detail"]
    assert nurse.post(f"/api/v1/authorizations/{auth['id']}/submit").status_code == 403


def test_the_payer_overdue_alert_when_the_decision_clock_runs_out(
    billing: httpx.Client, nurse: httpx.Client, admin: httpx.Client, fake: FakePayer
) -> None:
    auth = draft(nurse, billing, fake, "PEND-overdue")
    assert submit(billing, auth).json()["status"] == "pending"

    def overdue() -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = billing.get(
            "/api/v1/alerts",
            params={"patient_id": auth["patient_id"], "kind": "payer_overdue", "status": "live"},
        ).json()["items"]
        return items

    now = datetime.now(UTC)
    assert run_inquiries(admin, now + timedelta(days=13))["due"] >= 1
    assert overdue() == []  # 13 days of a 14-day clock
    counts = run_inquiries(admin, now + timedelta(days=15))
    assert counts["overdue_opened"] >= 1
    [alert] = overdue()
    assert alert["authorization_id"] == auth["id"] and alert["queue"] == "billing"
    assert "has not decided" in alert["detail"] and FAMILY not in alert["detail"]

    fake.decide(auth["id"])
    run_inquiries(admin, now + timedelta(days=16))
    assert current(billing, auth)["status"] == "approved"
    assert overdue() == []


def test_a_notification_from_the_payer_triggers_an_inquiry_at_once(
    srv: Server, billing: httpx.Client, nurse: httpx.Client, fake: FakePayer
) -> None:
    payer = electronic_payer(billing, fake)
    auth = draft(nurse, billing, fake, "PEND-notify", payer=payer)
    assert submit(billing, auth).json()["status"] == "pending"
    url = f"{srv.base_url}/api/v1/payers/{payer['id']}/pas-notifications"
    decision = fake.decide(auth["id"])
    body = notification_bundle(
        auth["id"], decision.response_id or "x", "Subscription/1", 1, datetime.now(UTC)
    )
    header = "Chairside-Notification-Token"

    # Without the payer's token, or with another's: no such endpoint, nothing asked.
    assert httpx.post(url, json=body).status_code == 404
    assert httpx.post(url, json=body, headers={header: "x" * 40}).status_code == 404
    assert fake.received(INQUIRE, auth["id"]) == []

    r = httpx.post(url, json=body, headers={header: NOTIFY_TOKEN})
    assert r.status_code == 202, r.text
    assert r.json() == {"inquiries": 1}
    deadline = time.monotonic() + 15
    while current(billing, auth)["status"] != "approved" and time.monotonic() < deadline:
        time.sleep(0.1)
    done = current(billing, auth)
    assert done["status"] == "approved"
    assert exchanges(billing, auth)[0]["kind"] == "inquire"  # newest first

    # A claim it does not know, or one already decided, starts nothing.
    r = httpx.post(url, json=body, headers={header: NOTIFY_TOKEN})
    assert r.status_code == 202 and r.json() == {"inquiries": 0}
    assert (
        httpx.post(
            url, json={"resourceType": "Patient"}, headers={header: NOTIFY_TOKEN}
        ).status_code
        == 422
    )


def test_the_client_secret_is_write_only_and_never_logged(
    pas_server: tuple[Server, Path],
    billing: httpx.Client,
    nurse: httpx.Client,
    fake: FakePayer,
) -> None:
    log = pas_server[1]
    payer = electronic_payer(billing, fake)
    assert payer["pas_client_secret_set"] is True and payer["pas_notifications"] is True
    assert payer["pas_token_url"] is None and payer["pas_base_url"] == fake.base_url
    replies = [
        billing.get(f"/api/v1/payers/{payer['id']}"),
        billing.get("/api/v1/payers", params={"limit": 500}),
    ]
    etag = replies[0].headers["ETag"]
    patched = billing.patch(
        f"/api/v1/payers/{payer['id']}",
        json={"pas_client_id": fake.client_id, "turnaround_days": 10},
        headers={"If-Match": etag},
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["pas_client_secret_set"] is True  # untouched by a PATCH without it
    replies.append(patched)
    auth = draft(nurse, billing, fake, "APPROVE-secret", payer=payer)
    replies += [
        submit(billing, auth),
        billing.get(f"/api/v1/authorizations/{auth['id']}/exchanges"),
    ]
    assert replies[-2].status_code == 200, replies[-2].text
    for reply in replies:
        assert fake.client_secret not in reply.text and NOTIFY_TOKEN not in reply.text
    cleared = billing.patch(
        f"/api/v1/payers/{payer['id']}",
        json={"pas_client_secret": None},
        headers={"If-Match": patched.headers["ETag"]},
    )
    assert cleared.status_code == 200 and cleared.json()["pas_client_secret_set"] is False
    written = log.read_text(errors="replace")
    assert "Claim/$submit" in written or "POST" in written  # the log is being written
    assert fake.client_secret not in written and NOTIFY_TOKEN not in written
    assert FAMILY not in written


@pytest.fixture(scope="module", params=backends())
def strict(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A server left at the default: payer endpoints on private addresses refused."""
    srv = start_server(request.param, tmp_path_factory.mktemp(f"strict-{request.param}"))
    try:
        yield srv
    finally:
        stop_server(srv)


def test_private_payer_addresses_are_refused_unless_allowed(
    strict: Server, fake: FakePayer
) -> None:
    base = {"turnaround_days": 14, "expedited_turnaround_days": 3, "renewal_margin_days": 7}
    with strict.client("billing") as billing:
        for url in (fake.base_url, "http://localhost:8080/fhir", "http://10.1.2.3/fhir"):
            r = billing.post(
                "/api/v1/payers",
                json={**base, "name": f"P {uuid.uuid4().hex[:6]}", "pas_base_url": url},
            )
            assert r.status_code == 422, r.text
        r = billing.post(
            "/api/v1/payers",
            json={
                **base,
                "name": f"P {uuid.uuid4().hex[:6]}",
                "pas_base_url": "https://pas.payer.example/fhir",
                "pas_token_url": "https://auth.payer.example/oauth/token",
            },
        )
        assert r.status_code == 201, r.text
        r = billing.patch(
            f"/api/v1/payers/{r.json()['id']}",
            json={"pas_token_url": "http://192.168.0.9/token"},
            headers={"If-Match": r.headers["ETag"]},
        )
        assert r.status_code == 422, r.text


def coverage_of(entry: dict[str, Any]) -> str | None:
    resource = entry["resource"]
    if resource["resourceType"] != "Coverage":
        return None
    member: str = resource["subscriberId"]
    return member


@pytest.mark.parametrize(("member", "in_force"), [("APPROVE-elig", True), ("INACTIVE-1", False)])
def test_a_benefits_check_is_kept_on_the_coverage(
    billing: httpx.Client, nurse: httpx.Client, fake: FakePayer, member: str, in_force: bool
) -> None:
    auth = draft(nurse, billing, fake, member)
    coverage_id = auth["coverage_id"]
    r = billing.post(f"/api/v1/coverages/{coverage_id}/eligibility-check", json={})
    assert r.status_code == 200, r.text
    found = r.json()
    assert found["in_force"] is in_force and found["note"]
    assert "authorization required" in found["note"]
    shown = billing.get(f"/api/v1/coverages/{coverage_id}").json()
    assert shown["eligibility_in_force"] is in_force
    assert shown["eligibility_checked_at"] == found["checked_at"]
    [sent] = [
        s
        for s in fake.received("/CoverageEligibilityRequest/$submit")
        if any(e["resource"].get("id") and coverage_of(e) == member for e in s.body["entry"])
    ][-1:]
    Bundle.model_validate(sent.body)
    first = sent.body["entry"][0]["resource"]
    assert first["resourceType"] == "CoverageEligibilityRequest"
    assert (
        nurse.post(f"/api/v1/coverages/{coverage_id}/eligibility-check", json={}).status_code == 403
    )
