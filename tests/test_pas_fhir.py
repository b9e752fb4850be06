"""The PAS documents we send (built from plain facts, valid FHIR R4B, byte-identical when the
facts are) and how we read a payer's answers (every shape PAS allows, and nothing but
`GarbledResponse` for anything else)."""

from __future__ import annotations

import contextlib
import copy
import json
import uuid
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.claim import Claim
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from insurance.pas import fhir
from insurance.pas.fhir import (
    CLAIM_ID_SYSTEM,
    EXT_ITEM_PREAUTH_PERIOD,
    EXT_REVIEW_ACTION,
    EXT_REVIEW_ACTION_CODE,
    HCPCS,
    ICD10CM,
    X12_REVIEW_ACTION,
    GarbledResponse,
    InvalidBundle,
    PayerDecision,
    PrescriberFacts,
)
from tests.support.fake_payer import SAMPLE_CREATED as CREATED
from tests.support.fake_payer import claim_response, response_bundle, sample_facts


def the_claim(bundle: dict[str, Any]) -> dict[str, Any]:
    resource: dict[str, Any] = bundle["entry"][0]["resource"]
    assert resource["resourceType"] == "Claim"
    return resource


# --- What we send ---------------------------------------------------------------------------
def test_the_submit_bundle_is_a_pas_request_for_the_course() -> None:
    facts = sample_facts()
    bundle = fhir.submit_bundle(facts)
    fhir.validate(bundle)
    parsed = Bundle.model_validate(bundle)
    assert parsed.type == "collection" and parsed.timestamp is not None
    claim: Any = Claim.model_validate(the_claim(bundle))  # read back through the model

    assert claim.use == "preauthorization" and claim.status == "active"
    assert [(i.system, i.value) for i in claim.identifier] == [
        (CLAIM_ID_SYSTEM, str(facts.claim_id))
    ]
    assert claim.priority.coding[0].code == "normal"
    assert claim.insurance[0].focal is True
    (diagnosis,) = claim.diagnosis
    assert (
        diagnosis.diagnosisCodeableConcept.coding[0].system,
        diagnosis.diagnosisCodeableConcept.coding[0].code,
    ) == (ICD10CM, "G61.81")
    (item,) = claim.item
    assert (item.productOrService.coding[0].system, item.productOrService.coding[0].code) == (
        HCPCS,
        "J1459",
    )
    assert item.quantity.value == 96 and item.quantity.code == "UN"
    assert (str(item.servicedPeriod.start), str(item.servicedPeriod.end)) == (
        "2026-12-07",
        "2027-06-04",
    )

    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert kinds == [
        "Claim",
        "Patient",
        "Coverage",
        "Organization",
        "Organization",
        "Practitioner",
        "PractitionerRole",
    ]
    coverage = bundle["entry"][2]["resource"]
    assert coverage["subscriberId"] == "APPROVE-1"
    assert coverage["class"][0]["value"] == "GRP-77"
    practitioner = bundle["entry"][5]["resource"]
    assert practitioner["identifier"] == [
        {"system": "http://hl7.org/fhir/sid/us-npi", "value": "1245319599"}
    ]


def test_visits_expedited_and_no_prescriber() -> None:
    facts = sample_facts(units=6, units_type="visits", expedited=True, prescriber=None)
    bundle = fhir.submit_bundle(facts)
    fhir.validate(bundle)
    claim = the_claim(bundle)
    assert claim["item"][0]["quantity"]["code"] == "VS"
    assert claim["priority"]["coding"][0]["code"] == "stat"
    assert claim["extension"][0]["valueCodeableConcept"]["coding"][0]["code"] == "U"
    assert "careTeam" not in claim
    assert {e["resource"]["resourceType"] for e in bundle["entry"]}.isdisjoint(
        {"Practitioner", "PractitionerRole"}
    )


