"""The pharmacy's use cases: receive a lot, move it to room temperature, quarantine or recall
it, and draw the vials a visit used. Flushes; never commits."""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core import locks, settle
from core.clock import today, utcnow
from core.pagination import page
from core.problems import Conflict, Duplicate, Invalid, NotFound, ensure_version
from core.repository import get_or_404
from patients.models import Patient
from pharmacy import rules
from pharmacy.models import DrugLot, LotUse
from pharmacy.schemas import LotReceive, LotStatus, LotUpdate
from scheduling.appointments.models import Appointment
from scheduling.catalog.models import Product
from scheduling.centers import repository as center_repository
from scheduling.courses.models import Course
from scheduling.courses.schemas import VialsUsed
from scheduling.localtime import zone

# The order of rules.fefo (first expiry first out, then lot number), in SQL.
FEFO = [DrugLot.expires_on, DrugLot.lot_number, DrugLot.id]


def facts(lot: DrugLot) -> rules.LotFacts:
    return rules.LotFacts(
        lot_number=lot.lot_number,
        expires_on=lot.expires_on,
        status=lot.status,
        vials_on_hand=lot.vials_on_hand,
        storage=lot.storage,
    )


async def center_today(session: AsyncSession, center_id: uuid.UUID) -> date:
    """Today at the center: the day a lot's expiry is held against."""
    return today(zone(await center_repository.timezone_of(session, center_id)))


# --- reading ---------------------------------------------------------------------------------


async def get_lot(session: AsyncSession, lot_id: uuid.UUID) -> DrugLot:
    return await get_or_404(session, DrugLot, lot_id, "drug lot")


@dataclass(frozen=True)
class LotFilter:
    center_id: uuid.UUID | None = None
    product_id: uuid.UUID | None = None
    status: LotStatus | None = None
    usable_on: date | None = None


def _usable_on(query: Select[Any], on: date) -> Select[Any]:
    """The query's lots usable on `on` (rules.usable, in SQL)."""
    return query.where(
        DrugLot.status == "available", DrugLot.expires_on >= on, DrugLot.vials_on_hand > 0
    )


async def list_lots(
    session: AsyncSession, which: LotFilter, limit: int, cursor: str | None
) -> tuple[list[DrugLot], str | None]:
    """Lots first expiry first out."""
    query = select(DrugLot)
    if which.center_id is not None:
        query = query.where(DrugLot.center_id == which.center_id)
    if which.product_id is not None:
        query = query.where(DrugLot.product_id == which.product_id)
    if which.status is not None:
        query = query.where(DrugLot.status == which.status)
    if which.usable_on is not None:
        query = _usable_on(query, which.usable_on)
    return await page(session, query, list(FEFO), limit, cursor)


async def usable_lots(
    session: AsyncSession, center_id: uuid.UUID, product_id: uuid.UUID, on: date
) -> list[DrugLot]:
    """The lots of a product at a center usable on `on`, the one to use first first."""
    query = select(DrugLot).where(DrugLot.center_id == center_id, DrugLot.product_id == product_id)
    return list(await session.scalars(_usable_on(query, on).order_by(*FEFO)))


async def administrations(
    session: AsyncSession, lot_id: uuid.UUID, limit: int, cursor: str | None
) -> tuple[list[tuple[LotUse, Appointment, Patient]], str | None]:
    """Every visit that received vials of the lot, in the order they were recorded: whom a
    recall must reach."""
    lot = await get_lot(session, lot_id)
    uses: list[LotUse]
    uses, nxt = await page(
        session,
        select(LotUse).where(LotUse.lot_id == lot.id),
        [LotUse.recorded_at, LotUse.id],
        limit,
        cursor,
    )
    visits = {
        a.id: (a, p)
        for a, p in await session.execute(
            select(Appointment, Patient)
            .join(Patient, Appointment.patient_id == Patient.id)
            .where(Appointment.id.in_([u.appointment_id for u in uses]))
        )
    }
    return [(u, *visits[u.appointment_id]) for u in uses], nxt


# --- receiving and changing a lot -------------------------------------------------------------


def catalog_size(product: Product, size_g: float) -> Decimal:
    """The product's vial size `size_g` names, as stored (422 when it comes in no such vial)."""
    for size in product.vial_sizes_g:
        if math.isclose(float(size), size_g, abs_tol=1e-6):
            return Decimal(str(size)).quantize(Decimal("0.01"))
    sizes = ", ".join(f"{float(s):g}" for s in product.vial_sizes_g)
    raise Invalid(f"vial_size_g: {product.name} comes in {sizes} g vials")


