"""Drug stock by lot at each center, and who received a lot (for a recall)."""

from __future__ import annotations

import uuid
from typing import cast

from fastapi import APIRouter, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.deps import (
    DEFAULT_PAGE,
    Allowed,
    Audited,
    Cursor,
    IfMatch,
    Limit,
    Session,
    etag,
)
from core.schemas import LocalDate, Page
from pharmacy import service as pharmacy
from pharmacy.models import DrugLot
from pharmacy.schemas import (
    AdministrationOut,
    LotOut,
    LotReceive,
    LotStatus,
    LotUpdate,
    Storage,
)
from scheduling.centers import repository as center_repository
from scheduling.localtime import zone

router = APIRouter(prefix="/api/v1", tags=["inventory"])


def lot_out(lot: DrugLot, tz_name: str) -> LotOut:
    tz = zone(tz_name)
    since = lot.room_temperature_since
    return LotOut(
        id=lot.id,
        center_id=lot.center_id,
        product_id=lot.product_id,
        lot_number=lot.lot_number,
        vial_size_g=float(lot.vial_size_g),
        vials_received=lot.vials_received,
        vials_on_hand=lot.vials_on_hand,
        expires_on=lot.expires_on,
        storage=cast(Storage, lot.storage),  # the column's checks hold these to the literals
        room_temperature_since=since.astimezone(tz) if since is not None else None,
        status=cast(LotStatus, lot.status),
        location=lot.location,
        received_at=lot.received_at.astimezone(tz),
        version=lot.version,
    )


async def _timezones(session: AsyncSession, center_ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    return {c: await center_repository.timezone_of(session, c) for c in sorted(center_ids, key=str)}


@router.get("/inventory/lots", response_model=Page[LotOut])
async def list_lots(
    session: Session,
    _: Allowed,
    center_id: uuid.UUID | None = None,
    product_id: uuid.UUID | None = None,
    status: LotStatus | None = None,
    usable_on: LocalDate | None = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
) -> Page[LotOut]:
    """Lots first expiry first out (by expiry, then lot number). `usable_on`: only the lots
    that may be used that day (available, not expired, a vial left)."""
    which = pharmacy.LotFilter(center_id, product_id, status, usable_on)
    lots, nxt = await pharmacy.list_lots(session, which, limit, cursor)
    zones = await _timezones(session, {lot.center_id for lot in lots})
    return Page[LotOut](items=[lot_out(lot, zones[lot.center_id]) for lot in lots], next_cursor=nxt)


@router.post("/inventory/lots", status_code=status.HTTP_201_CREATED, response_model=LotOut)
async def receive_lot(data: LotReceive, session: Session, _: Allowed, response: Response) -> LotOut:
    """Vials of one lot received at a center; the vial size must be one of the product's."""
    lot = await pharmacy.receive_lot(session, data)
    response.headers["Location"] = f"/api/v1/inventory/lots/{lot.id}"
    response.headers["ETag"] = etag(lot.version)
    return lot_out(lot, await center_repository.timezone_of(session, lot.center_id))


@router.get("/inventory/lots/{lot_id}", response_model=LotOut)
async def get_lot(lot_id: uuid.UUID, session: Session, _: Allowed, response: Response) -> LotOut:
    """One lot of a drug at a center, with its ETag for a later change."""
    lot = await pharmacy.get_lot(session, lot_id)
    response.headers["ETag"] = etag(lot.version)
    return lot_out(lot, await center_repository.timezone_of(session, lot.center_id))


@router.patch("/inventory/lots/{lot_id}", response_model=LotOut)
async def update_lot(
    lot_id: uuid.UUID,
    data: LotUpdate,
    version: IfMatch,
    session: Session,
    _: Allowed,
    response: Response,
) -> LotOut:
    """Move to room temperature (never back), quarantine, release or recall (final), or say
    where the lot is kept."""
    lot = await pharmacy.update_lot(session, lot_id, version, data)
    response.headers["ETag"] = etag(lot.version)
    return lot_out(lot, await center_repository.timezone_of(session, lot.center_id))


@router.get("/inventory/lots/{lot_id}/administrations", response_model=Page[AdministrationOut])
async def lot_administrations(
    lot_id: uuid.UUID,
    session: Session,
    _: Allowed,
    trail: Audited,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
) -> Page[AdministrationOut]:
    """Who received the lot: every visit it was given at, with its patient, for a recall."""
    trail.saw(None, lot_id)
    lot = await pharmacy.get_lot(session, lot_id)
    tz = zone(await center_repository.timezone_of(session, lot.center_id))
    given, nxt = await pharmacy.administrations(session, lot.id, limit, cursor)
    return Page[AdministrationOut](
        items=[
            AdministrationOut(
                patient_id=appt.patient_id,
                patient_name=f"{patient.family_name}, {patient.given_name}",
                mrn=patient.mrn,
                appointment_id=appt.id,
                start=appt.start_at.astimezone(tz),
                vials=use.vials,
                recorded_at=use.recorded_at.astimezone(tz),
                recorded_by=use.recorded_by,
            )
            for use, appt, patient in given
        ],
        next_cursor=nxt,
    )
