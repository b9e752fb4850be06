"""The FHIR documents of a Da Vinci PAS exchange (STU 2 shapes, read leniently), as pure
functions: what we know about a request in (`ClaimFacts`), a JSON-ready dict out; a payer's
answer in, a `PayerDecision` out. No I/O, no clock, no session.

The same facts always give the same bytes: every id inside a Bundle is derived from our own
ids (uuid5), and times come from the facts, so a retried submission is byte-identical and the
payer can recognise it by the Claim's identifier (our authorization's id).

What the payer certified is read where PAS STU 2 puts it and where STU 1 put it:
- the review action (X12 306: A1 certified, A2 partially certified, A3 not certified, A4
  pended) on `item.adjudication.extension` (STU 2), else on `item.extension` (STU 1), else on
  the ClaimResponse's own `adjudication`;
- the number: `ClaimResponse.preAuthRef`, else the review action's `number`;
- the period: `ClaimResponse.preAuthPeriod`, else the item's `extension-itemPreAuthPeriod`;
- the certified quantity: the item's `extension-itemAuthorizedDetail` → `quantity`, else an
  item adjudication's `value`, else none (the caller keeps what it asked for on A1).

Errors (`InvalidBundle`, `GarbledResponse`) name the element that is wrong, never its value:
these documents carry names and birth dates.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, cast, get_args

from fhir.resources.R4B import get_fhir_model_class

FHIR_JSON = "application/fhir+json"

# --- Code systems and canonical URLs -------------------------------------------------------
PAS = "http://hl7.org/fhir/us/davinci-pas"
PAS_EXTENSION = PAS + "/StructureDefinition/"
EXT_REVIEW_ACTION = PAS_EXTENSION + "extension-reviewAction"
EXT_REVIEW_ACTION_CODE = PAS_EXTENSION + "extension-reviewActionCode"
EXT_ITEM_PREAUTH_PERIOD = PAS_EXTENSION + "extension-itemPreAuthPeriod"
EXT_ITEM_AUTHORIZED_DETAIL = PAS_EXTENSION + "extension-itemAuthorizedDetail"
EXT_ITEM_TRACE_NUMBER = PAS_EXTENSION + "extension-itemTraceNumber"
EXT_CERTIFICATION_TYPE = PAS_EXTENSION + "extension-certificationType"
EXT_REQUEST_TYPE = PAS_EXTENSION + "extension-serviceItemRequestType"
EXT_LEVEL_OF_SERVICE = PAS_EXTENSION + "extension-levelOfServiceCode"
EXT_CARE_TEAM_SCOPE = PAS_EXTENSION + "extension-careTeamClaimScope"
PAS_SUBSCRIPTION_TOPIC = PAS + "/SubscriptionTopic/PASSubscriptionTopic"

X12 = "https://codesystem.x12.org/005010/"
X12_REVIEW_ACTION = X12 + "306"  # HCR01: A1 certified in total, A2 partial, A3 not, A4 pended
X12_REVIEW_DECISION_REASON = "https://codesystem.x12.org/external/886"  # HCR03
X12_CERTIFICATION_TYPE = X12 + "1322"  # UM02: I initial, R renewal
X12_REQUEST_TYPE = X12 + "1525"  # UM01: HS health services review
X12_LEVEL_OF_SERVICE = X12 + "1338"  # UM06: U urgent, E elective
X12_SERVICE_TYPE = X12 + "1365"  # UM03: 1 medical care
X12_UNIT = X12 + "673"  # HSD01: VS visits, UN units

ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
HCPCS = "http://www.cms.gov/Medicare/Coding/HCPCSReleaseCodeSets"
NPI = "http://hl7.org/fhir/sid/us-npi"
CLAIM_TYPE = "http://terminology.hl7.org/CodeSystem/claim-type"
PROCESS_PRIORITY = "http://terminology.hl7.org/CodeSystem/processpriority"
ORGANIZATION_TYPE = "http://terminology.hl7.org/CodeSystem/organization-type"
COVERAGE_CLASS = "http://terminology.hl7.org/CodeSystem/coverage-class"
SUBSCRIBER_RELATIONSHIP = "http://terminology.hl7.org/CodeSystem/subscriber-relationship"
IDENTIFIER_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0203"

# Our own identifier systems. PAS asks the Claim's identifier to be scoped as
# 'urn:trnorg:<originator>' (X12 TRN); its value is our authorization's id.
CLAIM_ID_SYSTEM = "urn:trnorg:chairside"
SUBMISSION_ID_SYSTEM = "urn:chairside:pas-submission"
INQUIRY_ID_SYSTEM = "urn:chairside:pas-inquiry"
ELIGIBILITY_ID_SYSTEM = "urn:chairside:eligibility-check"
ITEM_TRACE_SYSTEM = "urn:chairside:pas-item"
PAYER_ID_SYSTEM = "urn:chairside:payer"
CENTER_ID_SYSTEM = "urn:chairside:center"

# Fixed namespace for the ids inside our Bundles: uuid5(namespace, "Patient/<our id>").
BUNDLE_NAMESPACE = uuid.UUID("6f1f4f0e-4f7b-5d55-9a53-0d1c2a7e8b10")

# Infusion of a drug in an outpatient center is billed on the professional claim form.
CLAIM_TYPE_CODE = "professional"
# X12 306 A6 "Modified" certifies something other than what was asked: for us, partial.
_ACTION_ALIASES = {"A6": "A2"}
UNIT_CODES = {"visits": ("VS", "Visits"), "billing_units": ("UN", "Unit")}
REASON_MAX = 200

ReviewAction = Literal["A1", "A2", "A3", "A4"]
REVIEW_ACTIONS: tuple[ReviewAction, ...] = get_args(ReviewAction)


# --- What we know ---------------------------------------------------------------------------
@dataclass(frozen=True)
class PatientFacts:
    id: uuid.UUID
    family_name: str
    given_name: str
    birth_date: date
    sex: str  # patients.models.SEXES, which are FHIR's administrative genders


@dataclass(frozen=True)
class CoverageFacts:
    id: uuid.UUID
    member_id: str
    group_number: str | None
    payer_id: uuid.UUID
    payer_name: str


@dataclass(frozen=True)
class ProviderFacts:
    """The center: the requesting provider organization."""

    id: uuid.UUID
    name: str
    address: str | None


@dataclass(frozen=True)
class PrescriberFacts:
    name: str
    npi: str | None


@dataclass(frozen=True)
class ClaimFacts:
    claim_id: uuid.UUID  # our authorization's id: the idempotency key at the payer
    created: datetime
    patient: PatientFacts
    coverage: CoverageFacts
    provider: ProviderFacts
    prescriber: PrescriberFacts | None
    diagnosis_code: str  # ICD-10-CM, e.g. "G61.81"
    service_code: str  # HCPCS, e.g. "J1459"
    product_name: str
    units: int
    units_type: str  # "visits" | "billing_units"
    period_start: date
    period_end: date
    expedited: bool = False


@dataclass(frozen=True)
class PayerDecision:
    action: ReviewAction
    auth_number: str | None
    valid_from: date | None
    valid_to: date | None
    units: int | None  # the certified quantity, when the payer says it
    reason: str | None  # the review decision reason or the disposition, short
    response_id: str | None  # the payer's ClaimResponse id


@dataclass(frozen=True)
class Eligibility:
    in_force: bool
    note: str | None


class InvalidBundle(ValueError):
    """A Bundle we built (or are asked to build: facts no request can carry, such as a blank
    member id or a period that ends before it starts) is not valid FHIR R4B / PAS; the
    message names the elements, never their values."""


class GarbledResponse(ValueError):
    """A payer's answer we cannot read as a decision; the message names what is missing."""


