"""Drug orders: stock on order for a center, until it is received as a lot or cancelled."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import cast

from fastapi import APIRouter, Response, status

from app.api.deps import DEFAULT_PAGE, Allowed, Cursor, Limit, Session, etag
from app.api.inventory import lot_out
from core.schemas import Output, Page
from pharmacy import orders
from pharmacy.models import DrugOrder
from pharmacy.schemas import LotOut
from scheduling.centers import repository as center_repository
from scheduling.localtime import zone

router = APIRouter(prefix="/api/v1", tags=["inventory"])


class OrderOut(Output):
    id: uuid.UUID
    center_id: uuid.UUID
    product_id: uuid.UUID
    vial_size_g: float
    vials: int
    expected_on: dt.date
    status: orders.OrderStatus
    ordered_at: dt.datetime
    received_lot_id: uuid.UUID | None
    note: str | None
    version: int


class ReceivedOrderOut(OrderOut):
    lot: LotOut


def order_out(order: DrugOrder, tz_name: str) -> OrderOut:
    return OrderOut(
        id=order.id,
        center_id=order.center_id,
        product_id=order.product_id,
        vial_size_g=float(order.vial_size_g),
        vials=order.vials,
        expected_on=order.expected_on,
        status=cast(orders.OrderStatus, order.status),  # the column's check holds it to these
        ordered_at=order.ordered_at.astimezone(zone(tz_name)),
        received_lot_id=order.received_lot_id,
        note=order.note,
        version=order.version,
    )


async def _reply(session: Session, order: DrugOrder, response: Response) -> OrderOut:
    response.headers["ETag"] = etag(order.version)
    return order_out(order, await center_repository.timezone_of(session, order.center_id))


@router.get("/inventory/orders", response_model=Page[OrderOut])
async def list_orders(
    session: Session,
    _: Allowed,
    center_id: uuid.UUID | None = None,
    product_id: uuid.UUID | None = None,
    status: orders.OrderStatus | None = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
) -> Page[OrderOut]:
    """Orders by the day they are expected, the soonest first."""
    which = orders.OrderFilter(center_id, product_id, status)
    found, nxt = await orders.list_orders(session, which, limit, cursor)
    zones = {
        c: await center_repository.timezone_of(session, c)
        for c in sorted({o.center_id for o in found}, key=str)
    }
    return Page[OrderOut](items=[order_out(o, zones[o.center_id]) for o in found], next_cursor=nxt)


@router.post("/inventory/orders", status_code=status.HTTP_201_CREATED, response_model=OrderOut)
async def place_order(
    data: orders.OrderPlace, session: Session, _: Allowed, response: Response
) -> OrderOut:
    """Vials ordered for a center, expected on a day: stock on order from that day until it is
    received or cancelled. The vial size must be one of the product's."""
    order = await orders.place_order(session, data)
    response.headers["Location"] = f"/api/v1/inventory/orders/{order.id}"
    return await _reply(session, order, response)


@router.get("/inventory/orders/{order_id}", response_model=OrderOut)
async def get_order(
    order_id: uuid.UUID, session: Session, _: Allowed, response: Response
) -> OrderOut:
    """One order from a supplier, with its lines and its ETag."""
    return await _reply(session, await orders.get_order(session, order_id), response)


@router.post("/inventory/orders/{order_id}/receive", response_model=ReceivedOrderOut)
async def receive_order(
    order_id: uuid.UUID,
    data: orders.OrderReceive,
    session: Session,
    _: Allowed,
    response: Response,
) -> ReceivedOrderOut:
    """The order arrived: its lot goes into the center's stock (the order's vial size and count
    unless sent) and the order names it. 409 once received or cancelled."""
    order, lot = await orders.receive_order(session, order_id, data)
    tz_name = await center_repository.timezone_of(session, order.center_id)
    response.headers["ETag"] = etag(order.version)
    return ReceivedOrderOut(**order_out(order, tz_name).model_dump(), lot=lot_out(lot, tz_name))


@router.post("/inventory/orders/{order_id}/cancel", response_model=OrderOut)
async def cancel_order(
    order_id: uuid.UUID, session: Session, _: Allowed, response: Response
) -> OrderOut:
    """Call the order off: it no longer counts as stock on order. 409 once received or
    cancelled."""
    return await _reply(session, await orders.cancel_order(session, order_id), response)
