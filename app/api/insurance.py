"""Payers, coverages, pre-authorizations, and billing's work queue."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.deps import (
    DEFAULT_PAGE,
    Allowed,
    Audited,
    Cursor,
    IfMatch,
    Limit,
    OwnTransactions,
    Session,
    etag,
    get_settings,
)
from app.api.idempotent import IdempotencyKey, IdempotentPost
from core import clock
from core.problems import ensure_version
from core.schemas import LocalDate, Page
from insurance import alert_queue, service, worklist
from insurance.models import Alert, Authorization, Payer
from insurance.pas import service as pas_service
from insurance.pas.client import refuse_private
from insurance.schemas import (
    AlertAction,
    AlertKind,
    AlertOut,
    AlertStatusFilter,
    AssigneeOut,
    AuthorizationCreate,
    AuthorizationOut,
    AuthorizationUpdate,
    AuthStatus,
    CoverageCreate,
    CoverageOut,
    CoverageUpdate,
    ElectronicRequestOut,
    PayerCreate,
    PayerOut,
    PayerUpdate,
    Queue,
    StatusChangeOut,
    SweepOut,
    UsageOut,
    UsageSessionOut,
)

router = APIRouter(prefix="/api/v1", tags=["insurance"])


# --- payers ----------------------------------------------------------------------------------


@router.get("/payers", response_model=Page[PayerOut])
async def list_payers(
    session: Session, _: Allowed, limit: Limit = DEFAULT_PAGE, cursor: Cursor = None
) -> Page[PayerOut]:
    """The payers, a page at a time."""
    items, nxt = await service.list_payers(session, limit, cursor)
    return Page[PayerOut](items=[payer_out(p) for p in items], next_cursor=nxt)


def payer_out(p: Payer) -> PayerOut:
    """A payer as replies show it: whether a client secret and a notification token are on
    file, never what they are."""
    return PayerOut(
        id=p.id,
        name=p.name,
        turnaround_days=p.turnaround_days,
        expedited_turnaround_days=p.expedited_turnaround_days,
        renewal_margin_days=p.renewal_margin_days,
        default_units_type=p.default_units_type,
        max_auth_days=p.max_auth_days,
        alert_days=p.alert_days,
        pas_base_url=p.pas_base_url,
        pas_token_url=p.pas_token_url,
        pas_client_id=p.pas_client_id,
        pas_client_secret_set=p.pas_client_secret is not None,
        pas_notifications=p.pas_notification_token_hash is not None,
        version=p.version,
    )


def _public_endpoints(data: PayerCreate | PayerUpdate, request: Request) -> None:
    """A payer's PAS URLs must name public hosts unless the settings allow private ones (a
    local fake payer), as webhooks must: the API is no way to reach the network inside."""
    allow = get_settings(request).payer_allow_private
    for url in (data.pas_base_url, data.pas_token_url):
        if url is not None:
            refuse_private(str(url), allow)


@router.post("/payers", status_code=status.HTTP_201_CREATED, response_model=PayerOut)
async def create_payer(
    data: PayerCreate, session: Session, _: Allowed, response: Response, request: Request
) -> PayerOut:
    """Add a payer (its rules for pre-authorizations and, optionally, its Da Vinci PAS
    endpoint and client credentials; the secret and the notification token are write-only).
    Answers 201 with its Location and ETag; 422 for a PAS URL on a private address (unless
    `CHAIRSIDE_PAYER_ALLOW_PRIVATE`)."""
    _public_endpoints(data, request)
    payer = await service.create_payer(session, data)
    response.headers["Location"] = f"/api/v1/payers/{payer.id}"
    response.headers["ETag"] = etag(payer.version)
    return payer_out(payer)


@router.get("/payers/{payer_id}", response_model=PayerOut)
async def get_payer(
    payer_id: uuid.UUID, session: Session, _: Allowed, response: Response
) -> PayerOut:
    """One payer, with its ETag for a later change."""
    payer = await service.get_payer(session, payer_id)
    response.headers["ETag"] = etag(payer.version)
    return payer_out(payer)


@router.patch("/payers/{payer_id}", response_model=PayerOut)
async def update_payer(
    payer_id: uuid.UUID,
    data: PayerUpdate,
    version: IfMatch,
    session: Session,
    _: Allowed,
    response: Response,
    request: Request,
) -> PayerOut:
    """Turnaround and margins feed every renew-by date: the next sweep recomputes the payer's
    patients. The PAS fields sent replace the stored ones (null clears one); the client
    secret and notification token are write-only."""
    _public_endpoints(data, request)
    payer = await service.get_payer(session, payer_id)
    ensure_version(payer.version, version, "payer")
    payer = await service.update_payer(session, payer, data)
    response.headers["ETag"] = etag(payer.version)
    return payer_out(payer)


# --- coverages -------------------------------------------------------------------------------


@router.get("/patients/{patient_id}/coverages", response_model=list[CoverageOut])
async def list_coverages(patient_id: uuid.UUID, session: Session, _: Allowed) -> list[CoverageOut]:
    """A patient's insurance coverages."""
    return [
        CoverageOut.model_validate(c) for c in await service.list_coverages(session, patient_id)
    ]