class PayerRejected(GarbledResponse):
    """A ClaimResponse with outcome `error`: the payer read the request and refused to review
    it (X12 AAA reject reasons, e.g. 72 invalid member id); the message lists the codes. A
    GarbledResponse, so a caller that does not tell the two apart still stops."""


# --- Building -------------------------------------------------------------------------------
def _uuid(kind: str, key: object) -> str:
    return str(uuid.uuid5(BUNDLE_NAMESPACE, f"{kind}/{key}"))


def _ref(kind: str, key: object) -> dict[str, str]:
    return {"reference": f"urn:uuid:{_uuid(kind, key)}"}


def _entry(resource: dict[str, Any]) -> dict[str, Any]:
    return {"fullUrl": f"urn:uuid:{resource['id']}", "resource": resource}


def _coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    coding: dict[str, Any] = {"system": system, "code": code}
    if display:
        coding["display"] = display
    return {"coding": [coding]}


def _instant(at: datetime) -> str:
    if at.tzinfo is None:
        raise InvalidBundle("times in a PAS Bundle must be timezone-aware")
    return at.isoformat(timespec="seconds")


_SPACE = re.compile(r"\s+")


def _tidy(text: str) -> str:
    """FHIR strings allow no control characters but tab, CR and LF: fold every run of
    whitespace into one space and drop the rest of the controls."""
    folded = _SPACE.sub(" ", text)
    return "".join(ch for ch in folded if ch >= " " and ch != "\x7f").strip()


