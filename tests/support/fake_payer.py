"""A fake Da Vinci PAS payer, served for real over the loopback (uvicorn in a thread of the
test process, so a Chairside server in another process reaches it by HTTP like any payer).

What it answers is chosen by the member id on the submitted Coverage, so each test picks its
payer's behaviour per authorization:

| member id starts with | `Claim/$submit` | `Claim/$inquire` |
|---|---|---|
| `APPROVE` (and anything unlisted) | A1: `PA-<n>`, the requested period and units | the same |
| `PEND<k>` (`PEND2`...) | A4 | A4 until the k-th inquiry, then A1 |
| `PEND` (no digits) | A4 | A4 until `decide()` or `notify()` |
| `PARTIAL` | A2 with half the units (at least one) | the same |
| `DENY` | A3 with a reason | the same |
| `SLOW` | sleeps `slow_seconds` each call, then A1 | the same |
| `FAIL500` | 500 on the first call for the claim, then A1 | the same |
| `GARBAGE` | 200 with a JSON body that is no FHIR resource | the same |
| `GARBAGEHTML` | 200 with an HTML page | the same |
| `REFUSE` | 400 with an OperationOutcome | the same |

Like a real payer it keys everything by the Claim's identifier: a second `$submit` of a
claim it has accepted returns the claim's current decision and counts as a replay, not a new
request (`claims[id].replays`). `$inquire` of a claim it never accepted is a 404.

`POST /token` is OAuth2 client credentials with HTTP Basic client authentication; every
other endpoint wants its bearer token (401 otherwise). `POST
/CoverageEligibilityRequest/$submit` answers a benefits check (member ids starting
`INACTIVE`: not in force). `notify(url, claim_id)` posts a PAS rest-hook notification
(`insurance.pas.fhir.notification_bundle`) about a claim to a URL of the test's choosing.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any, cast

import httpx
import uvicorn
from fhir.resources.R4B.bundle import Bundle
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from insurance.pas.fhir import (
    EXT_ITEM_AUTHORIZED_DETAIL,
    EXT_ITEM_PREAUTH_PERIOD,
    EXT_REVIEW_ACTION,
    EXT_REVIEW_ACTION_CODE,
    FHIR_JSON,
    X12_REVIEW_ACTION,
    X12_REVIEW_DECISION_REASON,
    ClaimFacts,
    CoverageFacts,
    PatientFacts,
    PayerDecision,
    PrescriberFacts,
    ProviderFacts,
    ReviewAction,
    notification_bundle,
)
from tests.support.servers import free_port

CLAIM_TYPE = "http://terminology.hl7.org/CodeSystem/claim-type"
ADJUDICATION = "http://terminology.hl7.org/CodeSystem/adjudication"
RESPONSE_ID_SYSTEM = "urn:fake-payer:claim-response"
ACTION_DISPLAY = {
    "A1": "Certified in total",
    "A2": "Certified - partial",
    "A3": "Not Certified",
    "A4": "Pended",
}
DENIAL_CODE = "0U"  # any code of X12 886 the fake uses for its denials
DENIAL_REASON = "Clinical criteria not met"


@dataclass
class Received:
    """One request as the payer saw it."""

    method: str
    path: str  # below the base, e.g. "/Claim/$submit"
    headers: dict[str, str]
    body: Any  # the parsed JSON, the form (for /token) or None
    at: datetime
    status: int = 0
    claim_id: str | None = None
    replay: bool = False


@dataclass
class ClaimState:
    """What the payer keeps about one Claim identifier."""

    claim_id: str
    behaviour: str
    request: dict[str, Any]  # the first Bundle it accepted for the claim
    decision: PayerDecision | None = None
    accepted: bool = False
    failures: int = 0
    replays: int = 0
    inquiries: int = 0
    pend_until: int | None = None  # the inquiry that decides a PEND<k>; None: never


# Longest first where one prefix starts another.
BEHAVIOURS = (
    "GARBAGEHTML",
    "GARBAGE",
    "APPROVE",
    "PARTIAL",
    "DENY",
    "SLOW",
    "FAIL500",
    "REFUSE",
    "PEND",
    "INACTIVE",
)


def behaviour_of(member_id: str) -> str:
    return next((b for b in BEHAVIOURS if member_id.startswith(b)), "APPROVE")


# --- Documents ------------------------------------------------------------------------------
def _resources(bundle: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for entry in bundle.get("entry") or []:
        if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
            yield entry.get("fullUrl", ""), entry["resource"]


def first_of(bundle: Mapping[str, Any], kind: str) -> dict[str, Any] | None:
    return next((r for _, r in _resources(bundle) if r.get("resourceType") == kind), None)


def member_id(bundle: Mapping[str, Any]) -> str:
    coverage = first_of(bundle, "Coverage") or {}
    if isinstance(coverage.get("subscriberId"), str):
        return str(coverage["subscriberId"])
    for identifier in coverage.get("identifier") or []:
        if isinstance(identifier, dict) and isinstance(identifier.get("value"), str):
            return str(identifier["value"])
    return ""


def requested(claim: Mapping[str, Any]) -> tuple[int, date, date]:
    """The units and period the Claim's first item asks for."""
    item = claim["item"][0]
    period = item["servicedPeriod"]
    return (
        int(item["quantity"]["value"]),
        date.fromisoformat(period["start"]),
        date.fromisoformat(period["end"]),
    )