@router.post(
    "/patients/{patient_id}/coverages",
    status_code=status.HTTP_201_CREATED,
    response_model=CoverageOut,
)
async def create_coverage(
    patient_id: uuid.UUID,
    data: CoverageCreate,
    session: Session,
    _: Allowed,
    trail: Audited,
    response: Response,
) -> CoverageOut:
    """Add an insurance coverage to a patient. Answers 201 with its Location and ETag;
    404 for an unknown patient, 422 for an unknown payer."""
    c = await service.create_coverage(session, patient_id, data)
    trail.saw(patient_id, c.id)
    response.headers["Location"] = f"/api/v1/coverages/{c.id}"
    response.headers["ETag"] = etag(c.version)
    return CoverageOut.model_validate(c)


@router.get("/coverages/{coverage_id}", response_model=CoverageOut)
async def get_coverage(
    coverage_id: uuid.UUID, session: Session, _: Allowed, trail: Audited, response: Response
) -> CoverageOut:
    """One coverage, with its ETag for a later change."""
    c = await service.get_coverage(session, coverage_id)
    trail.saw(c.patient_id)
    response.headers["ETag"] = etag(c.version)
    return CoverageOut.model_validate(c)


@router.patch("/coverages/{coverage_id}", response_model=CoverageOut)
async def update_coverage(
    coverage_id: uuid.UUID,
    data: CoverageUpdate,
    version: IfMatch,
    session: Session,
    _: Allowed,
    trail: Audited,
    response: Response,
) -> CoverageOut:
    """Change a coverage. Send If-Match with the ETag you read: 428 without one, 412 when it is
    stale."""
    c = await service.get_coverage(session, coverage_id)
    trail.saw(c.patient_id)
    ensure_version(c.version, version, "coverage")
    c = await service.update_coverage(session, c, data)
    response.headers["ETag"] = etag(c.version)
    return CoverageOut.model_validate(c)


# --- authorizations --------------------------------------------------------------------------


async def authorizations_out(
    session: AsyncSession, items: list[Authorization]
) -> list[AuthorizationOut]:
    """The authorizations with their payer and history, in two queries for the whole page."""
    payers, histories = await service.payers_and_histories(session, items)
    electronic = await pas_service.requests_of(session, [a.id for a in items])
    return [
        AuthorizationOut(
            id=a.id,
            patient_id=a.patient_id,
            coverage_id=a.coverage_id,
            payer_id=payers[a.coverage_id],
            course_id=a.course_id,
            service_code=a.service_code,
            auth_number=a.auth_number,
            status=a.status,
            valid_from=a.valid_from,
            valid_to=a.valid_to,
            units_type=a.units_type,
            units_approved=a.units_approved,
            units_used=a.units_used,
            requested_on=a.requested_on,
            decided_on=a.decided_on,
            notes=a.notes,
            prescriber_name=a.prescriber_name,
            prescriber_npi=a.prescriber_npi,
            expedited=a.expedited,
            history=[StatusChangeOut.model_validate(h) for h in histories.get(a.id, [])],
            electronic=(
                ElectronicRequestOut.model_validate(electronic[a.id])
                if a.id in electronic
                else None
            ),
            version=a.version,
        )
        for a in items
    ]


async def authorization_out(session: AsyncSession, a: Authorization) -> AuthorizationOut:
    return (await authorizations_out(session, [a]))[0]