def _tidy_facts(facts: ClaimFacts) -> ClaimFacts:
    p, c, v = facts.patient, facts.coverage, facts.provider
    prescriber = facts.prescriber
    tidy = replace(
        facts,
        patient=replace(p, family_name=_tidy(p.family_name), given_name=_tidy(p.given_name)),
        coverage=replace(
            c,
            member_id=_tidy(c.member_id),
            group_number=_tidy(c.group_number or "") or None,
            payer_name=_tidy(c.payer_name),
        ),
        provider=replace(v, name=_tidy(v.name), address=_tidy(v.address or "") or None),
        prescriber=(
            None
            if prescriber is None
            else replace(
                prescriber, name=_tidy(prescriber.name), npi=_tidy(prescriber.npi or "") or None
            )
        ),
        diagnosis_code=_tidy(facts.diagnosis_code),
        service_code=_tidy(facts.service_code),
        product_name=_tidy(facts.product_name),
    )
    for what, value in (
        ("member id", tidy.coverage.member_id),
        ("diagnosis code", tidy.diagnosis_code),
        ("service code", tidy.service_code),
    ):
        if not value:
            raise InvalidBundle(f"the request has no {what}")
    if tidy.units < 0:
        raise InvalidBundle("the requested units are negative")
    return tidy


def _name(family: str, given: str) -> dict[str, Any]:
    name: dict[str, Any] = {}
    if family:
        name["family"] = family
    if given:
        name["given"] = [given]
    return name or {"text": "unknown"}


def _prescriber_key(facts: ClaimFacts) -> str:
    prescriber = facts.prescriber
    assert prescriber is not None
    return prescriber.npi or f"{facts.claim_id}/prescriber"


def _patient(facts: ClaimFacts) -> dict[str, Any]:
    p = facts.patient
    return {
        "resourceType": "Patient",
        "id": _uuid("Patient", p.id),
        "identifier": [
            {
                "type": _coding(IDENTIFIER_TYPE, "MB", "Member Number"),
                "system": f"{PAYER_ID_SYSTEM}/{facts.coverage.payer_id}/member",
                "value": facts.coverage.member_id,
            }
        ],
        "name": [_name(p.family_name, p.given_name)],
        "gender": p.sex,
        "birthDate": p.birth_date.isoformat(),
    }


def _insurer(facts: ClaimFacts) -> dict[str, Any]:
    c = facts.coverage
    return {
        "resourceType": "Organization",
        "id": _uuid("Organization", c.payer_id),
        "identifier": [{"system": PAYER_ID_SYSTEM, "value": str(c.payer_id)}],
        "active": True,
        "type": [_coding(ORGANIZATION_TYPE, "pay", "Payer")],
        **({"name": c.payer_name} if c.payer_name else {}),
    }


def _requestor(facts: ClaimFacts) -> dict[str, Any]:
    p = facts.provider
    org: dict[str, Any] = {
        "resourceType": "Organization",
        "id": _uuid("Organization", p.id),
        "identifier": [{"system": CENTER_ID_SYSTEM, "value": str(p.id)}],
        "active": True,
        "type": [_coding(ORGANIZATION_TYPE, "prov", "Healthcare Provider")],
        **({"name": p.name} if p.name else {}),
    }
    if p.address:
        org["address"] = [{"text": p.address}]
    return org


