"""Payers, coverages and authorizations: the records billing keeps. Flushes; never commits."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core import locks, settle
from core.pagination import page
from core.problems import Duplicate, IllegalTransition, Invalid, NotFound, ensure_version
from core.repository import get_or_404
from insurance import rules
from insurance.models import Authorization, AuthorizationChange, Coverage, Payer
from insurance.pas import payers
from insurance.schemas import (
    AuthorizationCreate,
    AuthorizationUpdate,
    CoverageCreate,
    CoverageUpdate,
    PayerCreate,
    PayerUpdate,
)
from patients.models import Patient
from scheduling.courses.models import Course

# --- payers ----------------------------------------------------------------------------------


async def get_payer(session: AsyncSession, payer_id: uuid.UUID) -> Payer:
    return await get_or_404(session, Payer, payer_id, "payer")


async def list_payers(
    session: AsyncSession, limit: int, cursor: str | None
) -> tuple[list[Payer], str | None]:
    return await page(session, select(Payer), [Payer.name, Payer.id], limit, cursor)


async def _flush_named(session: AsyncSession, name: str) -> None:
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise Duplicate("name: a payer of that name already exists") from exc


async def create_payer(session: AsyncSession, data: PayerCreate) -> Payer:
    if await session.scalar(select(Payer.id).where(Payer.name == data.name)) is not None:
        raise Duplicate("name: a payer of that name already exists")
    payer = Payer(id=uuid.uuid4(), **data.model_dump(exclude=set(payers.PAS_FIELDS)))
    payers.set_pas(payer, data, data.model_fields_set)
    session.add(payer)
    await _flush_named(session, data.name)
    return payer


@settle.use_case
async def update_payer(session: AsyncSession, payer: Payer, data: PayerUpdate) -> Payer:
    changes = data.model_dump(exclude_unset=True, exclude=set(payers.PAS_FIELDS))
    for name, value in changes.items():
        if value is not None or name == "max_auth_days":
            setattr(payer, name, value)
    payers.set_pas(payer, data, data.model_fields_set)
    await _flush_named(session, payer.name)
    settle.mark(session, settle.PAYER_CHANGED, payer.id)  # its patients' renew-by dates
    return payer


# --- coverages -------------------------------------------------------------------------------


async def _patient(session: AsyncSession, patient_id: uuid.UUID) -> None:
    if await session.get(Patient, patient_id) is None:
        raise NotFound("no such patient")


async def list_coverages(session: AsyncSession, patient_id: uuid.UUID) -> list[Coverage]:
    await _patient(session, patient_id)
    rows = await session.scalars(
        select(Coverage)
        .where(Coverage.patient_id == patient_id)
        .order_by(Coverage.effective_from, Coverage.id)
    )
    return list(rows)


async def get_coverage(session: AsyncSession, coverage_id: uuid.UUID) -> Coverage:
    return await get_or_404(session, Coverage, coverage_id, "coverage")


@settle.use_case
async def create_coverage(
    session: AsyncSession, patient_id: uuid.UUID, data: CoverageCreate
) -> Coverage:
    await _patient(session, patient_id)
    if await session.get(Payer, data.payer_id) is None:
        raise Invalid("no such payer")  # a field of the body, not the resource asked for
    coverage = Coverage(id=uuid.uuid4(), patient_id=patient_id, **data.model_dump())
    session.add(coverage)
    await session.flush()
    settle.mark(session, settle.COVER, patient_id)
    return coverage


@settle.use_case
async def update_coverage(
    session: AsyncSession, coverage: Coverage, data: CoverageUpdate
) -> Coverage:
    for name, value in data.model_dump(exclude_unset=True).items():
        if value is not None or name in ("group_number", "effective_to"):
            setattr(coverage, name, value)
    if coverage.effective_to is not None and coverage.effective_to < coverage.effective_from:
        raise Invalid("the coverage ends before it starts")
    await session.flush()
    settle.mark(session, settle.COVER, coverage.patient_id)
    return coverage


# --- authorizations --------------------------------------------------------------------------


async def get_authorization(
    session: AsyncSession, authorization_id: uuid.UUID, *, for_update: bool = False
) -> Authorization:
    if not for_update:
        return await get_or_404(session, Authorization, authorization_id, "authorization")
    auth = await locks.authorization(session, Authorization, authorization_id)  # under cover
    if auth is None:
        raise NotFound("no such authorization")
    return auth


async def list_authorizations(
    session: AsyncSession,
    patient_id: uuid.UUID | None,
    status: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[Authorization], str | None]:
    query = select(Authorization)
    if patient_id is not None:
        query = query.where(Authorization.patient_id == patient_id)
    if status is not None:
        query = query.where(Authorization.status == status)
    order = [Authorization.valid_from, Authorization.id]
    return await page(session, query, order, limit, cursor)


async def payers_and_histories(
    session: AsyncSession, auths: list[Authorization]
) -> tuple[dict[uuid.UUID, uuid.UUID], dict[uuid.UUID, list[AuthorizationChange]]]:
    """Each authorization's payer (by coverage) and status history, in two queries."""
    coverage_ids = {a.coverage_id for a in auths}
    rows = await session.execute(
        select(Coverage.id, Coverage.payer_id).where(Coverage.id.in_(coverage_ids))
    )
    payers = {coverage_id: payer_id for coverage_id, payer_id in rows}
    changes = await session.scalars(
        select(AuthorizationChange)
        .where(AuthorizationChange.authorization_id.in_([a.id for a in auths]))
        .order_by(AuthorizationChange.at, AuthorizationChange.id)
    )
    histories: dict[uuid.UUID, list[AuthorizationChange]] = {}
    for change in changes:
        histories.setdefault(change.authorization_id, []).append(change)
    return payers, histories