def _concept(system: str, code: str | None, text: str | None = None) -> dict[str, Any]:
    concept: dict[str, Any] = {}
    if code is not None:
        coding: dict[str, Any] = {"system": system, "code": code}
        if text is not None:
            coding["display"] = text
        concept["coding"] = [coding]
    elif text is not None:
        concept["text"] = text
    return concept


def claim_response(
    claim: Mapping[str, Any],
    decision: PayerDecision,
    created: datetime,
    reason_code: str | None = None,
) -> dict[str, Any]:
    """A PAS (STU 2) ClaimResponse for `claim` saying `decision`: the review action on the
    item's adjudication, the number on `preAuthRef` and the review action, the period on
    `preAuthPeriod` and the item, the certified quantity in `itemAuthorizedDetail`. The reason
    goes out as the review action's reason code (coded when `reason_code` is given, else as
    the concept's text) and as the disposition."""
    review: list[dict[str, Any]] = [
        {
            "url": EXT_REVIEW_ACTION_CODE,
            "valueCodeableConcept": _concept(
                X12_REVIEW_ACTION, decision.action, ACTION_DISPLAY[decision.action]
            ),
        }
    ]
    if decision.auth_number is not None:
        review.append({"url": "number", "valueString": decision.auth_number})
    if decision.reason is not None:
        review.append(
            {
                "url": "reasonCode",
                "valueCodeableConcept": _concept(
                    X12_REVIEW_DECISION_REASON, reason_code, decision.reason
                ),
            }
        )
    item: dict[str, Any] = {
        "itemSequence": claim.get("item", [{}])[0].get("sequence", 1),
        "adjudication": [
            {
                "extension": [{"url": EXT_REVIEW_ACTION, "extension": review}],
                "category": {"coding": [{"system": ADJUDICATION, "code": "submitted"}]},
            }
        ],
    }
    period: dict[str, str] = {}
    if decision.valid_from is not None:
        period["start"] = decision.valid_from.isoformat()
    if decision.valid_to is not None:
        period["end"] = decision.valid_to.isoformat()
    extensions: list[dict[str, Any]] = []
    if period:
        extensions.append({"url": EXT_ITEM_PREAUTH_PERIOD, "valuePeriod": period})
    if decision.units is not None:
        extensions.append(
            {
                "url": EXT_ITEM_AUTHORIZED_DETAIL,
                "extension": [{"url": "quantity", "valueQuantity": {"value": decision.units}}],
            }
        )
    if extensions:
        item["extension"] = extensions
    response: dict[str, Any] = {
        "resourceType": "ClaimResponse",
        "identifier": [{"system": RESPONSE_ID_SYSTEM, "value": decision.response_id or "none"}],
        "status": "active",
        "type": claim.get("type")
        or {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/claim-type",
                    "code": "professional",
                }
            ]
        },
        "use": "preauthorization",
        "patient": claim.get("patient") or {"display": "unknown"},
        "created": created.isoformat(timespec="seconds"),
        "insurer": claim.get("insurer") or {"display": "Fake Payer"},
        "requestor": claim.get("provider") or {"display": "unknown"},
        "request": {"identifier": (claim.get("identifier") or [{}])[0]},
        "outcome": "complete",
        "item": [item],
    }
    if decision.reason is not None:
        response["disposition"] = decision.reason
    if decision.response_id is not None:
        response["id"] = decision.response_id
    if decision.auth_number is not None:
        response["preAuthRef"] = decision.auth_number
    if period:
        response["preAuthPeriod"] = period
    return response