def _coverage(facts: ClaimFacts) -> dict[str, Any]:
    c = facts.coverage
    coverage: dict[str, Any] = {
        "resourceType": "Coverage",
        "id": _uuid("Coverage", c.id),
        "identifier": [
            {
                "type": _coding(IDENTIFIER_TYPE, "MB", "Member Number"),
                "system": f"{PAYER_ID_SYSTEM}/{c.payer_id}/member",
                "value": c.member_id,
            }
        ],
        "status": "active",
        "subscriberId": c.member_id,
        "beneficiary": _ref("Patient", facts.patient.id),
        "relationship": _coding(SUBSCRIBER_RELATIONSHIP, "self", "Self"),
        "payor": [_ref("Organization", c.payer_id)],
    }
    if c.group_number:
        coverage["class"] = [
            {"type": _coding(COVERAGE_CLASS, "group", "Group"), "value": c.group_number}
        ]
    return coverage


def _prescriber(facts: ClaimFacts) -> list[dict[str, Any]]:
    prescriber = facts.prescriber
    if prescriber is None:
        return []
    key = _prescriber_key(facts)
    practitioner: dict[str, Any] = {
        "resourceType": "Practitioner",
        "id": _uuid("Practitioner", key),
        **({"name": [{"text": prescriber.name}]} if prescriber.name else {}),
    }
    if prescriber.npi:
        practitioner["identifier"] = [{"system": NPI, "value": prescriber.npi}]
    role = {
        "resourceType": "PractitionerRole",
        "id": _uuid("PractitionerRole", f"{key}@{facts.provider.id}"),
        "practitioner": _ref("Practitioner", key),
        "organization": _ref("Organization", facts.provider.id),
    }
    return [practitioner, role]


def _claim(facts: ClaimFacts) -> dict[str, Any]:
    if facts.units_type not in UNIT_CODES:
        raise InvalidBundle(f"unknown units type {facts.units_type!r}")
    if facts.period_end < facts.period_start:
        raise InvalidBundle("the requested period ends before it starts")
    unit_code, unit_name = UNIT_CODES[facts.units_type]
    item: dict[str, Any] = {
        "extension": [
            {
                "url": EXT_ITEM_TRACE_NUMBER,
                "valueIdentifier": {"system": ITEM_TRACE_SYSTEM, "value": f"{facts.claim_id}-1"},
            },
            {
                "url": EXT_REQUEST_TYPE,
                "valueCodeableConcept": _coding(X12_REQUEST_TYPE, "HS", "Health Services Review"),
            },
            {
                "url": EXT_CERTIFICATION_TYPE,
                "valueCodeableConcept": _coding(X12_CERTIFICATION_TYPE, "I", "Initial"),
            },
        ],
        "sequence": 1,
        "diagnosisSequence": [1],
        "category": _coding(X12_SERVICE_TYPE, "1", "Medical Care"),
        "productOrService": _coding(HCPCS, facts.service_code, facts.product_name),
        "servicedPeriod": {
            "start": facts.period_start.isoformat(),
            "end": facts.period_end.isoformat(),
        },
        "quantity": {
            "value": facts.units,
            "unit": unit_name,
            "system": X12_UNIT,
            "code": unit_code,
        },
    }
    claim: dict[str, Any] = {
        "resourceType": "Claim",
        "id": _uuid("Claim", facts.claim_id),
        "identifier": [{"system": CLAIM_ID_SYSTEM, "value": str(facts.claim_id)}],
        "status": "active",
        "type": _coding(CLAIM_TYPE, CLAIM_TYPE_CODE, "Professional"),
        "use": "preauthorization",
        "patient": _ref("Patient", facts.patient.id),
        "created": _instant(facts.created),
        "insurer": _ref("Organization", facts.coverage.payer_id),
        "provider": _ref("Organization", facts.provider.id),
        "priority": _coding(PROCESS_PRIORITY, "stat" if facts.expedited else "normal"),
        "diagnosis": [
            {
                "sequence": 1,
                "diagnosisCodeableConcept": _coding(ICD10CM, facts.diagnosis_code),
            }
        ],
        "insurance": [
            {"sequence": 1, "focal": True, "coverage": _ref("Coverage", facts.coverage.id)}
        ],
        "item": [item],
    }
    if facts.expedited:
        claim["extension"] = [
            {
                "url": EXT_LEVEL_OF_SERVICE,
                "valueCodeableConcept": _coding(X12_LEVEL_OF_SERVICE, "U", "Urgent"),
            }
        ]
    if facts.prescriber is not None:
        key = _prescriber_key(facts)
        claim["careTeam"] = [
            {
                "extension": [{"url": EXT_CARE_TEAM_SCOPE, "valueBoolean": True}],
                "sequence": 1,
                "provider": _ref("PractitionerRole", f"{key}@{facts.provider.id}"),
            }
        ]
        item["careTeamSequence"] = [1]
    return claim