async def payer_of(session: AsyncSession, auth: Authorization) -> Payer:
    coverage = await get_coverage(session, auth.coverage_id)
    return await get_payer(session, coverage.payer_id)


def _check_length(auth: Authorization, payer: Payer) -> None:
    if payer.max_auth_days and (auth.valid_to - auth.valid_from).days + 1 > payer.max_auth_days:
        raise Invalid(f"{payer.name} approves at most {payer.max_auth_days} days at a time")


@settle.use_case
async def create_authorization(
    session: AsyncSession, data: AuthorizationCreate, actor_id: uuid.UUID | None
) -> Authorization:
    await _patient(session, data.patient_id)
    coverage = await session.get(Coverage, data.coverage_id)
    if coverage is None or coverage.patient_id != data.patient_id:
        raise Invalid("no such coverage for this patient")
    if data.course_id is not None:
        course = await session.get(Course, data.course_id)
        if course is None or course.patient_id != data.patient_id:
            raise Invalid("no such course for this patient")
    payer = await get_payer(session, coverage.payer_id)
    values = data.model_dump(exclude={"units_type"})
    auth = Authorization(
        id=uuid.uuid4(),
        units_type=data.units_type or payer.default_units_type,
        units_used=0,
        **values,
    )
    _check_length(auth, payer)
    session.add(auth)
    session.add(
        AuthorizationChange(authorization_id=auth.id, actor_id=actor_id, to_status=auth.status)
    )
    await session.flush()
    settle.mark(session, settle.COVER, auth.patient_id)
    return auth


@settle.use_case
async def update_authorization(
    session: AsyncSession,
    authorization_id: uuid.UUID,
    version: int,
    data: AuthorizationUpdate,
    actor_id: uuid.UUID | None,
) -> Authorization:
    """Change an authorization (its status, units, dates) under its patient's cover lock: the
    units it has left are shared by every session it pays for."""
    auth = await get_authorization(session, authorization_id)
    await locks.patient_cover(session, [auth.patient_id])
    auth = await get_authorization(session, authorization_id, for_update=True)
    ensure_version(auth.version, version, "authorization")
    auth = await _update_authorization(session, auth, data, actor_id)
    settle.mark(session, settle.COVER, auth.patient_id)
    return auth


# Fields a change may clear by sending null.
NULLABLE = (
    "auth_number",
    "requested_on",
    "decided_on",
    "notes",
    "prescriber_name",
    "prescriber_npi",
)


async def _update_authorization(
    session: AsyncSession,
    auth: Authorization,
    data: AuthorizationUpdate,
    actor_id: uuid.UUID | None,
) -> Authorization:
    changes = data.model_dump(exclude_unset=True, exclude={"status", "note"})
    before = auth.status
    if data.status is not None and data.status != before:
        if not rules.can_change(before, data.status):
            raise IllegalTransition(f"an authorization cannot go from {before} to {data.status}")
        auth.status = data.status
        session.add(
            AuthorizationChange(
                authorization_id=auth.id,
                actor_id=actor_id,
                from_status=before,
                to_status=data.status,
                note=data.note,
            )
        )
    for name, value in changes.items():
        if value is not None or name in NULLABLE:
            setattr(auth, name, value)
    if auth.valid_to < auth.valid_from:
        raise Invalid("the authorization ends before it starts")
    if auth.units_approved < auth.units_used:
        raise Invalid(f"{auth.units_used} units were already used; approve at least as many")
    _check_length(auth, await payer_of(session, auth))
    await session.flush()
    return auth
