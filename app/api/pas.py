"""Electronic prior authorization (Da Vinci PAS): submitting a draft to its payer, the
exchanges kept on its history, and the payer's rest-hook that asks us to inquire now."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Body, Header, Request, status
from pydantic import BaseModel, Field

from app.api.deps import Allowed, Audited, OwnTransactions, Session, get_settings
from app.api.errors import PROBLEM_JSON
from app.api.insurance import authorization_out
from app.api.policy import BILLING
from app.settings import Settings
from core.db import Database
from core.problems import Invalid, NotFound
from insurance import service as insurance
from insurance.models import AuthorizationExchange
from insurance.pas import fhir
from insurance.pas import service as pas
from insurance.pas.client import Options
from insurance.pas.payers import notification_token_matches
from insurance.schemas import (
    AuthorizationOut,
    CoverageOut,
    EligibilityCheck,
    EligibilityOut,
    ExchangeOut,
)

router = APIRouter(prefix="/api/v1", tags=["insurance"])

NOTIFICATION_HEADER = "Chairside-Notification-Token"
_PROBLEM = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemDetail"}}}
# What a call to the payer may end in, beside the usual answers.
PAYER_ERRORS: dict[int | str, dict[str, Any]] = {
    502: {"description": "payer-refused (a 4xx) or payer-garbled", "content": _PROBLEM},
    503: {"description": "payer-unreachable: no connection or 5xx; try again", "content": _PROBLEM},
    504: {"description": "payer-unreachable: no answer in time; try again", "content": _PROBLEM},
}


def payer_options(settings: Settings) -> Options:
    return Options.of(settings)


@router.post(
    "/authorizations/{authorization_id}/submit",
    response_model=AuthorizationOut,
    summary="Submit a draft to its payer (Da Vinci PAS)",
    responses=PAYER_ERRORS,
)
async def submit_authorization(
    authorization_id: uuid.UUID,
    request: Request,
    db: OwnTransactions,
    caller: Allowed,
    trail: Audited,
) -> AuthorizationOut:
    """Billing: send a draft authorization to its payer's PAS endpoint
    (`{pas_base_url}/Claim/$submit`) as a PAS Bundle built from the patient, the coverage,
    the course's drug and diagnosis, the center and the prescriber (validated as FHIR R4
    first), and apply the payer's answer: A1 approved (number, period and units as
    certified), A2 partially approved, A3 denied (the reason in the history), A4 pending (the
    `pas_inquiry` job asks again). Every attempt is kept (`GET .../exchanges`).

    The call runs outside any transaction; timeouts and 5xx are retried with backoff, always
    with the same Claim identifier, so a repeat after a timeout is the same request.
    409 for an authorization that is not a draft (one the payer has is never sent again) or
    whose submission is under way; 422 when its payer takes no electronic requests, it has no
    course, or the Bundle would not validate; 502 `payer-refused` (the payer answered 4xx;
    `codes` are its OperationOutcome's) or `payer-garbled`; 504/503 `payer-unreachable`
    (nothing changed: try again)."""
    async with db.unit_of_work(write=False) as session:
        auth = await insurance.get_authorization(session, authorization_id)
        trail.saw(auth.patient_id)
    settings = get_settings(request)
    await pas.submit(
        db,
        authorization_id,
        caller.user_id,
        payer_options(settings),
        pas.Inquiry.of(settings),
    )
    async with db.unit_of_work(write=False) as session:
        auth = await insurance.get_authorization(session, authorization_id)
        return await authorization_out(session, auth)


def exchange_out(x: AuthorizationExchange, bodies: bool) -> ExchangeOut:
    out = ExchangeOut(
        id=x.id,
        authorization_id=x.authorization_id,
        coverage_id=x.coverage_id,
        payer_id=x.payer_id,
        kind=x.kind,
        actor_id=x.actor_id,
        claim_identifier=x.claim_identifier,
        operation=x.operation,
        attempt=x.attempt,
        started_at=x.started_at,
        finished_at=x.finished_at,
        duration_ms=x.duration_ms,
        http_status=x.http_status,
        outcome=x.outcome,
        error=x.error,
    )
    if bodies:
        out.request_bundle = x.request_bundle
        out.response_body = x.response_body
    return out


@router.get(
    "/authorizations/{authorization_id}/exchanges",
    response_model=list[ExchangeOut],
    response_model_exclude_unset=True,
)
async def list_exchanges(
    authorization_id: uuid.UUID, session: Session, caller: Allowed, trail: Audited
) -> list[ExchangeOut]:
    """Staff: every HTTP exchange with the payer about this authorization, newest first (one
    per attempt: kind, operation, timing, HTTP status, outcome, error). The Bundles sent and
    the answers received carry patient data: they are included for billing and admins only.
    404 for an unknown authorization."""
    auth = await insurance.get_authorization(session, authorization_id)
    trail.saw(auth.patient_id)
    bodies = caller.role in BILLING
    return [exchange_out(x, bodies) for x in await pas.exchanges(session, authorization_id)]


class NotificationAccepted(BaseModel):
    inquiries: int = Field(description="pended requests this notification sends us to ask about")


async def _inquire_now(db: Database, ids: list[uuid.UUID], settings: Settings) -> None:
    for authorization_id in ids:
        await pas.follow(db, authorization_id, payer_options(settings), pas.Inquiry.of(settings))


@router.post(
    "/payers/{payer_id}/pas-notifications",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=NotificationAccepted,
    summary="A payer's PAS rest-hook notification",
)
async def pas_notification(
    payer_id: uuid.UUID,
    request: Request,
    db: OwnTransactions,
    background: BackgroundTasks,
    payload: Annotated[dict[str, Any], Body(description="a subscription-notification Bundle")],
    token: Annotated[
        str | None,
        Header(
            alias=NOTIFICATION_HEADER,
            description="the payer's notification token (set on the payer)",
        ),
    ] = None,
) -> NotificationAccepted:
    """For payers (no user signs in): a FHIR subscription notification about PAS claims.
    It carries the payer's notification token in `Chairside-Notification-Token` (set on the
    payer as `pas_notification_token`; 404 without it or with another, as for an unknown
    payer). It only moves the
    named claims' next inquiry to now and starts it: the decision is always read from the
    payer's own answer to `Claim/$inquire`, never from the notification. Answers 202 with
    how many inquiries it started (claims of other payers and decided ones are ignored);
    a heartbeat or handshake starts none. 422 for a body that is no notification."""
    async with db.unit_of_work() as session:
        payer = await insurance.get_payer(session, payer_id) if token else None
        if payer is None or not notification_token_matches(payer, token):
            # One answer for an unknown payer, a payer without notifications and a wrong
            # token: like a secret link, the endpoint does not exist for whoever lacks it.
            raise NotFound("no such notification endpoint")
        try:
            claims = fhir.read_notification(payload)
        except fhir.GarbledResponse as exc:
            raise Invalid(f"not a PAS notification: {exc}") from None
        ids = await pas.nudge(session, payer_id, claims)
    if ids:
        background.add_task(_inquire_now, db, ids, get_settings(request))
    return NotificationAccepted(inquiries=len(ids))


@router.post(
    "/coverages/{coverage_id}/eligibility-check",
    response_model=EligibilityOut,
    summary="Check benefits with the payer",
    responses=PAYER_ERRORS,
)
async def check_eligibility(
    coverage_id: uuid.UUID,
    data: EligibilityCheck,
    request: Request,
    db: OwnTransactions,
    caller: Allowed,
    trail: Audited,
) -> EligibilityOut:
    """Billing: before the first session, ask the payer (`{pas_base_url}/
    CoverageEligibilityRequest/$submit`) whether the coverage is in force for the course's
    drug and diagnosis over the period (default today and the 90 days after). The answer is
    kept on the coverage (`eligibility_checked_at`, `eligibility_in_force`,
    `eligibility_note`) and the exchange on its history. 404 for an unknown coverage; 422
    when the payer takes no electronic requests or there is no course; 502/503/504 as for
    `submit`."""
    async with db.unit_of_work(write=False) as session:
        coverage = await insurance.get_coverage(session, coverage_id)
        trail.saw(coverage.patient_id)
    await pas.check_eligibility(
        db,
        coverage_id,
        data.course_id,
        data.from_,
        data.to,
        caller.user_id,
        payer_options(get_settings(request)),
    )
    async with db.unit_of_work(write=False) as session:
        coverage = await insurance.get_coverage(session, coverage_id)
        assert coverage.eligibility_checked_at is not None
        assert coverage.eligibility_in_force is not None
        return EligibilityOut(
            in_force=coverage.eligibility_in_force,
            note=coverage.eligibility_note,
            checked_at=coverage.eligibility_checked_at,
            coverage=CoverageOut.model_validate(coverage),
        )