def _resources(facts: ClaimFacts) -> list[dict[str, Any]]:
    # PAS: the Claim first, then everything it refers to.
    return [
        _claim(facts),
        _patient(facts),
        _coverage(facts),
        _insurer(facts),
        _requestor(facts),
        *_prescriber(facts),
    ]


def _bundle(system: str, key: str, at: datetime, resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "id": _uuid("Bundle", f"{system}/{key}"),
        "identifier": {"system": system, "value": key},
        "type": "collection",
        "timestamp": _instant(at),
        "entry": [_entry(r) for r in resources],
    }


def submit_bundle(facts: ClaimFacts) -> dict[str, Any]:
    """The PAS Request Bundle for `Claim/$submit`."""
    facts = _tidy_facts(facts)
    return _bundle(SUBMISSION_ID_SYSTEM, str(facts.claim_id), facts.created, _resources(facts))


def inquire_bundle(facts: ClaimFacts, at: datetime | None = None) -> dict[str, Any]:
    """The PAS Inquiry Request Bundle for `Claim/$inquire`: the same Claim (same identifier),
    under a transaction identifier of its own. `at` (default: the claim's `created`) only
    sets the Bundle's timestamp, so a repeated inquiry is byte-identical unless asked."""
    facts = _tidy_facts(facts)
    return _bundle(INQUIRY_ID_SYSTEM, str(facts.claim_id), at or facts.created, _resources(facts))


def eligibility_request(facts: ClaimFacts) -> dict[str, Any]:
    """A benefits check for `CoverageEligibilityRequest/$submit`: a collection Bundle whose
    first entry is the CoverageEligibilityRequest (purpose benefits, the course's service and
    diagnosis over the requested period), followed by what it refers to."""
    facts = _tidy_facts(facts)
    request = {
        "resourceType": "CoverageEligibilityRequest",
        "id": _uuid("CoverageEligibilityRequest", facts.claim_id),
        "identifier": [{"system": ELIGIBILITY_ID_SYSTEM, "value": str(facts.claim_id)}],
        "status": "active",
        "purpose": ["benefits"],
        "patient": _ref("Patient", facts.patient.id),
        "servicedPeriod": {
            "start": facts.period_start.isoformat(),
            "end": facts.period_end.isoformat(),
        },
        "created": _instant(facts.created),
        "provider": _ref("Organization", facts.provider.id),
        "insurer": _ref("Organization", facts.coverage.payer_id),
        "insurance": [{"focal": True, "coverage": _ref("Coverage", facts.coverage.id)}],
        "item": [
            {
                "category": _coding(X12_SERVICE_TYPE, "1", "Medical Care"),
                "productOrService": _coding(HCPCS, facts.service_code, facts.product_name),
                "diagnosis": [{"diagnosisCodeableConcept": _coding(ICD10CM, facts.diagnosis_code)}],
            }
        ],
    }
    resources = [
        request,
        _patient(facts),
        _coverage(facts),
        _insurer(facts),
        _requestor(facts),
    ]
    return _bundle(ELIGIBILITY_ID_SYSTEM, str(facts.claim_id), facts.created, resources)


# --- Validating -----------------------------------------------------------------------------
def _problems(error: Exception) -> str:
    """Where a document fails to parse, without the offending values (they may be PHI)."""
    errors = getattr(error, "errors", None)
    if callable(errors):
        try:
            listed = errors(include_input=False, include_url=False)
        except TypeError:
            listed = errors()
        parts = []
        for e in listed[:10]:
            where = ".".join(str(p) for p in e.get("loc", ())) or "(root)"
            parts.append(f"{where}: {e.get('type', 'invalid')}")
        if parts:
            return "; ".join(parts)
    return type(error).__name__