@settle.use_case
async def receive_lot(session: AsyncSession, data: LotReceive) -> DrugLot:
    """Vials of one lot and size into a center's stock. A lot received at room temperature
    takes the room-temperature expiry from today, as one moved out of the fridge does."""
    product = await session.get(Product, data.product_id)
    if product is None:
        raise Invalid("product_id: no such product")
    try:
        on = await center_today(session, data.center_id)
    except NotFound as exc:
        raise Invalid("center_id: no such center") from exc
    size = catalog_size(product, data.vial_size_g)
    if data.expires_on < on:
        raise Invalid("expires_on: the lot has already expired")
    expires_on, since = data.expires_on, None
    if data.storage == "room_temperature":
        expires_on = rules.room_temperature_expiry(
            data.expires_on, on, product.room_temperature_months
        )
        since = utcnow()
    lot = DrugLot(
        id=uuid.uuid4(),
        center_id=data.center_id,
        product_id=product.id,
        lot_number=data.lot_number,
        vial_size_g=size,
        vials_received=data.vials,
        vials_on_hand=data.vials,
        expires_on=expires_on,
        storage=data.storage,
        room_temperature_since=since,
        status="available",
        location=data.location,
        received_at=utcnow(),
    )
    session.add(lot)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        if "lot_number" not in str(exc.orig):
            raise
        raise Duplicate(
            "lot_number: this lot of this vial size is already in the center's stock"
        ) from exc
    return lot


@settle.use_case
async def update_lot(
    session: AsyncSession, lot_id: uuid.UUID, version: int, data: LotUpdate
) -> DrugLot:
    """Move a lot to room temperature (its expiry shortens, never lengthens; it never goes
    back), quarantine, release or recall it (a recall is final), or say where it is kept."""
    found = await locks.drug_lots(session, DrugLot, [lot_id])
    if not found:
        raise NotFound("no such drug lot")
    lot = found[0]
    ensure_version(lot.version, version, "drug lot")
    if data.storage is not None and rules.check_storage_change(lot.storage, data.storage):
        product = await session.get(Product, lot.product_id)
        assert product is not None  # a foreign key
        on = await center_today(session, lot.center_id)
        lot.expires_on = rules.room_temperature_expiry(
            lot.expires_on, on, product.room_temperature_months
        )
        lot.storage, lot.room_temperature_since = data.storage, utcnow()
    if data.status is not None and rules.check_status_change(lot.status, data.status):
        lot.status = data.status
    if "location" in data.model_fields_set:
        lot.location = data.location
    await session.flush()
    return lot


# --- drawing what a visit used ----------------------------------------------------------------


def _merged(uses: Sequence[VialsUsed]) -> dict[uuid.UUID, int]:
    vials: dict[uuid.UUID, int] = {}
    for use in uses:
        vials[use.lot_id] = vials.get(use.lot_id, 0) + use.vials
    return vials


@settle.use_case
async def record_vials_used(
    session: AsyncSession,
    appt: Appointment,
    uses: Sequence[VialsUsed],
    actor_id: uuid.UUID | None,
) -> list[LotUse]:
    """Draw the vials a completed visit used from its center's stock and keep, per lot, who
    received them. A lot of another center or product, one not usable today, or one with
    fewer vials on hand is refused (409), and nothing is drawn."""
    if appt.status != "completed":
        raise Invalid("vials_used: only completing a session records the vials used")
    wanted = _merged(uses)
    lots = {lot.id: lot for lot in await locks.drug_lots(session, DrugLot, wanted)}
    if missing := set(wanted) - set(lots):
        raise Invalid(f"vials_used: no such drug lot ({len(missing)} of {len(wanted)})")
    product_id = None
    if appt.course_id is not None:
        product_id = await session.scalar(
            select(Course.product_id).where(Course.id == appt.course_id)
        )
    on = await center_today(session, appt.center_id)
    recorded = []
    for lot_id, vials in sorted(wanted.items(), key=lambda item: str(item[0])):
        lot = lots[lot_id]
        if lot.center_id != appt.center_id:
            raise Conflict(f"lot {lot.lot_number} is at another center")
        if product_id is not None and lot.product_id != product_id:
            raise Conflict(f"lot {lot.lot_number} is of another product than the course's")
        lot.vials_on_hand = rules.draw(facts(lot), vials, on)
        use = LotUse(
            id=uuid.uuid4(),
            lot_id=lot.id,
            appointment_id=appt.id,
            vials=vials,
            recorded_by=actor_id,
            recorded_at=utcnow(),
        )
        session.add(use)
        recorded.append(use)
    await session.flush()
    return recorded
