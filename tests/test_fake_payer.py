"""The fake PAS payer the prior-authorization tests talk to answers each behaviour as its
table says, over real HTTP on the loopback, with httpx as the client."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.operationoutcome import OperationOutcome

from insurance.pas import fhir
from tests.support.fake_payer import FakePayer, sample_facts
from tests.support.servers import free_port

SUBMIT, INQUIRE = "/Claim/$submit", "/Claim/$inquire"


@pytest.fixture(scope="module")
def payer() -> Iterator[FakePayer]:
    with FakePayer(slow_seconds=2) as running:
        yield running


@pytest.fixture
def client(payer: FakePayer) -> Iterator[httpx.Client]:
    answer = httpx.post(
        payer.token_url,
        data={"grant_type": "client_credentials"},
        auth=(payer.client_id, payer.client_secret),
    )
    assert answer.status_code == 200
    token = answer.json()
    assert token["token_type"] == "bearer" and token["expires_in"] > 0
    headers = {"Authorization": f"Bearer {token['access_token']}", "Accept": fhir.FHIR_JSON}
    with httpx.Client(base_url=payer.base_url, headers=headers, timeout=10) as c:
        yield c


def request(member_id: str, **changes: Any) -> tuple[str, dict[str, Any], dict[str, Any]]:
    facts = sample_facts(member_id, claim_id=uuid.uuid4(), **changes)
    return str(facts.claim_id), fhir.submit_bundle(facts), fhir.inquire_bundle(facts)


def decision(answer: httpx.Response) -> fhir.PayerDecision:
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith(fhir.FHIR_JSON)
    Bundle.model_validate(answer.json())
    return fhir.read_decision(answer.json())


def test_approve_at_once(client: httpx.Client, payer: FakePayer) -> None:
    claim_id, submit, _ = request("APPROVE-1")
    got = decision(client.post(SUBMIT, json=submit))
    assert got.action == "A1" and got.auth_number and got.auth_number.startswith("PA-")
    assert (str(got.valid_from), str(got.valid_to), got.units) == ("2026-12-07", "2027-06-04", 96)
    (seen,) = payer.received(SUBMIT, claim_id)
    assert seen.body == submit and seen.status == 200 and not seen.replay
    assert seen.headers["authorization"].startswith("Bearer ")


def test_a_resubmission_is_the_same_decision_not_a_new_request(
    client: httpx.Client, payer: FakePayer
) -> None:
    claim_id, submit, _ = request("APPROVE-2")
    first = decision(client.post(SUBMIT, json=submit))
    again = decision(client.post(SUBMIT, json=submit))
    assert again == first
    assert payer.claim(claim_id).replays == 1
    assert [r.replay for r in payer.received(SUBMIT, claim_id)] == [False, True]


def test_pend_then_approve_on_the_second_inquiry(client: httpx.Client, payer: FakePayer) -> None:
    claim_id, submit, inquire = request("PEND2-a")
    assert decision(client.post(SUBMIT, json=submit)).action == "A4"
    assert decision(client.post(INQUIRE, json=inquire)).action == "A4"
    approved = decision(client.post(INQUIRE, json=inquire))
    assert approved.action == "A1" and approved.auth_number and approved.units == 96
    assert decision(client.post(INQUIRE, json=inquire)) == approved
    assert payer.claim(claim_id).inquiries == 3


def test_pend_until_decided(client: httpx.Client, payer: FakePayer) -> None:
    claim_id, submit, inquire = request("PEND-forever")
    assert decision(client.post(SUBMIT, json=submit)).action == "A4"
    for _ in range(3):
        assert decision(client.post(INQUIRE, json=inquire)).action == "A4"
    payer.decide(claim_id, "A3")
    assert decision(client.post(INQUIRE, json=inquire)).action == "A3"


def test_partial_and_deny(client: httpx.Client) -> None:
    _, submit, _ = request("PARTIAL-1")
    partial = decision(client.post(SUBMIT, json=submit))
    assert partial.action == "A2" and partial.units == 48 and partial.auth_number
    _, submit, _ = request("DENY-1")
    denied = decision(client.post(SUBMIT, json=submit))
    assert denied.action == "A3" and denied.auth_number is None and denied.units is None
    assert denied.reason == "0U: Clinical criteria not met"


def test_slow_outlasts_a_sane_timeout(client: httpx.Client, payer: FakePayer) -> None:
    claim_id, submit, _ = request("SLOW-1")
    with pytest.raises(httpx.ReadTimeout):
        client.post(SUBMIT, json=submit, timeout=0.5)
    # It did reach the payer: a patient retry is a replay of the same claim.
    got = decision(client.post(SUBMIT, json=submit, timeout=10))
    assert got.action == "A1"
    assert [r.replay for r in payer.received(SUBMIT, claim_id)] == [False, True]


def test_fail_500_then_approve(client: httpx.Client, payer: FakePayer) -> None:
    claim_id, submit, _ = request("FAIL500-1")
    failed = client.post(SUBMIT, json=submit)
    assert failed.status_code == 500
    OperationOutcome.model_validate(failed.json())
    assert decision(client.post(SUBMIT, json=submit)).action == "A1"
    # The failed call never reached a decision, so the retry is not a replay.
    assert [r.replay for r in payer.received(SUBMIT, claim_id)] == [False, False]
    assert payer.claim(claim_id).replays == 0


def test_garbage_and_refusal(client: httpx.Client) -> None:
    _, submit, _ = request("GARBAGE-1")
    answer = client.post(SUBMIT, json=submit)
    assert answer.status_code == 200
    with pytest.raises(fhir.GarbledResponse):
        fhir.read_decision(answer.json())
    _, submit, _ = request("GARBAGEHTML-1")
    answer = client.post(SUBMIT, json=submit)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    _, submit, _ = request("REFUSE-1")
    refused = client.post(SUBMIT, json=submit)
    assert refused.status_code == 400
    assert OperationOutcome.model_validate(refused.json()).issue[0].severity == "error"


def test_what_is_not_a_pas_request_is_refused(client: httpx.Client) -> None:
    assert client.post(SUBMIT, content=b"{not json").status_code == 400
    assert client.post(SUBMIT, json={"resourceType": "Patient"}).status_code == 400
    _, submit, inquire = request("APPROVE-3")
    submit["entry"][0]["resource"]["use"] = "claim"
    assert client.post(SUBMIT, json=submit).status_code == 400
    assert client.post(INQUIRE, json=inquire).status_code == 404  # never submitted


def test_the_claim_endpoints_want_the_token(payer: FakePayer, client: httpx.Client) -> None:
    _, submit, _ = request("APPROVE-4")
    assert httpx.post(payer.base_url + SUBMIT, json=submit).status_code == 401
    wrong = httpx.post(
        payer.token_url, data={"grant_type": "client_credentials"}, auth=(payer.client_id, "x")
    )
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    grant = httpx.post(
        payer.token_url,
        data={"grant_type": "password"},
        auth=(payer.client_id, payer.client_secret),
    )
    assert grant.status_code == 400
    payer.revoke_tokens()
    answer = client.post(SUBMIT, json=submit)
    assert answer.status_code == 401 and "Bearer" in answer.headers["www-authenticate"]


def test_the_benefits_check(client: httpx.Client) -> None:
    facts = sample_facts("APPROVE-5")
    answer = client.post(
        "/CoverageEligibilityRequest/$submit", json=fhir.eligibility_request(facts)
    )
    assert answer.status_code == 200
    assert fhir.read_eligibility(answer.json()) == fhir.Eligibility(
        True, "Policy is active; authorization required"
    )
    lapsed = sample_facts("INACTIVE-1")
    answer = client.post(
        "/CoverageEligibilityRequest/$submit", json=fhir.eligibility_request(lapsed)
    )
    assert fhir.read_eligibility(answer.json()).in_force is False


class _Inbox(BaseHTTPRequestHandler):
    received: list[Any] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        type(self).received.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


def test_a_notification_tells_which_claim_is_decided(
    client: httpx.Client, payer: FakePayer
) -> None:
    inbox = ThreadingHTTPServer(("127.0.0.1", free_port()), _Inbox)
    threading.Thread(target=inbox.serve_forever, daemon=True).start()
    try:
        claim_id, submit, inquire = request("PEND-notified")
        assert decision(client.post(SUBMIT, json=submit)).action == "A4"
        url = f"http://127.0.0.1:{inbox.server_address[1]}/hook"
        assert payer.notify(url, claim_id).status_code == 200
        (body,) = _Inbox.received
        Bundle.model_validate(body)
        assert fhir.read_notification(body) == [claim_id]
        # The notification is a nudge: the decision itself comes from an inquiry.
        assert decision(client.post(INQUIRE, json=inquire)).action == "A1"
    finally:
        inbox.shutdown()
        inbox.server_close()


def test_reset_forgets(payer: FakePayer, client: httpx.Client) -> None:
    _, submit, _ = request("APPROVE-6")
    decision(client.post(SUBMIT, json=submit))
    payer.reset()
    assert payer.requests == [] and payer.claims == {}