@router.post(
    "/authorizations", status_code=status.HTTP_201_CREATED, response_model=AuthorizationOut
)
async def create_authorization(
    data: AuthorizationCreate,
    session: Session,
    caller: Allowed,
    trail: Audited,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Record a pre-authorization for a patient's coverage: service, period and units.
    With an Idempotency-Key, a repeat of the same request gets the first answer again."""
    trail.saw(data.patient_id)
    post = IdempotentPost(session, caller, idempotency_key, "POST /api/v1/authorizations", data)
    if (earlier := await post.earlier()) is not None:
        return earlier
    auth = await service.create_authorization(session, data, caller.user_id)
    trail.saw(auth.patient_id, auth.id)
    out = await authorization_out(session, auth)
    return await post.reply(status.HTTP_201_CREATED, out, f"/api/v1/authorizations/{auth.id}")


@router.get("/authorizations", response_model=Page[AuthorizationOut])
async def list_authorizations(
    session: Session,
    _: Allowed,
    trail: Audited,
    patient_id: uuid.UUID | None = None,
    status: AuthStatus | None = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
) -> Page[AuthorizationOut]:
    """Pre-authorizations, a page at a time, by patient or status."""
    trail.saw(patient_id)
    items, nxt = await service.list_authorizations(session, patient_id, status, limit, cursor)
    return Page[AuthorizationOut](items=await authorizations_out(session, items), next_cursor=nxt)


@router.get("/authorizations/{authorization_id}", response_model=AuthorizationOut)
async def get_authorization(
    authorization_id: uuid.UUID, session: Session, _: Allowed, trail: Audited, response: Response
) -> AuthorizationOut:
    """One pre-authorization, with the units used and its ETag."""
    auth = await service.get_authorization(session, authorization_id)
    trail.saw(auth.patient_id)
    response.headers["ETag"] = etag(auth.version)
    return await authorization_out(session, auth)


@router.patch("/authorizations/{authorization_id}", response_model=AuthorizationOut)
async def update_authorization(
    authorization_id: uuid.UUID,
    data: AuthorizationUpdate,
    version: IfMatch,
    session: Session,
    caller: Allowed,
    trail: Audited,
    response: Response,
) -> AuthorizationOut:
    """Change a pre-authorization (its status, number, period or units; each change is kept
    in its history). Send If-Match with the ETag you read: 428 without one, 412 when it is stale."""
    auth = await service.get_authorization(session, authorization_id)
    trail.saw(auth.patient_id)
    auth = await service.update_authorization(
        session, authorization_id, version, data, caller.user_id
    )
    response.headers["ETag"] = etag(auth.version)
    return await authorization_out(session, auth)


@router.get(
    "/authorizations/{authorization_id}/usage",
    response_model=UsageOut,
    response_model_exclude_unset=True,
)
async def authorization_usage(
    authorization_id: uuid.UUID,
    session: Session,
    _: Allowed,
    trail: Audited,
    include: Annotated[
        Literal["sessions"] | None,
        Query(description="`sessions`: add `today`, `course_id` and the sessions drawing on it"),
    ] = None,
) -> UsageOut:
    """Units used, booked and left, and when to renew; with `include=sessions`, also the
    sessions that draw on it, given or booked (its burn-down)."""
    auth = await service.get_authorization(session, authorization_id)
    trail.saw(auth.patient_id)
    report = await worklist.usage_of(session, auth, sessions=include == "sessions")
    usage = report.usage
    out = UsageOut(
        units_approved=usage.units_approved,
        units_used=usage.units_used,
        units_scheduled=usage.units_scheduled,
        units_remaining=usage.units_remaining,
        projected_exhaustion_date=usage.projected_exhaustion,
        renew_by=usage.renew_by,
    )
    if include == "sessions":
        out.today = report.today
        out.course_id = report.course_id
        out.sessions = [
            UsageSessionOut(
                appointment_id=d.appointment_id, date=d.day, units=d.units, given=d.given
            )
            for d in report.draws
        ]
    return out


# --- the work queue --------------------------------------------------------------------------


async def alerts_out(session: AsyncSession, items: Sequence[Alert]) -> list[AlertOut]:
    """The alerts with the names a biller reads (patient, payer, authorization, assignee), in
    one query for the whole page."""
    names = await alert_queue.names_of(session, items)
    return [
        AlertOut.model_validate(
            {
                **{field: getattr(a, field) for field in ALERT_FIELDS},
                "amount_at_risk": float(a.amount_at_risk) if a.amount_at_risk is not None else None,
                **names[a.id]._asdict(),
            }
        )
        for a in items
    ]


ALERT_FIELDS = [f for f in AlertOut.model_fields if f not in alert_queue.AlertNames._fields]


# `?assigned_to=`: a user's id, or `none` for the alerts nobody has taken.
AssignedTo = Annotated[
    uuid.UUID | Literal["none"] | None,
    Query(description="a user's id, or `none` for the alerts assigned to nobody"),
]


def alert_filter(
    kind: AlertKind | None = None,
    status: Annotated[
        AlertStatusFilter | None,
        Query(description="one status, or `live` for open and acknowledged alerts"),
    ] = None,
    payer_id: uuid.UUID | None = None,
    patient_id: uuid.UUID | None = None,
    authorization_id: uuid.UUID | None = None,
    due_before: Annotated[LocalDate | None, Query()] = None,
    assigned_to: AssignedTo = None,
) -> alert_queue.AlertFilter:
    return alert_queue.AlertFilter(
        kind=kind,
        status=status,
        payer_id=payer_id,
        patient_id=patient_id,
        authorization_id=authorization_id,
        due_before=due_before,
        assigned_to=assigned_to,
    )


Filters = Annotated[alert_queue.AlertFilter, Depends(alert_filter)]


@router.get("/alerts", response_model=Page[AlertOut])
async def list_alerts(
    session: Session,
    _: Allowed,
    trail: Audited,
    filters: Filters,
    queue: Queue | None = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
) -> Page[AlertOut]:
    """The work queues (`queue`: nursing or billing), most urgent first: by severity
    (critical, warning, info), then money at risk (largest first; unknown last), then due
    date (soonest first)."""
    trail.saw(filters.patient_id)
    items, nxt = await worklist.list_alerts(session, replace(filters, queue=queue), limit, cursor)
    return Page[AlertOut](items=await alerts_out(session, items), next_cursor=nxt)


@router.get("/alerts/assignees", response_model=list[AssigneeOut])
async def list_assignees(session: Session, _: Allowed) -> list[AssigneeOut]:
    """Whom an alert may be assigned to: the active billing and admin users, by email."""
    return [AssigneeOut.model_validate(u) for u in await alert_queue.assignees(session)]


@router.get("/alerts/{alert_id}", response_model=AlertOut)
async def get_alert(
    alert_id: uuid.UUID, session: Session, _: Allowed, trail: Audited, response: Response
) -> AlertOut:
    """One alert of billing's work queue, with its ETag."""
    alert = await worklist.get_alert(session, alert_id)
    trail.saw(alert.patient_id)
    response.headers["ETag"] = etag(alert.version)
    return (await alerts_out(session, [alert]))[0]


@router.post("/alerts/{alert_id}/{action}", response_model=AlertOut)
async def act_on_alert(
    alert_id: uuid.UUID,
    action: Literal["acknowledge", "resolve", "assign"],
    session: Session,
    caller: Allowed,
    trail: Audited,
    data: AlertAction | None = None,
) -> AlertOut:
    """Acknowledge, resolve or assign an alert of billing's work queue. 409 when the alert is
    resolved already (or acknowledged, to acknowledge it)."""
    alert = await worklist.act(session, alert_id, action, data or AlertAction(), caller.user_id)
    trail.saw(alert.patient_id)
    return (await alerts_out(session, [alert]))[0]


@router.post("/billing/sweep", response_model=SweepOut)
async def run_sweep(db: OwnTransactions, _: Allowed, everyone: bool = False) -> SweepOut:
    """Recompute cover and alerts now for the patients whose review date has come, or for
    `everyone` (after a price or product change, say). The scheduler runs it hourly. It
    commits chunk by chunk in transactions of its own."""
    outcome, seconds = await worklist.sweep(db, everyone=everyone)
    return SweepOut(
        patients=outcome.patients, opened=outcome.opened, resolved=outcome.resolved, seconds=seconds
    )


CSV_COLUMNS = [
    "due_date",
    "severity",
    "kind",
    "status",
    "mrn",
    "patient",
    "payer",
    "auth_number",
    "amount_at_risk",
    "detail",
    "alert_id",
    "assignee",
]


@router.get(
    "/billing/worklist.csv",
    summary="Billing worklist (CSV)",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "one row per live alert"}},
)
async def worklist_csv(session: Session, _: Allowed, trail: Audited, filters: Filters) -> Response:
    """The live billing alerts as a spreadsheet, in the work queue's order, narrowed by the
    same filters as `GET /alerts` when given."""
    trail.saw(filters.patient_id)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for row in await worklist.worklist(session, filters):
        writer.writerow([_cell(v) for v in row])
    today = clock.utcnow().date().isoformat()
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="worklist-{today}.csv"'},
    )


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    # A spreadsheet runs cells that start like a formula: never let data do that.
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