def _parse(resource: Mapping[str, Any]) -> Any:
    kind = resource.get("resourceType")
    if not isinstance(kind, str) or not kind:
        raise ValueError("no resourceType")
    model = get_fhir_model_class(kind)  # KeyError for a type R4B does not know
    return model.model_validate(dict(resource))


def validate(bundle: dict[str, Any]) -> None:
    """Parse `bundle` with fhir.resources (R4B), and check the PAS shape we rely on: a
    collection whose first entry is the Claim (or CoverageEligibilityRequest), every
    reference resolvable inside the Bundle."""
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise InvalidBundle("not a Bundle")
    try:
        _parse(bundle)
    except Exception as e:
        raise InvalidBundle(_problems(e)) from None
    if bundle.get("type") != "collection":
        raise InvalidBundle("Bundle.type: must be collection")
    entries = bundle.get("entry") or []
    if not entries:
        raise InvalidBundle("Bundle.entry: empty")
    first = entries[0].get("resource", {})
    if first.get("resourceType") not in ("Claim", "CoverageEligibilityRequest"):
        raise InvalidBundle("Bundle.entry.0: must be the Claim")
    if first.get("resourceType") == "Claim" and first.get("use") != "preauthorization":
        raise InvalidBundle("Claim.use: must be preauthorization")
    urls = {e.get("fullUrl") for e in entries}
    if len(urls) != len(entries) or None in urls:
        raise InvalidBundle("Bundle.entry.fullUrl: missing or repeated")
    for i, entry in enumerate(entries):
        for path, ref in _references(entry.get("resource", {}), ""):
            if ref not in urls:
                raise InvalidBundle(f"Bundle.entry.{i}.resource{path}: unresolved reference")