def test_the_same_facts_give_the_same_bytes() -> None:
    one = json.dumps(fhir.submit_bundle(sample_facts()), sort_keys=False)
    again = json.dumps(fhir.submit_bundle(sample_facts()), sort_keys=False)
    assert one == again
    other = fhir.submit_bundle(sample_facts(claim_id=uuid.uuid4()))
    assert json.dumps(other) != one
    # Ids inside are derived from ours, never random, and every reference resolves.
    urls = [e["fullUrl"] for e in fhir.submit_bundle(sample_facts())["entry"]]
    assert all(u.startswith("urn:uuid:") for u in urls) and len(set(urls)) == len(urls)


def test_the_inquiry_asks_about_the_same_claim() -> None:
    facts = sample_facts()
    submit, inquire = fhir.submit_bundle(facts), fhir.inquire_bundle(facts)
    fhir.validate(inquire)
    assert the_claim(inquire)["identifier"] == the_claim(submit)["identifier"]
    assert inquire["identifier"] != submit["identifier"]
    assert json.dumps(fhir.inquire_bundle(facts)) == json.dumps(inquire)
    later = fhir.inquire_bundle(facts, at=CREATED + timedelta(days=2))
    assert later["timestamp"] != inquire["timestamp"]
    assert later["entry"] == inquire["entry"]


names = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=40)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    family=names,
    given_name=names,
    member=names.filter(lambda t: any(ch.isalnum() for ch in t)),
    payer=names,
    center=names,
    address=st.none() | names,
    prescriber=st.none()
    | st.builds(PrescriberFacts, names, st.none() | st.from_regex(r"\A\d{10}\Z")),
    group=st.none() | names,
    units=st.integers(min_value=1, max_value=10_000),
    start=st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 1, 1)),
    days=st.integers(min_value=0, max_value=400),
    sex=st.sampled_from(("female", "male", "other", "unknown")),
    expedited=st.booleans(),
)
def test_any_facts_give_a_valid_bundle(
    family: str,
    given_name: str,
    member: str,
    payer: str,
    center: str,
    address: str | None,
    prescriber: PrescriberFacts | None,
    group: str | None,
    units: int,
    start: date,
    days: int,
    sex: str,
    expedited: bool,
) -> None:
    base = sample_facts()
    facts = replace(
        base,
        patient=replace(base.patient, family_name=family, given_name=given_name, sex=sex),
        coverage=replace(base.coverage, member_id=member, payer_name=payer, group_number=group),
        provider=replace(base.provider, name=center, address=address),
        prescriber=prescriber,
        units=units,
        period_start=start,
        period_end=start + timedelta(days=days),
        expedited=expedited,
    )
    for bundle in (fhir.submit_bundle(facts), fhir.inquire_bundle(facts)):
        fhir.validate(bundle)
    fhir.validate(fhir.eligibility_request(facts))


def test_impossible_facts_are_refused_before_anything_is_built() -> None:
    with pytest.raises(InvalidBundle, match="ends before"):
        fhir.submit_bundle(sample_facts(period_end=date(2026, 12, 1)))
    with pytest.raises(InvalidBundle, match="units type"):
        fhir.submit_bundle(sample_facts(units_type="doses"))
    with pytest.raises(InvalidBundle, match="timezone"):
        fhir.inquire_bundle(sample_facts(created=datetime(2026, 12, 1, 9, 0)))
    with pytest.raises(InvalidBundle, match="member id"):
        fhir.eligibility_request(sample_facts(" \t "))


def test_an_invalid_bundle_names_the_element_never_the_value() -> None:
    bundle = fhir.submit_bundle(sample_facts())
    patient = bundle["entry"][1]["resource"]
    patient["birthDate"] = "Okafor-born-1961"
    patient["name"] = "Adaeze Okafor"
    with pytest.raises(InvalidBundle) as raised:
        fhir.validate(bundle)
    message = str(raised.value)
    assert "birthDate" in message and "name" in message
    assert "Okafor" not in message and "Adaeze" not in message and "1961" not in message


