"""Drug orders: vials of one size of a product ordered from the supplier for a center, expected
on a local day. An order is placed `ordered`; it is received (the lot it arrived as goes into
the stock through `pharmacy.service.receive_lot`, in the same transaction, and the order names
it) or cancelled, and either is final. Until then it is stock on order: `on_order` hands it to
the drug forecast and the shortfall check as a `pharmacy.demand.Lot` usable from the day it is
expected. Flushes; never commits."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from typing import Literal

from pydantic import Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core import settle
from core.clock import utcnow
from core.pagination import page
from core.problems import IllegalTransition, Invalid, NotFound
from core.repository import get_or_404
from core.schemas import Input, LocalDate, Text
from pharmacy import rules
from pharmacy import service as pharmacy
from pharmacy.demand import Lot
from pharmacy.models import DrugLot, DrugOrder
from pharmacy.schemas import LotNumber, LotReceive, Storage
from scheduling.catalog.models import Product

OrderStatus = Literal["ordered", "received", "cancelled"]


class OrderPlace(Input):
    """Vials of one size of a product ordered for a center."""

    center_id: uuid.UUID
    product_id: uuid.UUID
    vial_size_g: float = Field(gt=0, le=1000, description="one of the product's vial sizes")
    vials: int = Field(ge=1, le=100_000)
    expected_on: LocalDate = Field(description="the local day the supplier will deliver")
    note: Text | None = Field(default=None, description="the supplier's reference, say")


class OrderReceive(Input):
    """The lot an order arrived as: its label, and where it is kept."""

    lot_number: LotNumber
    expires_on: LocalDate = Field(description="the expiry on the label")
    storage: Storage = "refrigerated"
    location: Text | None = Field(default=None, description="where it is kept: fridge, shelf")
    vials: int | None = Field(default=None, ge=1, le=100_000, description="default: as ordered")
    vial_size_g: float | None = Field(
        default=None, gt=0, le=1000, description="default: as ordered; one of the product's"
    )


# --- reading ---------------------------------------------------------------------------------


async def get_order(session: AsyncSession, order_id: uuid.UUID) -> DrugOrder:
    return await get_or_404(session, DrugOrder, order_id, "drug order")


@dataclass(frozen=True)
class OrderFilter:
    center_id: uuid.UUID | None = None
    product_id: uuid.UUID | None = None
    status: OrderStatus | None = None


async def list_orders(
    session: AsyncSession, which: OrderFilter, limit: int, cursor: str | None
) -> tuple[list[DrugOrder], str | None]:
    """Orders by the day they are expected (the soonest first)."""
    query = select(DrugOrder)
    if which.center_id is not None:
        query = query.where(DrugOrder.center_id == which.center_id)
    if which.product_id is not None:
        query = query.where(DrugOrder.product_id == which.product_id)
    if which.status is not None:
        query = query.where(DrugOrder.status == which.status)
    return await page(session, query, [DrugOrder.expected_on, DrugOrder.id], limit, cursor)


def fresh_until(expected_on: date, shelf_months: int | None) -> date:
    """The expiry an order is assumed to arrive with: fresh, the product's refrigerated shelf
    life from the day it is expected; a product without one, no expiry any forecast reaches."""
    return date.max if shelf_months is None else rules.add_months(expected_on, shelf_months)


async def on_order(
    session: AsyncSession, center_id: uuid.UUID, through: date | None = None
) -> list[Lot]:
    """The center's open orders (`ordered`) expected from today to `through` (default: any
    day), as stock usable from the day each is expected to its assumed expiry
    (`fresh_until`). An order past its day and not yet received does not count: a late
    delivery must show as the shortfall it may become, so the pharmacy chases it."""
    query = (
        select(
            DrugOrder.id,
            DrugOrder.product_id,
            DrugOrder.vial_size_g,
            DrugOrder.vials,
            DrugOrder.expected_on,
            Product.refrigerated_shelf_months,
        )
        .join(Product, Product.id == DrugOrder.product_id)
        .where(
            DrugOrder.center_id == center_id,
            DrugOrder.status == "ordered",
            DrugOrder.expected_on >= await pharmacy.center_today(session, center_id),
        )
        .order_by(DrugOrder.expected_on, DrugOrder.id)
    )
    if through is not None:
        query = query.where(DrugOrder.expected_on <= through)
    return [
        Lot(
            product_id,
            float(size),
            vials,
            fresh_until(expected_on, months),
            f"order {order_id}",
            available_from=expected_on,
        )
        for order_id, product_id, size, vials, expected_on, months in await session.execute(query)
    ]


# --- placing, cancelling, receiving ----------------------------------------------------------


@settle.use_case
async def place_order(session: AsyncSession, data: OrderPlace) -> DrugOrder:
    """An order of one of the product's vial sizes, expected today or later at the center."""
    product = await session.get(Product, data.product_id)
    if product is None:
        raise Invalid("product_id: no such product")
    try:
        on = await pharmacy.center_today(session, data.center_id)
    except NotFound as exc:
        raise Invalid("center_id: no such center") from exc
    size = pharmacy.catalog_size(product, data.vial_size_g)  # as a lot's: 422 otherwise
    if data.expected_on < on:
        raise Invalid("expected_on: the day has passed at the center")
    order = DrugOrder(
        id=uuid.uuid4(),
        center_id=data.center_id,
        product_id=product.id,
        vial_size_g=size,
        vials=data.vials,
        expected_on=data.expected_on,
        status="ordered",
        ordered_at=utcnow(),
        note=data.note,
    )
    session.add(order)
    await session.flush()
    return order


async def _open_order(session: AsyncSession, order_id: uuid.UUID, doing: str) -> DrugOrder:
    """The order's row, locked: two receipts of one order queue up, and the second finds it
    received (409)."""
    order = await session.get(DrugOrder, order_id, with_for_update=True, populate_existing=True)
    if order is None:
        raise NotFound("no such drug order")
    if order.status != "ordered":
        raise IllegalTransition(f"cannot {doing} an order that is {order.status}")
    return order


@settle.use_case
async def cancel_order(session: AsyncSession, order_id: uuid.UUID) -> DrugOrder:
    """Call an order off: it no longer counts as stock on order. Final."""
    order = await _open_order(session, order_id, "cancel")
    order.status = "cancelled"
    await session.flush()
    return order


@settle.use_case
async def receive_order(
    session: AsyncSession, order_id: uuid.UUID, data: OrderReceive
) -> tuple[DrugOrder, DrugLot]:
    """The order has arrived: its lot goes into the center's stock (`receive_lot`, with the
    order's vial size and count unless told otherwise) and the order names it. Final."""
    order = await _open_order(session, order_id, "receive")
    lot = await pharmacy.receive_lot(
        session,
        LotReceive(
            center_id=order.center_id,
            product_id=order.product_id,
            lot_number=data.lot_number,
            vial_size_g=(
                float(order.vial_size_g) if data.vial_size_g is None else data.vial_size_g
            ),
            vials=order.vials if data.vials is None else data.vials,
            expires_on=data.expires_on,
            storage=data.storage,
            location=data.location,
        ),
    )
    order.status, order.received_lot_id = "received", lot.id
    await session.flush()
    return order, lot
