"""Usual regimens per diagnosis: the defaults a course order falls back on."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from app.api.deps import DEFAULT_PAGE, Allowed, Cursor, IfMatch, Limit, Session, etag
from core.problems import ensure_version
from core.schemas import Page
from scheduling.catalog import regimens
from scheduling.catalog.models import Regimen
from scheduling.catalog.schemas import (
    InductionOut,
    MaintenanceOut,
    RegimenCreate,
    RegimenOut,
    RegimenUpdate,
)

router = APIRouter(prefix="/api/v1", tags=["catalog"])


def regimen_out(r: Regimen) -> RegimenOut:
    induction, maintenance = regimens.phases(r)
    return RegimenOut(
        id=r.id,
        diagnosis_code=r.diagnosis_code,
        name=r.name,
        induction=InductionOut(
            total_dose_g_per_kg=float(induction.total_dose_g_per_kg),
            days=induction.days,
            skip_closures=induction.skip_closures,
        )
        if induction
        else None,
        maintenance=MaintenanceOut(
            dose_g_per_kg=float(maintenance.dose_g_per_kg),
            interval_days=maintenance.interval_days,
            window_min_days=maintenance.window_min_days,
            window_max_days=maintenance.window_max_days,
            cycles=maintenance.cycles,
            end_date=None,
        )
        if maintenance
        else None,
        version=r.version,
    )


@router.get("/regimens", response_model=Page[RegimenOut])
async def list_regimens(
    session: Session, _: Allowed, limit: Limit = DEFAULT_PAGE, cursor: Cursor = None
) -> Page[RegimenOut]:
    """The usual regimens per diagnosis, a page at a time."""
    items, nxt = await regimens.list_regimens(session, limit, cursor)
    return Page[RegimenOut](items=[regimen_out(r) for r in items], next_cursor=nxt)


@router.post("/regimens", status_code=status.HTTP_201_CREATED, response_model=RegimenOut)
async def create_regimen(
    data: RegimenCreate, session: Session, _: Allowed, response: Response
) -> RegimenOut:
    """Add a usual regimen for a diagnosis: the defaults a course order falls back on.
    Answers 201 with its Location and ETag."""
    regimen = await regimens.create_regimen(session, data)
    response.headers["Location"] = f"/api/v1/regimens/{regimen.id}"
    response.headers["ETag"] = etag(regimen.version)
    return regimen_out(regimen)


@router.get("/regimens/{regimen_id}", response_model=RegimenOut)
async def get_regimen(
    regimen_id: uuid.UUID, session: Session, _: Allowed, response: Response
) -> RegimenOut:
    """One regimen, with its ETag for a later change."""
    regimen = await regimens.get_regimen(session, regimen_id)
    response.headers["ETag"] = etag(regimen.version)
    return regimen_out(regimen)


@router.patch("/regimens/{regimen_id}", response_model=RegimenOut)
async def update_regimen(
    regimen_id: uuid.UUID,
    data: RegimenUpdate,
    version: IfMatch,
    session: Session,
    _: Allowed,
    response: Response,
) -> RegimenOut:
    """Changes apply to orders from now on; ordered courses keep their own regimen."""
    regimen = await regimens.get_regimen(session, regimen_id)
    ensure_version(regimen.version, version, "regimen")
    regimen = await regimens.update_regimen(session, regimen, data)
    response.headers["ETag"] = etag(regimen.version)
    return regimen_out(regimen)