def response_bundle(
    request: Mapping[str, Any],
    decision: PayerDecision,
    created: datetime,
    reason_code: str | None = None,
) -> dict[str, Any]:
    """The PAS Response Bundle: the ClaimResponse first, then the request's resources it
    refers to (patient, insurer, requestor)."""
    claim = first_of(request, "Claim") or {}
    response = claim_response(claim, decision, created, reason_code)
    wanted = {
        ref.get("reference")
        for ref in (response["patient"], response["insurer"], response["requestor"])
        if isinstance(ref, dict)
    }
    entries = [
        {
            "fullUrl": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, str(decision.response_id))}",
            "resource": response,
        }
    ]
    entries += [{"fullUrl": url, "resource": r} for url, r in _resources(request) if url in wanted]
    identifier = request.get("identifier")
    return {
        "resourceType": "Bundle",
        "identifier": identifier if isinstance(identifier, dict) else {"value": "none"},
        "type": "collection",
        "timestamp": created.isoformat(timespec="seconds"),
        "entry": entries,
    }


def operation_outcome(code: str, diagnostics: str) -> dict[str, Any]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": diagnostics}],
    }


# --- Sample requests ---
SAMPLE_CREATED = datetime(2026, 12, 1, 14, 30, tzinfo=UTC)


def sample_facts(member_id: str = "APPROVE-1", **changes: Any) -> ClaimFacts:
    """A course's request with the payer behaviour `member_id` picks; `changes` replace
    fields (`claim_id=uuid.uuid4()` for a request of its own)."""
    base = ClaimFacts(
        claim_id=uuid.UUID("0b5f0c3e-8a1d-4c9e-9a51-5f7a3c1d2e01"),
        created=SAMPLE_CREATED,
        patient=PatientFacts(
            id=uuid.UUID("7d1e6b0a-2c3f-4e5a-8b9c-0d1e2f3a4b5c"),
            family_name="Okafor",
            given_name="Adaeze",
            birth_date=date(1961, 3, 14),
            sex="female",
        ),
        coverage=CoverageFacts(
            id=uuid.UUID("1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"),
            member_id=member_id,
            group_number="GRP-77",
            payer_id=uuid.UUID("9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"),
            payer_name="Blue Harbor Health",
        ),
        provider=ProviderFacts(
            id=uuid.UUID("2c3d4e5f-6a7b-4c8d-9e0f-1a2b3c4d5e6f"),
            name="Riverside Infusion Center",
            address="12 River Road, Springfield",
        ),
        prescriber=PrescriberFacts(name="Dr. Lena Hart", npi="1245319599"),
        diagnosis_code="G61.81",
        service_code="J1459",
        product_name="Privigen",
        units=96,
        units_type="billing_units",
        period_start=date(2026, 12, 7),
        period_end=date(2027, 6, 4),
    )
    return replace(base, **changes)