@pytest.mark.parametrize(
    ("spoil", "says"),
    [
        (lambda b: b.update(type="batch"), "Bundle.type"),
        (lambda b: b["entry"].reverse(), "Bundle.entry.0"),
        (lambda b: b["entry"][0]["resource"].update(use="claim"), "Claim.use"),
        (lambda b: b["entry"].pop(2), "unresolved reference"),
        (lambda b: b["entry"][1].update(fullUrl=b["entry"][0]["fullUrl"]), "fullUrl"),
        (lambda b: b["entry"][0]["resource"].pop("patient"), "patient"),
        (lambda b: b.update(entry=[]), "entry"),
        (lambda b: b.update(resourceType="Claim"), "not a Bundle"),
    ],
)
def test_validate_refuses_what_is_not_a_pas_request(spoil: Any, says: str) -> None:
    bundle = fhir.submit_bundle(sample_facts())
    spoil(bundle)
    with pytest.raises(InvalidBundle, match=says):
        fhir.validate(bundle)


# --- What we read ---------------------------------------------------------------------------
def decided(action: str, **changes: Any) -> PayerDecision:
    values: dict[str, Any] = {
        "action": action,
        "auth_number": "PA-1" if action in ("A1", "A2") else None,
        "valid_from": date(2026, 12, 7) if action in ("A1", "A2") else None,
        "valid_to": date(2027, 6, 4) if action in ("A1", "A2") else None,
        "units": {"A1": 96, "A2": 48}.get(action),
        "reason": "Clinical criteria not met" if action == "A3" else None,
        "response_id": "cr-1",
    }
    values.update(changes)
    return PayerDecision(**values)


@pytest.mark.parametrize("action", ["A1", "A2", "A3", "A4"])
@pytest.mark.parametrize("wrapped", [True, False], ids=["bundle", "bare"])
def test_each_review_action_reads_back(action: str, wrapped: bool) -> None:
    request = fhir.submit_bundle(sample_facts())
    decision = decided(action)
    body = (
        response_bundle(request, decision, CREATED)
        if wrapped
        else claim_response(the_claim(request), decision, CREATED)
    )
    Bundle.model_validate(body) if wrapped else None
    assert fhir.read_decision(body) == decision


def test_a_coded_reason_reads_as_code_and_display() -> None:
    request = fhir.submit_bundle(sample_facts())
    body = response_bundle(request, decided("A3"), CREATED, reason_code="0U")
    assert fhir.read_decision(body).reason == "0U: Clinical criteria not met"


def stu1_response(action: str) -> dict[str, Any]:
    """The shape of PAS STU 1: the review action on the item itself, the number only in the
    review action, the period only on the item, the quantity as an adjudication value."""
    return {
        "resourceType": "ClaimResponse",
        "id": "stu1",
        "status": "active",
        "type": {"coding": [{"code": "professional"}]},
        "use": "preauthorization",
        "patient": {"reference": "Patient/1"},
        "created": "2026-12-01T10:00:00Z",
        "insurer": {"reference": "Organization/2"},
        "outcome": "complete",
        "item": [
            {
                "itemSequence": 1,
                "extension": [
                    {
                        "url": EXT_REVIEW_ACTION,
                        "extension": [
                            {
                                "url": EXT_REVIEW_ACTION_CODE,
                                "valueCodeableConcept": {
                                    "coding": [{"system": X12_REVIEW_ACTION, "code": action}]
                                },
                            },
                            {"url": "number", "valueString": "AUTH0001"},
                        ],
                    },
                    {
                        "url": EXT_ITEM_PREAUTH_PERIOD,
                        "valuePeriod": {"start": "2026-12-07", "end": "2027-03-07T00:00:00Z"},
                    },
                ],
                "adjudication": [{"category": {"coding": [{"code": "eligible"}]}, "value": 12}],
            }
        ],
    }


def test_the_stu1_shape_reads_too() -> None:
    decision = fhir.read_decision(stu1_response("A1"))
    assert decision == PayerDecision(
        "A1", "AUTH0001", date(2026, 12, 7), date(2027, 3, 7), 12, None, "stu1"
    )
    # X12 A6 "Modified" is a certification of something else than asked: a partial one.
    assert fhir.read_decision(stu1_response("A6")).action == "A2"


