"""Submitting an authorization to its payer (Da Vinci PAS) and following the payer's answer,
shared by the routes and the inquiry job. Flushes; never commits.

A call to a payer may take many seconds, so it never runs inside a transaction: each exchange
is three steps the caller runs in order, `prepare_*` (a short transaction: checks, the
Bundle, the request marked in flight), `exchange` (the HTTP call, no database), `record` (a
short transaction: every attempt kept, the decision applied). `record` returns the problem
to answer with rather than raising it, so the attempts it kept are committed either way.

Idempotent by the Claim's identifier (our authorization's id): a retry after a timeout sends
the same Claim, byte for byte, and the payer drops the repeat. A request the payer has taken
is never submitted again (409); its answer comes by inquiry.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core import locks, settle
from core.clock import utcnow, wall_now
from core.db import Database
from core.outbox import events
from core.problems import Conflict, Invalid, NotFound, Problem
from insurance import rules
from insurance.facts import LIVE, load
from insurance.models import (
    Alert,
    Authorization,
    AuthorizationChange,
    AuthorizationExchange,
    Coverage,
    PasRequest,
    Payer,
)
from insurance.pas import fhir
from insurance.pas.client import Attempt, Endpoint, Options, Reply, post, refuse_private
from insurance.pas.payers import token_url
from patients.models import Patient
from scheduling.catalog.models import Product
from scheduling.centers.models import Center
from scheduling.courses.models import Course
from scheduling.localtime import zone

SUBMIT = "Claim/$submit"
INQUIRE = "Claim/$inquire"
ELIGIBILITY = "CoverageEligibilityRequest/$submit"
OVERDUE = "payer_overdue"
# An exchange still marked in flight after this long died with its process: another may go.
IN_FLIGHT_LEASE = timedelta(minutes=5)
WAITING = ("submitted", "pending")
TARGET = {"A1": "approved", "A2": "partially_approved", "A3": "denied", "A4": "pending"}


class PayerUnreachable(Problem):
    """The payer did not answer in time (504), or not usefully (503: refused the connection
    or answered 5xx), after every retry. Nothing changed; trying again is safe."""

    status = 504
    slug = "payer-unreachable"
    title = "The payer did not answer"


class PayerUnavailable(PayerUnreachable):
    status = 503


class PayerRefused(Problem):
    """The payer answered 4xx: it read the request and would not take it (`codes`: its
    OperationOutcome's issue codes)."""

    status = 502
    slug = "payer-refused"
    title = "The payer refused the request"


class PayerGarbled(Problem):
    """The payer answered something that is not a decision we can read."""

    status = 502
    slug = "payer-garbled"
    title = "The payer's answer could not be read"


@dataclass(frozen=True)
class Inquiry:
    """How a pended request is followed: the first inquiry `first` after it pended, each
    later one twice as long after the previous, never more than `most` apart."""

    first: timedelta = timedelta(minutes=15)
    most: timedelta = timedelta(hours=12)

    @classmethod
    def of(cls, settings: Any) -> Inquiry:
        """From anything with the settings' `pas_inquiry_*` attributes."""
        return cls(
            timedelta(minutes=settings.pas_inquiry_first_minutes),
            timedelta(hours=settings.pas_inquiry_max_hours),
        )

    def next_after(self, inquiries: int, now: datetime) -> datetime:
        wait = min(self.first * (1 << min(inquiries, 30)), self.most)
        return now + wait


@dataclass(frozen=True)
class Prepared:
    """One exchange ready to go: what to send, where, about which authorization (or, for a
    benefits check, which coverage)."""

    authorization_id: uuid.UUID | None
    payer_id: uuid.UUID
    kind: str  # submit | inquire | eligibility
    operation: str
    claim_identifier: str
    endpoint: Endpoint
    bundle: dict[str, Any]
    coverage_id: uuid.UUID | None = None
    units_requested: int | None = None  # what the Claim asks for (kept if the payer is silent)


# --- the facts a Claim is built from ---------------------------------------------------------


async def _course_of(session: AsyncSession, auth: Authorization) -> Course:
    """The course the authorization pays for: its own, else the patient's latest live course
    of the service."""
    if auth.course_id is not None:
        course = await session.get(Course, auth.course_id)
    else:
        course = await session.scalar(
            select(Course)
            .join(Product, Product.id == Course.product_id)
            .where(
                Course.patient_id == auth.patient_id,
                Product.hcpcs_code == auth.service_code,
                Course.status.in_(("active", "on_hold")),
            )
            .order_by(Course.start_date.desc(), Course.id)
            .limit(1)
        )
    if course is None:
        raise Invalid(
            "an electronic request names the course's diagnosis and drug: give the "
            "authorization its course_id"
        )
    return course


async def _planned_units(session: AsyncSession, auth: Authorization, course: Course) -> int:
    """What the course's booked sessions in the authorization's period take, as the payer
    counts units: what to ask for when the draft does not say."""
    facts = (await load(session, [auth.patient_id], cover_only=True)).get(auth.patient_id)
    if facts is None:
        return 0
    total = 0
    for need, _ in facts.sessions:
        if need.course_id != course.id or not auth.valid_from <= need.day <= auth.valid_to:
            continue
        units_type: rules.UnitsType = "visits" if auth.units_type == "visits" else "billing_units"
        try:
            total += rules.session_units(units_type, need.dose_g, need.billing_unit_mg)
        except ValueError:
            continue  # a session without a dose yet: nothing to count for it
    return total


async def claim_facts(
    session: AsyncSession, auth: Authorization, payer: Payer, created: datetime
) -> fhir.ClaimFacts:
    """What the Claim says, from what Chairside knows: the patient, the coverage and payer,
    the course's drug and diagnosis, the center, the prescriber, the period and the units."""
    patient = await session.get(Patient, auth.patient_id)
    coverage = await session.get(Coverage, auth.coverage_id)
    assert patient is not None and coverage is not None  # foreign keys
    course = await _course_of(session, auth)
    product = await session.get(Product, course.product_id)
    center = await session.get(Center, course.center_id)
    assert product is not None and center is not None
    units = auth.units_approved or await _planned_units(session, auth, course)
    if units <= 0:
        raise Invalid(
            "nothing to ask for: set units_approved to the units requested (no booked "
            "session of the course falls in the period)"
        )
    prescriber = (
        fhir.PrescriberFacts(auth.prescriber_name, auth.prescriber_npi)
        if auth.prescriber_name
        else None
    )
    return fhir.ClaimFacts(
        claim_id=auth.id,
        created=created,
        **_parties(patient, coverage, payer, center),
        prescriber=prescriber,
        diagnosis_code=course.diagnosis_code,
        service_code=auth.service_code,
        product_name=product.name,
        units=units,
        units_type=auth.units_type,
        period_start=auth.valid_from,
        period_end=auth.valid_to,
        expedited=auth.expedited,
    )


def endpoint_of(payer: Payer) -> Endpoint:
    url = token_url(payer)
    if payer.pas_base_url is None or url is None:
        raise Invalid(f"{payer.name} takes no electronic requests: set its pas_base_url")
    return Endpoint(payer.pas_base_url, url, payer.pas_client_id, payer.pas_client_secret)


def _parties(patient: Patient, coverage: Coverage, payer: Payer, center: Center) -> dict[str, Any]:
    """Who a request to the payer is about, whose coverage it is, and who asks."""
    return {
        "patient": fhir.PatientFacts(
            patient.id, patient.family_name, patient.given_name, patient.birth_date, patient.sex
        ),
        "coverage": fhir.CoverageFacts(
            coverage.id, coverage.member_id, coverage.group_number, payer.id, payer.name
        ),
        "provider": fhir.ProviderFacts(center.id, center.name, center.address),
    }


def _validated(build: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """The Bundle `build` makes of `args`, valid FHIR R4, or 422: what we know cannot make a
    request (a blank member id, a period that ends before it starts) or would not be valid."""
    try:
        bundle = build(*args)
        fhir.validate(bundle)
    except fhir.InvalidBundle as exc:
        raise Invalid(f"the request would not be valid FHIR R4: {exc}") from None
    return bundle


async def _locked(session: AsyncSession, authorization_id: uuid.UUID) -> Authorization:
    """The authorization, under its patient's cover lock and its own row lock."""
    auth = await session.get(Authorization, authorization_id)
    if auth is None:
        raise NotFound("no such authorization")
    await locks.patient_cover(session, [auth.patient_id])
    locked = await locks.authorization(session, Authorization, authorization_id)
    assert locked is not None
    return locked


def _busy(req: PasRequest, now: datetime) -> bool:
    return req.in_flight_since is not None and req.in_flight_since > now - IN_FLIGHT_LEASE


async def _payer(session: AsyncSession, auth: Authorization) -> Payer:
    payer = await session.scalar(
        select(Payer)
        .join(Coverage, Coverage.payer_id == Payer.id)
        .where(Coverage.id == auth.coverage_id)
    )
    assert payer is not None
    return payer


async def prepare_submit(
    session: AsyncSession, authorization_id: uuid.UUID, allow_private: bool
) -> Prepared:
    """Check a draft may go to its payer, build and validate its PAS Bundle, and mark it in
    flight. 409 for one that is not a draft (a request the payer has is never sent again) or
    whose submission is under way; 422 when the payer takes no electronic requests or the
    Bundle would not be valid."""
    auth = await _locked(session, authorization_id)
    req = await session.get(PasRequest, auth.id)
    if auth.status != "draft":
        taken = req is not None and req.submitted_at is not None
        raise Conflict(
            f"only a draft is submitted; this one is {auth.status}"
            + ("; the payer has it, and its answer comes by inquiry" if taken else "")
        )
    now = utcnow()
    if req is not None and _busy(req, now):
        raise Conflict("a submission of this authorization is under way")
    payer = await _payer(session, auth)
    endpoint = endpoint_of(payer)
    refuse_private(endpoint.base_url, allow_private)
    refuse_private(endpoint.token_url, allow_private)
    if req is None:
        req = PasRequest(
            authorization_id=auth.id,
            payer_id=payer.id,
            claim_identifier=str(auth.id),
            created_at=now,
            inquiries=0,
        )
        session.add(req)
    facts = await claim_facts(session, auth, payer, req.created_at)
    bundle = _validated(fhir.submit_bundle, facts)
    req.payer_id, req.in_flight_since = payer.id, now
    await session.flush()
    return Prepared(
        auth.id,
        payer.id,
        "submit",
        SUBMIT,
        req.claim_identifier,
        endpoint,
        bundle,
        units_requested=facts.units,
    )


async def prepare_inquiry(
    session: AsyncSession, authorization_id: uuid.UUID, allow_private: bool
) -> Prepared | None:
    """Mark a request the payer has, still undecided, in flight for an inquiry; None when
    there is nothing to ask (decided, never taken, or an exchange under way)."""
    auth = await _locked(session, authorization_id)
    req = await session.get(PasRequest, auth.id)
    now = utcnow()
    if req is None or req.submitted_at is None or auth.status not in WAITING or _busy(req, now):
        return None
    payer = await _payer(session, auth)
    endpoint = endpoint_of(payer)
    refuse_private(endpoint.base_url, allow_private)
    facts = await claim_facts(session, auth, payer, req.created_at)
    bundle = _validated(fhir.inquire_bundle, facts, now)
    req.in_flight_since = now
    await session.flush()
    return Prepared(
        auth.id,
        payer.id,
        "inquire",
        INQUIRE,
        req.claim_identifier,
        endpoint,
        bundle,
        units_requested=facts.units,
    )


async def exchange(prepared: Prepared, options: Options) -> Reply:
    """The HTTP call, outside any transaction. Never raises: whatever goes wrong comes back
    as the reply's failure, so the request is always released."""
    try:
        return await post(prepared.endpoint, prepared.operation, prepared.bundle, options)
    except Invalid:  # the name resolved to a private address
        return Reply(failure="private_address")
    except Exception as exc:  # a name that does not resolve, or worse: no answer either way
        now = wall_now()
        failed = Attempt(1, now, now, 0, None, "network", None, type(exc).__name__)
        return Reply(attempts=[failed], failure="network")


# --- recording what came back ----------------------------------------------------------------


def _issue_codes(document: Any) -> list[str]:
    """The issue codes (and detail codes) of an OperationOutcome: the payer's reasons in
    words it standardised, never its free text (which may repeat patient data)."""
    if not isinstance(document, dict) or document.get("resourceType") != "OperationOutcome":
        return []
    codes: list[str] = []
    for issue in document.get("issue") or []:
        if not isinstance(issue, dict):
            continue
        if isinstance(issue.get("code"), str):
            codes.append(issue["code"][:40])
        details = issue.get("details")
        codings = details.get("coding") if isinstance(details, dict) else None
        for coding in codings if isinstance(codings, list) else []:
            if isinstance(coding, dict) and isinstance(coding.get("code"), str):
                codes.append(coding["code"][:40])
    return list(dict.fromkeys(codes))[:10]


def _keep(
    session: AsyncSession,
    prepared: Prepared,
    reply: Reply,
    actor_id: uuid.UUID | None,
    last_outcome: str | None,
    last_error: str | None,
) -> None:
    """One exchange row per attempt; the last one carries what came of the call."""
    for i, a in enumerate(reply.attempts):
        last = i == len(reply.attempts) - 1
        outcome = a.outcome
        error = a.error
        if last and last_outcome is not None:
            outcome, error = last_outcome, last_error or a.error
        session.add(
            AuthorizationExchange(
                id=uuid.uuid4(),
                authorization_id=prepared.authorization_id,
                coverage_id=prepared.coverage_id,
                payer_id=prepared.payer_id,
                kind=prepared.kind,
                actor_id=actor_id,
                claim_identifier=prepared.claim_identifier,
                operation=prepared.operation,
                attempt=a.attempt,
                started_at=a.started_at,
                finished_at=a.finished_at,
                duration_ms=a.duration_ms,
                http_status=a.http_status,
                outcome=outcome,
                request_bundle=prepared.bundle,
                response_body=a.body,
                error=(error or None) and error[:500],
            )
        )


def _change(
    session: AsyncSession, auth: Authorization, to: str, actor_id: uuid.UUID | None, note: str
) -> None:
    session.add(
        AuthorizationChange(
            authorization_id=auth.id,
            actor_id=actor_id,
            from_status=auth.status,
            to_status=to,
            note=note[:1000],
        )
    )
    auth.status = to


def _local_today(tz_name: str | None) -> date:
    return utcnow().astimezone(zone(tz_name) if tz_name else UTC).date()


async def _resolve_overdue(session: AsyncSession, authorization_ids: list[uuid.UUID]) -> None:
    if not authorization_ids:
        return
    await session.execute(
        update(Alert)
        .where(
            Alert.kind == OVERDUE,
            Alert.subject_id.in_(authorization_ids),
            Alert.status.in_(LIVE),
        )
        .values(
            status="resolved", resolved_at=utcnow(), resolution="cleared", version=Alert.version + 1
        )
    )


def _decided(
    auth: Authorization, decision: fhir.PayerDecision, requested: int | None
) -> tuple[str | None, date, date, int]:
    """The number, period and units the payer's decision gives the authorization: what it
    certified, else what was asked for."""
    valid_from = decision.valid_from or auth.valid_from
    valid_to = decision.valid_to or auth.valid_to
    units = auth.units_approved
    if decision.action in ("A1", "A2"):
        units = decision.units if decision.units is not None else (requested or units)
    if valid_to < valid_from:
        raise PayerGarbled("the payer's period ends before it starts")
    if units < auth.units_used:
        raise PayerGarbled(
            f"the payer certified {units} units, fewer than the {auth.units_used} already used"
        )
    return decision.auth_number or auth.auth_number, valid_from, valid_to, units


async def _apply(
    session: AsyncSession,
    auth: Authorization,
    req: PasRequest,
    prepared: Prepared,
    decision: fhir.PayerDecision,
    actor_id: uuid.UUID | None,
    inquiry: Inquiry,
) -> str | None:
    """Apply the payer's decision; what to note as the exchange's error when it could not
    be applied (the authorization changed meanwhile)."""
    now = utcnow()
    course = await session.get(Course, auth.course_id) if auth.course_id else None
    tz_name = None
    if course is not None:
        tz_name = await session.scalar(select(Center.timezone).where(Center.id == course.center_id))
    today = _local_today(tz_name)
    if prepared.kind == "submit":
        req.submitted_at = req.submitted_at or now
        auth.requested_on = auth.requested_on or today
        if auth.status == "draft":
            _change(session, auth, "submitted", actor_id, "sent to the payer electronically")
    else:
        req.inquiries += 1
    req.last_error = None
    target = TARGET[decision.action]
    reason = f" ({decision.reason})" if decision.reason else ""
    if target == "pending":
        if auth.status == "submitted":
            _change(session, auth, "pending", actor_id, f"pended by the payer{reason}")
        req.next_inquiry_at = inquiry.next_after(req.inquiries, now)
        settle.mark(session, settle.COVER, auth.patient_id)
        return None
    if not rules.can_change(auth.status, target):
        req.next_inquiry_at = None
        return f"the payer answered {decision.action}, but the authorization is {auth.status}"
    number, valid_from, valid_to, units = _decided(auth, decision, prepared.units_requested)
    words = {
        "approved": "approved by the payer",
        "partially_approved": "partially approved by the payer",
        "denied": "denied by the payer",
    }[target]
    if target != "denied":
        auth.auth_number, auth.valid_from, auth.valid_to = number, valid_from, valid_to
        auth.units_approved = units
    elif number is not None:
        auth.auth_number = number
    auth.decided_on = today
    _change(session, auth, target, actor_id, f"{words}{reason}")
    req.decided_at, req.next_inquiry_at = now, None
    await _resolve_overdue(session, [auth.id])
    settle.mark(session, settle.COVER, auth.patient_id)
    return None


@settle.use_case
async def record(
    session: AsyncSession,
    prepared: Prepared,
    reply: Reply,
    actor_id: uuid.UUID | None,
    inquiry: Inquiry | None = None,
) -> Problem | None:
    """Keep every attempt, release the request, and apply the payer's decision (the usual
    alerts follow, as when a biller changes the status). The problem to answer with when
    the call failed; None when a decision was applied."""
    inquiry = inquiry or Inquiry()
    assert prepared.authorization_id is not None
    auth = await _locked(session, prepared.authorization_id)
    req = await session.get(PasRequest, auth.id)
    assert req is not None
    req.in_flight_since = None
    now = utcnow()
    problem, outcome, note = _failed(reply)
    if problem is None:
        try:
            decision = fhir.read_decision(reply.document)
            _decided(auth, decision, prepared.units_requested)
        except (fhir.GarbledResponse, PayerGarbled) as exc:
            problem = PayerGarbled(f"the payer's answer is not a decision we can read: {exc}")
            outcome, note = "garbled", problem.detail
        else:
            outcome = decision.action
            note = await _apply(session, auth, req, prepared, decision, actor_id, inquiry)
    if problem is not None:
        req.last_error = problem.detail[:500]
        if prepared.kind == "inquire":
            # Asked again later, as a pended one would be: a failing payer is not hammered.
            req.inquiries += 1
            req.next_inquiry_at = inquiry.next_after(req.inquiries, now)
    _keep(session, prepared, reply, actor_id, outcome, note)
    await session.flush()
    return problem


def _failed(reply: Reply) -> tuple[Problem | None, str | None, str | None]:
    """The problem of a call that brought no usable answer (None when the payer answered
    2xx), with the outcome and note for its last exchange (None: the attempt's own)."""
    if reply.failure == "private_address":
        return Invalid("payer endpoints must be public addresses"), None, None
    if reply.failure in ("timeout", "network", "server_error"):
        tries = len(reply.attempts)
        if reply.failure == "timeout":
            return (
                PayerUnreachable(f"the payer did not answer in time ({tries} attempts)"),
                None,
                None,
            )
        return PayerUnavailable(f"the payer could not be reached ({tries} attempts)"), None, None
    if reply.failure == "unauthorized":
        refused = PayerRefused(
            "the payer's token endpoint refused our client credentials", codes=[]
        )
        return refused, None, None
    if reply.status is not None and reply.status >= 400:
        codes = _issue_codes(reply.document)
        said = f": {', '.join(codes)}" if codes else ""
        problem = PayerRefused(f"the payer refused the request ({reply.status}){said}", codes=codes)
        return problem, "refused", problem.detail
    return None, None, None


# --- following pended requests ----------------------------------------------------------------


async def due(session: AsyncSession, limit: int = 100) -> list[uuid.UUID]:
    """The pended requests whose next inquiry is due."""
    rows = await session.scalars(
        select(PasRequest.authorization_id)
        .join(Authorization, Authorization.id == PasRequest.authorization_id)
        .where(
            PasRequest.next_inquiry_at <= utcnow(),
            PasRequest.submitted_at.is_not(None),
            Authorization.status.in_(WAITING),
        )
        .order_by(PasRequest.next_inquiry_at, PasRequest.authorization_id)
        .limit(limit)
    )
    return list(rows)


async def nudge(
    session: AsyncSession, payer_id: uuid.UUID, claim_identifiers: list[str]
) -> list[uuid.UUID]:
    """A payer's notification about these claims: their next inquiry is now. The ids of the
    authorizations to ask about (claims of other payers, or decided ones, are ignored: the
    notification says nothing we take on trust)."""
    if not claim_identifiers:
        return []
    rows = await session.scalars(
        select(PasRequest)
        .join(Authorization, Authorization.id == PasRequest.authorization_id)
        .where(
            PasRequest.payer_id == payer_id,
            PasRequest.claim_identifier.in_(claim_identifiers[:50]),
            PasRequest.submitted_at.is_not(None),
            Authorization.status.in_(WAITING),
        )
    )
    found = list(rows)
    now, at = utcnow(), wall_now()
    for req in found:
        req.next_inquiry_at = now
        # The notification itself, on the history: it is why an inquiry followed at once.
        session.add(
            AuthorizationExchange(
                id=uuid.uuid4(),
                authorization_id=req.authorization_id,
                payer_id=payer_id,
                kind="notification",
                claim_identifier=req.claim_identifier,
                operation="pas-notifications",
                attempt=1,
                started_at=at,
                finished_at=at,
                duration_ms=0,
                http_status=202,
                outcome="notified",
            )
        )
    await session.flush()
    return [r.authorization_id for r in found]


async def overdue(session: AsyncSession) -> dict[str, int]:
    """A `payer_overdue` alert for every request the payer has held past its decision clock
    (turnaround_days, or expedited_turnaround_days for an expedited one, since the payer
    had it); resolved once it is no longer waiting."""
    now = utcnow()
    rows = await session.execute(
        select(
            Authorization.id,
            Authorization.patient_id,
            Authorization.course_id,
            Authorization.expedited,
            PasRequest.submitted_at,
            Payer.id,
            Payer.name,
            Payer.turnaround_days,
            Payer.expedited_turnaround_days,
        )
        .join(PasRequest, PasRequest.authorization_id == Authorization.id)
        .join(Payer, Payer.id == PasRequest.payer_id)
        .where(PasRequest.submitted_at.is_not(None), Authorization.status.in_(WAITING))
    )
    late: dict[uuid.UUID, Alert] = {}
    for auth_id, patient_id, course_id, expedited, sent, payer_id, name, days, fast in rows:
        if sent is None:
            continue
        clock = fast if expedited else days
        deadline = sent + timedelta(days=clock)
        if now <= deadline:
            continue
        held = (now - sent).days
        late[auth_id] = Alert(
            id=uuid.uuid4(),
            kind=OVERDUE,
            subject_id=auth_id,
            status="open",
            severity="warning",
            due_date=deadline.date(),
            patient_id=patient_id,
            payer_id=payer_id,
            authorization_id=auth_id,
            course_id=course_id,
            detail=(
                f"{name} has not decided after {held} day(s) (its clock is {clock} day(s)); "
                f"submitted {sent.date()}"
            )[:500],
        )
    live = {
        a.subject_id: a
        for a in await session.scalars(
            select(Alert).where(Alert.kind == OVERDUE, Alert.status.in_(LIVE))
        )
    }
    await _resolve_overdue(session, [i for i in live if i not in late])
    opened = 0
    for auth_id, alert in late.items():
        if auth_id in live:
            live[auth_id].detail = alert.detail
            continue
        session.add(alert)
        await session.flush()
        opened += 1
        await events.emit(
            session,
            "alert.opened",
            alert_id=alert.id,
            kind=alert.kind,
            patient_id=alert.patient_id,
            authorization_id=alert.authorization_id,
            due_date=alert.due_date,
        )
    await session.flush()
    return {"overdue": len(late), "overdue_opened": opened}


# --- reading the history -------------------------------------------------------------------


async def exchanges(
    session: AsyncSession, authorization_id: uuid.UUID, limit: int = 200
) -> list[AuthorizationExchange]:
    if await session.get(Authorization, authorization_id) is None:
        raise NotFound("no such authorization")
    rows = await session.scalars(
        select(AuthorizationExchange)
        .where(AuthorizationExchange.authorization_id == authorization_id)
        .order_by(AuthorizationExchange.started_at.desc(), AuthorizationExchange.attempt.desc())
        .limit(limit)
    )
    return list(rows)


async def requests_of(
    session: AsyncSession, authorization_ids: list[uuid.UUID]
) -> dict[uuid.UUID, PasRequest]:
    if not authorization_ids:
        return {}
    rows = await session.scalars(
        select(PasRequest).where(PasRequest.authorization_id.in_(authorization_ids))
    )
    return {r.authorization_id: r for r in rows}


# --- whole exchanges: a transaction before the call, none during it, one after ----------------


async def submit(
    db: Database,
    authorization_id: uuid.UUID,
    actor_id: uuid.UUID | None,
    options: Options,
    inquiry: Inquiry | None = None,
) -> None:
    """Send a draft to its payer and apply the answer. Raises the problem to answer with
    (after the attempts are committed): 409, 422, or the payer's PayerUnreachable,
    PayerRefused, PayerGarbled."""
    async with db.unit_of_work() as session:
        prepared = await prepare_submit(session, authorization_id, options.allow_private)
    reply = await exchange(prepared, options)
    async with db.unit_of_work() as session:
        problem = await record(session, prepared, reply, actor_id, inquiry)
    if problem is not None:
        raise problem


async def follow(
    db: Database,
    authorization_id: uuid.UUID,
    options: Options,
    inquiry: Inquiry | None = None,
    actor_id: uuid.UUID | None = None,
) -> str:
    """Ask the payer about a pended request ($inquire) and apply the answer: `asked` (an
    answer was applied), `failed` (kept, asked again later) or `skipped` (nothing to ask)."""
    async with db.unit_of_work() as session:
        prepared = await prepare_inquiry(session, authorization_id, options.allow_private)
    if prepared is None:
        return "skipped"
    reply = await exchange(prepared, options)
    async with db.unit_of_work() as session:
        problem = await record(session, prepared, reply, actor_id, inquiry)
    return "failed" if problem is not None else "asked"


# --- benefits checks -------------------------------------------------------------------------


async def prepare_eligibility(
    session: AsyncSession,
    coverage_id: uuid.UUID,
    course_id: uuid.UUID | None,
    start: date | None,
    end: date | None,
    allow_private: bool,
) -> Prepared:
    """A benefits check (CoverageEligibilityRequest) for a coverage: the course's drug and
    diagnosis over a period (default: today and the 90 days after). 404 for an unknown
    coverage; 422 when its payer takes no electronic requests or there is no course."""
    coverage = await session.get(Coverage, coverage_id)
    if coverage is None:
        raise NotFound("no such coverage")
    payer = await session.get(Payer, coverage.payer_id)
    patient = await session.get(Patient, coverage.patient_id)
    assert payer is not None and patient is not None
    endpoint = endpoint_of(payer)
    refuse_private(endpoint.base_url, allow_private)
    if course_id is not None:
        course = await session.get(Course, course_id)
        if course is None or course.patient_id != coverage.patient_id:
            raise Invalid("no such course for this patient")
    else:
        course = await session.scalar(
            select(Course)
            .where(
                Course.patient_id == coverage.patient_id,
                Course.status.in_(("active", "on_hold")),
            )
            .order_by(Course.start_date.desc(), Course.id)
            .limit(1)
        )
        if course is None:
            raise Invalid("a benefits check names a course's drug and diagnosis: give course_id")
    product = await session.get(Product, course.product_id)
    center = await session.get(Center, course.center_id)
    assert product is not None and center is not None
    start = start or _local_today(center.timezone)
    end = end or start + timedelta(days=90)
    if end < start:
        raise Invalid("the period ends before it starts")
    check_id = uuid.uuid4()
    facts = fhir.ClaimFacts(
        claim_id=check_id,
        created=utcnow(),
        **_parties(patient, coverage, payer, center),
        prescriber=None,
        diagnosis_code=course.diagnosis_code,
        service_code=product.hcpcs_code,
        product_name=product.name,
        units=1,
        units_type="visits",
        period_start=start,
        period_end=end,
    )
    bundle = _validated(fhir.eligibility_request, facts)
    return Prepared(
        None, payer.id, "eligibility", ELIGIBILITY, str(check_id), endpoint, bundle, coverage.id
    )


async def record_eligibility(
    session: AsyncSession, prepared: Prepared, reply: Reply, actor_id: uuid.UUID | None
) -> tuple[Problem | None, Coverage]:
    """Keep the check's attempts and, when the payer answered, its word on the coverage."""
    assert prepared.coverage_id is not None
    coverage = await session.get(Coverage, prepared.coverage_id)
    assert coverage is not None
    problem, outcome, note = _failed(reply)
    if problem is None:
        try:
            found = fhir.read_eligibility(reply.document)
        except fhir.GarbledResponse as exc:
            problem = PayerGarbled(f"the payer's answer is not an eligibility response: {exc}")
            outcome, note = "garbled", problem.detail
        else:
            outcome = "in_force" if found.in_force else "not_in_force"
            coverage.eligibility_checked_at = utcnow()
            coverage.eligibility_in_force = found.in_force
            coverage.eligibility_note = found.note[:200] if found.note else None
    _keep(session, prepared, reply, actor_id, outcome, note)
    await session.flush()
    return problem, coverage


async def check_eligibility(
    db: Database,
    coverage_id: uuid.UUID,
    course_id: uuid.UUID | None,
    start: date | None,
    end: date | None,
    actor_id: uuid.UUID | None,
    options: Options,
) -> None:
    """Ask the payer whether the coverage is in force for the course's service; the answer
    is kept on the coverage. Raises the problem to answer with, after keeping the attempts."""
    async with db.unit_of_work(write=False) as session:
        prepared = await prepare_eligibility(
            session, coverage_id, course_id, start, end, options.allow_private
        )
    reply = await exchange(prepared, options)
    async with db.unit_of_work() as session:
        problem, _ = await record_eligibility(session, prepared, reply, actor_id)
    if problem is not None:
        raise problem