# --- The payer ------------------------------------------------------------------------------
class FakePayer:
    """`with FakePayer() as payer:` serves until the block ends; `payer.base_url` is what a
    Payer's `pas_base_url` is set to, `payer.token_url` its token endpoint."""

    def __init__(
        self,
        slow_seconds: float = 5.0,
        client_id: str = "chairside-test",
        client_secret: str = "fake-payer-secret",  # noqa: S107 - the fake's own test secret
        token_seconds: int = 3600,
        require_token: bool = True,
    ) -> None:
        self.slow_seconds = slow_seconds
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_seconds = token_seconds
        self.require_token = require_token
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/fhir"
        self.token_url = self.base_url + "/token"
        self._lock = threading.Lock()
        self.requests: list[Received] = []
        self.claims: dict[str, ClaimState] = {}
        self.tokens: set[str] = set()
        self._numbers = 0
        self._events = 0
        app = Starlette(routes=[Route("/fhir/{rest:path}", self._route, methods=["GET", "POST"])])
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    # Lifecycle
    def start(self) -> FakePayer:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake payer did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)

    def __enter__(self) -> FakePayer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget every request and claim (tokens stay valid)."""
        with self._lock:
            self.requests.clear()
            self.claims.clear()

    # What tests ask
    def received(self, path: str | None = None, claim_id: object = None) -> list[Received]:
        with self._lock:
            return [
                r
                for r in self.requests
                if (path is None or r.path == path)
                and (claim_id is None or r.claim_id == str(claim_id))
            ]

    def claim(self, claim_id: object) -> ClaimState:
        with self._lock:
            return self.claims[str(claim_id)]

    def revoke_tokens(self) -> None:
        """Every token issued so far stops working (the next call is a 401)."""
        with self._lock:
            self.tokens.clear()

    def decide(self, claim_id: object, action: str = "A1") -> PayerDecision:
        """Settle a pended claim now, as a reviewer would."""
        with self._lock:
            state = self.claims[str(claim_id)]
            state.decision = self._decision(state, action)
            state.pend_until = None
            return state.decision

    def notify(
        self,
        url: str,
        claim_id: object,
        decide: bool = True,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """POST a PAS rest-hook notification about `claim_id` to `url` (a FHIR R4B
        `subscription-notification` Bundle, id-only: SubscriptionStatus whose event's focus is
        the ClaimResponse with the Claim's identifier). A payer notifies when a result is
        ready, so a pended claim is first decided (A1) unless `decide` is false. `headers` go
        along (the token a payer was given for its notifications)."""
        with self._lock:
            state = self.claims[str(claim_id)]
            if decide and state.decision is not None and state.decision.action == "A4":
                state.decision = self._decision(state, "A1")
                state.pend_until = None
            assert state.decision is not None
            self._events += 1
            body = notification_bundle(
                state.claim_id,
                state.decision.response_id or "none",
                f"{self.base_url}/Subscription/chairside",
                self._events,
                datetime.now(UTC),
            )
        sent = {"Content-Type": FHIR_JSON, **(headers or {})}
        return httpx.post(url, content=json.dumps(body), headers=sent, timeout=10)

    # Serving
    async def _route(self, request: Request) -> Response:
        raw = await request.body()
        path = "/" + request.path_params["rest"]
        seen = Received(
            method=request.method,
            path=path,
            headers={k.lower(): v for k, v in request.headers.items()},
            body=None,
            at=datetime.now(UTC),
        )
        with self._lock:
            self.requests.append(seen)
        response = await self._answer(request, path, raw, seen)
        seen.status = response.status_code
        return response

    async def _answer(self, request: Request, path: str, raw: bytes, seen: Received) -> Response:
        if request.method != "POST":
            return self._fhir(operation_outcome("not-supported", "POST only"), 405)
        if path == "/token":
            form = dict((await request.form()).items())
            seen.body = form
            return self._token(request, form)
        if self.require_token and not self._bearer_ok(request):
            return JSONResponse(
                operation_outcome("login", "a valid bearer token is required"),
                401,
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
                media_type=FHIR_JSON,
            )
        try:
            body = _json(raw)
        except ValueError:
            return self._fhir(operation_outcome("structure", "the body is not JSON"), 400)
        seen.body = body
        if isinstance(body, dict) and body.get("resourceType") == "Parameters":
            body = next(
                (p.get("resource") for p in body.get("parameter") or [] if p.get("resource")),
                None,
            )
        if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
            return self._fhir(operation_outcome("structure", "a Bundle is expected"), 400)
        try:
            Bundle.model_validate(body)
        except Exception:
            return self._fhir(operation_outcome("invalid", "the Bundle is not valid FHIR"), 400)
        if path in ("/Claim/$submit", "/Claim/$inquire"):
            return await self._claim(path, body, seen)
        if path == "/CoverageEligibilityRequest/$submit":
            return self._eligibility(body)
        return self._fhir(operation_outcome("not-found", "no such operation"), 404)

    def _token(self, request: Request, form: Mapping[str, Any]) -> Response:
        expected = "Basic " + base64.b64encode(
            f"{self.client_id}:{self.client_secret}".encode()
        ).decode("ascii")
        if not secrets.compare_digest(request.headers.get("authorization", ""), expected):
            return JSONResponse(
                {"error": "invalid_client"},
                401,
                headers={"WWW-Authenticate": 'Basic realm="fake-payer"'},
            )
        if form.get("grant_type") != "client_credentials":
            return JSONResponse({"error": "unsupported_grant_type"}, 400)
        token = secrets.token_urlsafe(24)
        with self._lock:
            self.tokens.add(token)
        return JSONResponse(
            {"access_token": token, "token_type": "bearer", "expires_in": self.token_seconds},
            headers={"Cache-Control": "no-store"},
        )

    def _bearer_ok(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        with self._lock:
            return scheme.lower() == "bearer" and token in self.tokens

    async def _claim(self, path: str, bundle: dict[str, Any], seen: Received) -> Response:
        claim = first_of(bundle, "Claim")
        if claim is None or claim.get("use") != "preauthorization":
            return self._fhir(operation_outcome("invalid", "no preauthorization Claim"), 400)
        identifiers = [i for i in claim.get("identifier") or [] if isinstance(i, dict)]
        claim_id = next((i["value"] for i in identifiers if isinstance(i.get("value"), str)), None)
        if claim_id is None:
            return self._fhir(operation_outcome("required", "the Claim has no identifier"), 400)
        seen.claim_id = claim_id
        behaviour = behaviour_of(member_id(bundle))
        if behaviour == "SLOW":
            await asyncio.sleep(self.slow_seconds)
        with self._lock:
            state = self.claims.get(claim_id)
            if state is None:
                if path == "/Claim/$inquire":
                    return self._fhir(operation_outcome("not-found", "no such request"), 404)
                state = self.claims[claim_id] = ClaimState(claim_id, behaviour, bundle)
            if behaviour == "FAIL500" and state.failures == 0:
                state.failures += 1
                return self._fhir(operation_outcome("exception", "try again later"), 500)
            if behaviour == "REFUSE":
                return self._fhir(
                    operation_outcome("business-rule", "the member is not known to this plan"),
                    400,
                )
            if behaviour in ("GARBAGE", "GARBAGEHTML"):
                state.accepted = True
                if behaviour == "GARBAGEHTML":
                    return Response(
                        "<html><body>Service Unavailable</body></html>", 200, media_type="text/html"
                    )
                return JSONResponse({"status": "received", "ok": True})
            if path == "/Claim/$submit":
                if state.accepted:
                    state.replays += 1
                    seen.replay = True
                else:
                    state.accepted = True
                    state.decision = self._first_decision(state)
            else:
                state.inquiries += 1
                if state.pend_until is not None and state.inquiries >= state.pend_until:
                    state.decision = self._decision(state, "A1")
                    state.pend_until = None
            assert state.decision is not None
            reason_code = DENIAL_CODE if state.decision.action == "A3" else None
            return self._fhir(
                response_bundle(state.request, state.decision, datetime.now(UTC), reason_code)
            )

    def _first_decision(self, state: ClaimState) -> PayerDecision:
        behaviour = state.behaviour
        if behaviour == "PEND":
            member = member_id(state.request)
            digits = re.match(r"PEND(\d+)", member)
            state.pend_until = int(digits.group(1)) if digits else None
            return self._decision(state, "A4")
        if behaviour == "PARTIAL":
            return self._decision(state, "A2")
        if behaviour == "DENY":
            return self._decision(state, "A3")
        return self._decision(state, "A1")

    def _decision(self, state: ClaimState, action: str) -> PayerDecision:
        claim = first_of(state.request, "Claim") or {}
        units, start, end = requested(claim)
        response_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{state.claim_id}/{action}"))
        if action in ("A3", "A4"):
            reason = DENIAL_REASON if action == "A3" else None
            return PayerDecision(
                cast(ReviewAction, action), None, None, None, None, reason, response_id
            )
        self._numbers += 1
        certified = max(1, units // 2) if action == "A2" else units
        return PayerDecision(
            cast(ReviewAction, action),
            f"PA-{self._numbers}",
            start,
            end,
            certified,
            None,
            response_id,
        )

    def _eligibility(self, bundle: dict[str, Any]) -> Response:
        request = first_of(bundle, "CoverageEligibilityRequest")
        if request is None:
            return self._fhir(operation_outcome("invalid", "no CoverageEligibilityRequest"), 400)
        in_force = behaviour_of(member_id(bundle)) != "INACTIVE"
        response = {
            "resourceType": "CoverageEligibilityResponse",
            "id": str(uuid.uuid4()),
            "status": "active",
            "purpose": ["benefits"],
            "patient": request.get("patient"),
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "request": {"identifier": (request.get("identifier") or [{}])[0]},
            "outcome": "complete",
            "disposition": "Policy is active" if in_force else "Policy is not in force",
            "insurer": request.get("insurer"),
            "insurance": [
                {
                    "coverage": (request.get("insurance") or [{}])[0].get("coverage"),
                    "inforce": in_force,
                    "item": [
                        {
                            "productOrService": (request.get("item") or [{}])[0].get(
                                "productOrService"
                            ),
                            "authorizationRequired": True,
                        }
                    ],
                }
            ],
        }
        return self._fhir(
            {
                "resourceType": "Bundle",
                "type": "collection",
                "timestamp": response["created"],
                "entry": [{"fullUrl": f"urn:uuid:{response['id']}", "resource": response}],
            }
        )

    @staticmethod
    def _fhir(body: dict[str, Any], status: int = 200) -> Response:
        return JSONResponse(body, status, media_type=FHIR_JSON)


def _json(raw: bytes) -> Any:
    return json.loads(raw)