def spoiled(change: Any) -> dict[str, Any]:
    body = stu1_response("A1")
    change(body)
    return body


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (None, "JSON object"),
        ([1, 2], "JSON object"),
        ("A1", "JSON object"),
        ({}, "resourceType"),
        ({"resourceType": "OperationOutcome", "issue": []}, "OperationOutcome"),
        ({"resourceType": "Bundle", "type": "collection", "entry": []}, "without a ClaimResponse"),
        ({"resourceType": "Bundle", "entry": "x"}, "without a ClaimResponse"),
        (spoiled(lambda b: b["item"][0].pop("extension")), "review action"),
        (spoiled(lambda b: b["item"][0]["extension"][0].update(extension=[])), "without a code"),
        (
            spoiled(
                lambda b: b["item"][0]["extension"][0]["extension"][0]["valueCodeableConcept"][
                    "coding"
                ][0].update(code="CT")
            ),
            "A1, A2, A3, A4",
        ),
        (
            spoiled(
                lambda b: b["item"][0]["extension"][1]["valuePeriod"].update(start="2026-13-01")
            ),
            "valuePeriod.start",
        ),
        (
            spoiled(lambda b: b["item"][0]["extension"][1]["valuePeriod"].update(start="2026-12")),
            "not a full date",
        ),
        (
            spoiled(lambda b: b["item"][0]["extension"][1]["valuePeriod"].update(end="2026-01-01")),
            "ends before",
        ),
        (spoiled(lambda b: b["item"][0]["adjudication"][0].update(value=2.5)), "whole number"),
        (spoiled(lambda b: b["item"][0]["adjudication"][0].update(value=-3)), "not valid|whole"),
        (spoiled(lambda b: b.pop("status")), "does not parse"),
        (spoiled(lambda b: b.update(use="claim")), "preauthorization"),
        (spoiled(lambda b: b.update(preAuthRef="X" * 65)), "64"),
    ],
)
def test_garbage_is_a_garbled_response(body: Any, says: str) -> None:
    with pytest.raises(GarbledResponse, match=says):
        fhir.read_decision(body)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_arbitrary_json_is_read_or_garbled_never_anything_else(body: Any) -> None:
    for read in (fhir.read_decision, fhir.read_eligibility, fhir.read_notification):
        with contextlib.suppress(GarbledResponse):
            read(body)


def _paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [path]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _paths(value, (*path, i))
    return found


_VALID = response_bundle(fhir.submit_bundle(sample_facts()), decided("A2"), CREATED)
_VALID_PATHS = _paths(_VALID)[1:]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(_VALID_PATHS), json_values)
def test_a_real_answer_with_any_part_replaced_is_read_or_garbled(
    path: tuple[Any, ...], value: Any
) -> None:
    body = copy.deepcopy(_VALID)
    node = body
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    try:
        decision = fhir.read_decision(body)
    except GarbledResponse:
        return
    assert decision.action in fhir.REVIEW_ACTIONS
    assert decision.units is None or decision.units >= 0
    if decision.valid_from and decision.valid_to:
        assert decision.valid_from <= decision.valid_to


auth_numbers = st.from_regex(r"\A[A-Z0-9][A-Z0-9-]{0,30}\Z")
reasons = (
    st.text(st.characters(exclude_categories=["Cs", "Cc"]), min_size=1, max_size=300)
    .map(lambda t: " ".join(t.split())[:200])
    .filter(bool)
)


@st.composite
def decisions(draw: st.DrawFn) -> PayerDecision:
    start = draw(st.none() | st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 1, 1)))
    end = None
    if draw(st.booleans()):
        base = start or date(2026, 1, 1)
        end = base + timedelta(days=draw(st.integers(0, 400)))
    return PayerDecision(
        action=draw(st.sampled_from(fhir.REVIEW_ACTIONS)),
        auth_number=draw(st.none() | auth_numbers),
        valid_from=start,
        valid_to=end,
        units=draw(st.none() | st.integers(0, 100_000)),
        reason=draw(st.none() | reasons),
        response_id=draw(st.none() | st.from_regex(r"\A[A-Za-z0-9-]{1,40}\Z")),
    )