def _references(node: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                yield path, value
            else:
                yield from _references(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _references(value, f"{path}.{i}")


# --- Reading the payer's answer -------------------------------------------------------------
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


def _resource_in(body: Any, kind: str) -> dict[str, Any]:
    """The `kind` resource of a response: the body itself, or the first such entry of a
    Bundle (PAS puts it first; we do not insist)."""
    if not isinstance(body, dict):
        raise GarbledResponse("not a JSON object")
    found = body.get("resourceType")
    if found == kind:
        resource = body
    elif found == "Bundle":
        entries = body.get("entry")
        if not isinstance(entries, list):
            raise GarbledResponse(f"a Bundle without a {kind}")
        candidates: list[dict[str, Any]] = [
            e["resource"]
            for e in entries
            if isinstance(e, dict)
            and isinstance(e.get("resource"), dict)
            and e["resource"].get("resourceType") == kind
        ]
        if not candidates:
            raise GarbledResponse(f"a Bundle without a {kind}")
        resource = candidates[0]
    elif isinstance(found, str):
        raise GarbledResponse(f"a {found[:40]}, not a {kind}")
    else:
        raise GarbledResponse("no resourceType")
    try:
        _parse(resource)
    except Exception as e:
        raise GarbledResponse(f"{kind} does not parse: {_problems(e)}") from None
    return cast(dict[str, Any], resource)


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _with_url(extensions: Any, *urls: str) -> list[dict[str, Any]]:
    return [e for e in _dicts(extensions) if e.get("url") in urls]


def _review_actions(response: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for item in _dicts(response.get("item")):
        for adjudication in _dicts(item.get("adjudication")):
            yield from _with_url(adjudication.get("extension"), EXT_REVIEW_ACTION)
        yield from _with_url(item.get("extension"), EXT_REVIEW_ACTION)
    for adjudication in _dicts(response.get("adjudication")):
        yield from _with_url(adjudication.get("extension"), EXT_REVIEW_ACTION)


def _concept_code(concept: Any, system: str | None) -> tuple[str | None, str | None]:
    """(code, display) of a CodeableConcept, preferring `system`'s coding."""
    if not isinstance(concept, dict):
        return None, None
    codings = _dicts(concept.get("coding"))
    if system is not None:
        codings.sort(key=lambda c: c.get("system") != system)
    for coding in codings:
        code = coding.get("code")
        if isinstance(code, str) and code:
            display = coding.get("display")
            return code, display if isinstance(display, str) else None
    text = concept.get("text")
    return None, text if isinstance(text, str) else None


def _action(review: dict[str, Any]) -> tuple[ReviewAction, str | None, str | None]:
    subs = review.get("extension")
    codes = _with_url(subs, EXT_REVIEW_ACTION_CODE, "code", "reviewActionCode")
    if not codes:
        raise GarbledResponse("review action without a code")
    code, _ = _concept_code(codes[0].get("valueCodeableConcept"), X12_REVIEW_ACTION)
    code = _ACTION_ALIASES.get(code or "", code)
    if code not in REVIEW_ACTIONS:
        raise GarbledResponse("review action code is not one of A1, A2, A3, A4")
    numbers = [
        e["valueString"]
        for e in _with_url(subs, "number")
        if isinstance(e.get("valueString"), str) and e["valueString"].strip()
    ]
    reason = None
    for e in _with_url(subs, "reasonCode"):
        reason_code, display = _concept_code(e.get("valueCodeableConcept"), None)
        if reason_code or display:
            reason = ": ".join(p for p in (reason_code, display) if p)
            break
    return code, (numbers[0] if numbers else None), reason


def _date(value: Any, what: str) -> date | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _DATE.match(value):
        raise GarbledResponse(f"{what} is not a full date")
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        raise GarbledResponse(f"{what} is not a date") from None


def _period(response: dict[str, Any]) -> tuple[date | None, date | None]:
    period = response.get("preAuthPeriod")
    if not isinstance(period, dict):
        period = None
        for item in _dicts(response.get("item")):
            for e in _with_url(item.get("extension"), EXT_ITEM_PREAUTH_PERIOD):
                if isinstance(e.get("valuePeriod"), dict):
                    period = e["valuePeriod"]
                    break
            if period is not None:
                break
    if period is None:
        return None, None
    start = _date(period.get("start"), "preAuthPeriod.start")
    end = _date(period.get("end"), "preAuthPeriod.end")
    if start and end and end < start:
        raise GarbledResponse("preAuthPeriod ends before it starts")
    return start, end


def _whole(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise GarbledResponse(f"{what} is not a number")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise GarbledResponse(f"{what} is not a number") from None
    if not number.is_finite() or number < 0 or number != number.to_integral_value():
        raise GarbledResponse(f"{what} is not a whole number of units")
    if number > 1_000_000:
        raise GarbledResponse(f"{what} is out of range")
    return int(number)


def _units(response: dict[str, Any]) -> int | None:
    items = _dicts(response.get("item"))
    for item in items:
        for detail in _with_url(item.get("extension"), EXT_ITEM_AUTHORIZED_DETAIL):
            for q in _with_url(detail.get("extension"), "quantity"):
                quantity = q.get("valueQuantity")
                if isinstance(quantity, dict) and "value" in quantity:
                    return _whole(quantity["value"], "authorized quantity")
    for item in items:
        for adjudication in _dicts(item.get("adjudication")):
            # A 'submitted' adjudication restates what was asked, not what was certified.
            category, _ = _concept_code(adjudication.get("category"), None)
            if "value" in adjudication and category != "submitted":
                return _whole(adjudication["value"], "adjudication value")
    return None


def _short(text: Any) -> str | None:
    if not isinstance(text, str) or not text.strip():
        return None
    short = " ".join(text.split())
    return short if len(short) <= REASON_MAX else short[: REASON_MAX - 1] + "…"


def read_decision(body: Any) -> PayerDecision:
    """What the payer decided, from a PAS Response Bundle or a bare ClaimResponse."""
    response = _resource_in(body, "ClaimResponse")
    if response.get("use") not in (None, "preauthorization"):
        raise GarbledResponse("ClaimResponse.use is not preauthorization")
    reviews = list(_review_actions(response))
    if not reviews and response.get("outcome") == "error":
        codes = [_concept_code(e.get("code"), None)[0] for e in _dicts(response.get("error"))]
        listed = ", ".join(c[:10] for c in codes if c) or "none given"
        raise PayerRejected(f"the payer rejected the request (error codes: {listed})")
    if not reviews:
        raise GarbledResponse("ClaimResponse without a review action")
    action, number, reason = _action(reviews[0])
    pre_auth_ref = response.get("preAuthRef")
    auth_number = pre_auth_ref.strip() if isinstance(pre_auth_ref, str) else None
    auth_number = auth_number or number
    if auth_number is not None and len(auth_number) > 64:
        raise GarbledResponse("preAuthRef is longer than 64 characters")
    valid_from, valid_to = _period(response)
    response_id = response.get("id")
    return PayerDecision(
        action=action,
        auth_number=auth_number,
        valid_from=valid_from,
        valid_to=valid_to,
        units=_units(response),
        reason=_short(reason) or _short(response.get("disposition")),
        response_id=response_id if isinstance(response_id, str) else None,
    )


def read_eligibility(body: Any) -> Eligibility:
    """Whether the coverage is in force for the service, from a CoverageEligibilityResponse
    (bare or first of its kind in a Bundle)."""
    response = _resource_in(body, "CoverageEligibilityResponse")
    outcome = response.get("outcome")
    if outcome == "error":
        errors = [_concept_code(e.get("code"), None) for e in _dicts(response.get("error"))]
        note = "; ".join(": ".join(p for p in pair if p) for pair in errors if any(pair))
        return Eligibility(in_force=False, note=_short(note) or _short(response.get("disposition")))
    insurances = _dicts(response.get("insurance"))
    if not insurances:
        raise GarbledResponse("CoverageEligibilityResponse without insurance")
    in_force = any(i.get("inforce") is True for i in insurances)
    notes = [_short(response.get("disposition"))]
    for insurance in insurances:
        for item in _dicts(insurance.get("item")):
            if item.get("authorizationRequired") is True:
                notes.append("authorization required")
            if item.get("excluded") is True:
                notes.append("service excluded")
    note = "; ".join(dict.fromkeys(n for n in notes if n))
    return Eligibility(in_force=in_force, note=_short(note))


# --- Rest-hook notifications (FHIR Subscriptions, R4B shape, PAS topic) ----------------------
def read_notification(body: Any) -> list[str]:
    """The Claim identifiers (our authorization ids, as strings) a PAS subscription
    notification is about. The notification is a Bundle of type `subscription-notification`
    whose first entry is a SubscriptionStatus; each `notificationEvent.focus` refers to the
    ClaimResponse and carries the Claim's identifier (`focus.identifier`, system
    `CLAIM_ID_SYSTEM`). A heartbeat or handshake yields []. Anything else: GarbledResponse.
    The notification is only a nudge: the caller asks the payer ($inquire) for the decision."""
    status = _resource_in(body, "SubscriptionStatus")
    if status.get("type") in ("handshake", "heartbeat"):
        return []
    claims: list[str] = []
    for event in _dicts(status.get("notificationEvent")):
        focus = event.get("focus")
        identifier = focus.get("identifier") if isinstance(focus, dict) else None
        if (
            isinstance(identifier, dict)
            and identifier.get("system") == CLAIM_ID_SYSTEM
            and isinstance(identifier.get("value"), str)
        ):
            claims.append(identifier["value"])
    return list(dict.fromkeys(claims))


def notification_bundle(
    claim_id: uuid.UUID | str,
    response_id: str,
    subscription: str,
    event_number: int,
    at: datetime,
) -> dict[str, Any]:
    """A PAS rest-hook notification (id-only payload) about one ClaimResponse: what a payer
    posts when a pended request is decided. Here so the fake payer and the reader agree."""
    status = {
        "resourceType": "SubscriptionStatus",
        "id": _uuid("SubscriptionStatus", f"{subscription}/{event_number}"),
        "status": "active",
        "type": "event-notification",
        "eventsSinceSubscriptionStart": str(event_number),
        "notificationEvent": [
            {
                "eventNumber": str(event_number),
                "timestamp": _instant(at),
                "focus": {
                    "reference": f"ClaimResponse/{response_id}",
                    "identifier": {"system": CLAIM_ID_SYSTEM, "value": str(claim_id)},
                },
            }
        ],
        "subscription": {"reference": subscription},
        "topic": PAS_SUBSCRIPTION_TOPIC,
    }
    return {
        "resourceType": "Bundle",
        "id": _uuid("Bundle", f"{subscription}/{event_number}"),
        "type": "subscription-notification",
        "timestamp": _instant(at),
        "entry": [_entry(status)],
    }
