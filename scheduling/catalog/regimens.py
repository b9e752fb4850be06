"""Usual regimens per diagnosis: data a center edits, read when a course order leaves a phase
out. Flushes; never commits."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.pagination import page
from core.problems import Duplicate, Invalid
from core.repository import get_or_404
from scheduling.catalog.models import Regimen
from scheduling.catalog.schemas import (
    InductionIn,
    MaintenanceIn,
    RegimenCreate,
    RegimenUpdate,
    check_regimen,
)

Phases = tuple[InductionIn | None, MaintenanceIn | None]


async def list_regimens(
    session: AsyncSession, limit: int, cursor: str | None
) -> tuple[list[Regimen], str | None]:
    query = select(Regimen)
    return await page(session, query, [Regimen.diagnosis_code, Regimen.id], limit, cursor)


async def find(session: AsyncSession, diagnosis_code: str) -> Regimen | None:
    found: Regimen | None = await session.scalar(
        select(Regimen).where(Regimen.diagnosis_code == diagnosis_code)
    )
    return found


async def get_regimen(session: AsyncSession, regimen_id: uuid.UUID) -> Regimen:
    return await get_or_404(session, Regimen, regimen_id, "regimen")


def phases(regimen: Regimen | None) -> Phases:
    """The regimen's phases as an order would state them; none without a regimen."""
    if regimen is None:
        return None, None
    induction = maintenance = None
    if regimen.induction_days and regimen.induction_total_g_per_kg is not None:
        induction = InductionIn(
            total_dose_g_per_kg=regimen.induction_total_g_per_kg,
            days=regimen.induction_days,
            skip_closures=regimen.induction_skips_closures,
        )
    if (
        regimen.interval_days
        and regimen.maintenance_g_per_kg is not None
        and regimen.window_min_days
        and regimen.window_max_days
    ):
        maintenance = MaintenanceIn(
            dose_g_per_kg=regimen.maintenance_g_per_kg,
            interval_days=regimen.interval_days,
            window_min_days=regimen.window_min_days,
            window_max_days=regimen.window_max_days,
            cycles=regimen.cycles,
        )
    return induction, maintenance


def _apply(regimen: Regimen, induction: InductionIn | None, maint: MaintenanceIn | None) -> None:
    regimen.induction_total_g_per_kg = induction.total_dose_g_per_kg if induction else None
    regimen.induction_days = induction.days if induction else None
    regimen.induction_skips_closures = induction.skip_closures if induction else False
    regimen.maintenance_g_per_kg = maint.dose_g_per_kg if maint else None
    regimen.interval_days = maint.interval_days if maint else None
    regimen.window_min_days = maint.window_min_days if maint else None
    regimen.window_max_days = maint.window_max_days if maint else None
    regimen.cycles = maint.cycles if maint else None


async def create_regimen(session: AsyncSession, data: RegimenCreate) -> Regimen:
    if await find(session, data.diagnosis_code) is not None:
        raise Duplicate("diagnosis_code: a regimen for that diagnosis already exists")
    regimen = Regimen(id=uuid.uuid4(), diagnosis_code=data.diagnosis_code, name=data.name)
    _apply(regimen, data.induction, data.maintenance)
    session.add(regimen)
    try:
        await session.flush()
    except IntegrityError as exc:  # created by someone else meanwhile
        raise Duplicate("diagnosis_code: a regimen for that diagnosis already exists") from exc
    return regimen


async def update_regimen(session: AsyncSession, regimen: Regimen, data: RegimenUpdate) -> Regimen:
    """Applies to orders from now on; courses already ordered keep their own regimen."""
    induction, maintenance = phases(regimen)
    if "induction" in data.model_fields_set:
        induction = data.induction
    if "maintenance" in data.model_fields_set:
        maintenance = data.maintenance
    try:
        check_regimen(induction, maintenance)
    except ValueError as exc:
        raise Invalid(str(exc)) from exc
    if data.name is not None:
        regimen.name = data.name
    _apply(regimen, induction, maintenance)
    await session.flush()
    return regimen