@settings(max_examples=150, deadline=None)
@given(decisions(), st.booleans())
def test_what_the_fake_payer_says_reads_back_as_said(
    decision: PayerDecision, wrapped: bool
) -> None:
    request = fhir.submit_bundle(sample_facts())
    body = (
        response_bundle(request, decision, CREATED)
        if wrapped
        else claim_response(the_claim(request), decision, CREATED)
    )
    assert fhir.read_decision(body) == decision


# --- Benefits check and notifications -------------------------------------------------------
def test_the_eligibility_request_asks_for_benefits() -> None:
    facts = sample_facts()
    bundle = fhir.eligibility_request(facts)
    fhir.validate(bundle)
    request = bundle["entry"][0]["resource"]
    assert request["resourceType"] == "CoverageEligibilityRequest"
    assert request["purpose"] == ["benefits"]
    assert request["item"][0]["productOrService"]["coding"][0]["code"] == "J1459"
    assert json.dumps(fhir.eligibility_request(facts)) == json.dumps(bundle)


def eligibility(inforce: bool | None, outcome: str = "complete", **more: Any) -> dict[str, Any]:
    insurance: dict[str, Any] = {"coverage": {"reference": "Coverage/1"}}
    if inforce is not None:
        insurance["inforce"] = inforce
    insurance.update(more)
    return {
        "resourceType": "CoverageEligibilityResponse",
        "status": "active",
        "purpose": ["benefits"],
        "patient": {"reference": "Patient/1"},
        "created": "2026-12-01",
        "request": {"reference": "CoverageEligibilityRequest/1"},
        "outcome": outcome,
        "insurer": {"reference": "Organization/1"},
        "insurance": [insurance],
    }


def test_eligibility_answers() -> None:
    assert fhir.read_eligibility(eligibility(True)) == fhir.Eligibility(True, None)
    needs = eligibility(True, item=[{"authorizationRequired": True}])
    assert fhir.read_eligibility(needs) == fhir.Eligibility(True, "authorization required")
    assert fhir.read_eligibility(eligibility(False)).in_force is False
    assert fhir.read_eligibility(eligibility(None)).in_force is False
    error = eligibility(None, outcome="error")
    error["error"] = [{"code": {"coding": [{"code": "72", "display": "Invalid member id"}]}}]
    assert fhir.read_eligibility(error) == fhir.Eligibility(False, "72: Invalid member id")
    inside = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": eligibility(True)}],
    }
    assert fhir.read_eligibility(inside).in_force is True
    garbage: list[Any] = [
        {"resourceType": "ClaimResponse"},
        [],
        {**eligibility(True), "insurance": []},
    ]
    for body in garbage:
        with pytest.raises(GarbledResponse):
            fhir.read_eligibility(body)


def test_a_notification_names_the_claims_it_is_about() -> None:
    claim_id = uuid.uuid4()
    body = fhir.notification_bundle(claim_id, "cr-9", "Subscription/s1", 3, CREATED)
    Bundle.model_validate(body)
    assert body["type"] == "subscription-notification"
    assert fhir.read_notification(body) == [str(claim_id)]
    heartbeat = copy.deepcopy(body)
    heartbeat["entry"][0]["resource"]["type"] = "heartbeat"
    assert fhir.read_notification(heartbeat) == []
    with pytest.raises(GarbledResponse):
        fhir.read_notification({"resourceType": "Bundle", "type": "history", "entry": []})


def test_a_rejection_is_garbled_and_says_the_codes() -> None:
    body = stu1_response("A1")
    body.pop("item")
    body["outcome"] = "error"
    body["error"] = [
        {"code": {"coding": [{"system": "https://codesystem.x12.org/005010/901", "code": "72"}]}}
    ]
    with pytest.raises(fhir.PayerRejected, match="error codes: 72"):
        fhir.read_decision(body)
    # A quantity that restates what was submitted is not a certified one.
    restated = stu1_response("A1")
    restated["item"][0]["adjudication"][0]["category"] = {"coding": [{"code": "submitted"}]}
    assert fhir.read_decision(restated).units is None
