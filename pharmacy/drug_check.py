"""The pharmacy's shortfall alerts: one `drug_shortfall` alert per booked course session whose
dose the stock will not cover on its day (`pharmacy.shortfall`), over a center's booking
horizon; brought up to date while it stays short, resolved once it is not (stock received or
on order in time, the session moved, cancelled or given). Also the reads the shortage plan and
the drug forecast share. Flushes; never commits."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.clock import today, utcnow
from core.outbox import events
from insurance.facts import LIVE
from insurance.models import Alert
from pharmacy import orders, shortfall
from pharmacy.demand import Catalog, Lot
from pharmacy.models import DrugLot
from scheduling.appointments.models import ACTIVE_STATUSES, Appointment
from scheduling.catalog.models import Product
from scheduling.centers.models import Center
from scheduling.courses.models import Course
from scheduling.localtime import local_date, zone

KIND = "drug_shortfall"


@dataclass(frozen=True)
class Row:
    """A booked course session at the center, with what the alerts and the plan need."""

    appointment_id: uuid.UUID
    patient_id: uuid.UUID
    course_id: uuid.UUID
    start: datetime
    day: date
    product_id: uuid.UUID
    dose_g: float
    diagnosis_code: str
    phase: str
    tolerance_pct: float | None

    def booked(self) -> shortfall.Booked:
        return shortfall.Booked(
            self.appointment_id, self.day, self.start, self.product_id, self.dose_g
        )


@dataclass(frozen=True)
class ProductRow:
    name: str
    catalog: Catalog
    hcpcs_code: str
    active: bool
    order_lead_days: int | None


async def booked_rows(
    session: AsyncSession, center_id: uuid.UUID, tz_name: str, first: date, last: date
) -> list[Row]:
    """The center's course sessions booked, checked in or infusing, of active courses, on the
    local days `first` to `last` inclusive: what the stock must give (as the forecast counts)."""
    tz = zone(tz_name)
    since = datetime.combine(first, time(0), tzinfo=tz).astimezone(UTC)
    before = datetime.combine(last + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
    rows = await session.execute(
        select(
            Appointment.id,
            Appointment.patient_id,
            Appointment.course_id,
            Appointment.start_at,
            Appointment.dose_g,
            Appointment.phase,
            Course.product_id,
            Course.diagnosis_code,
            Course.vial_tolerance_pct,
        )
        .join(Course, Course.id == Appointment.course_id)
        .where(
            Appointment.center_id == center_id,
            Appointment.start_at >= since,
            Appointment.start_at < before,
            Appointment.status.in_(ACTIVE_STATUSES),
            Appointment.dose_g > 0,
            Course.status == "active",
        )
    )
    return [
        Row(
            r.id,
            r.patient_id,
            r.course_id,
            r.start_at,
            local_date(r.start_at, tz),
            r.product_id,
            float(r.dose_g),
            r.diagnosis_code,
            r.phase or "maintenance",
            None if r.vial_tolerance_pct is None else float(r.vial_tolerance_pct),
        )
        for r in rows
        if r.dose_g is not None and r.course_id is not None  # the query leaves none out
    ]


async def lots_at(
    session: AsyncSession, center_id: uuid.UUID, on: date, through: date | None = None
) -> list[Lot]:
    """Every product's stock at the center from `on`: its lots usable then (available, with a
    vial on hand), and what is on order, expected by `through` (`pharmacy.orders.on_order`:
    usable from the day it is expected)."""
    on_hand = [
        Lot(product_id, float(size), vials, expires_on, number)
        for product_id, size, vials, expires_on, number in await session.execute(
            select(
                DrugLot.product_id,
                DrugLot.vial_size_g,
                DrugLot.vials_on_hand,
                DrugLot.expires_on,
                DrugLot.lot_number,
            ).where(
                DrugLot.center_id == center_id,
                DrugLot.status == "available",
                DrugLot.vials_on_hand > 0,
                DrugLot.expires_on >= on,
            )
        )
    ]
    return on_hand + await orders.on_order(session, center_id, through)


async def products(session: AsyncSession) -> dict[uuid.UUID, ProductRow]:
    """The catalog, every product (a handful of rows)."""
    return {
        p.id: ProductRow(
            p.name,
            Catalog(tuple(float(v) for v in p.vial_sizes_g), p.billing_unit_mg),
            p.hcpcs_code,
            p.active,
            p.order_lead_days,
        )
        for p in await session.scalars(select(Product))
    }


@dataclass
class Outcome:
    """What one center's check did."""

    short: int = 0
    opened: int = 0
    updated: int = 0
    resolved: int = 0


async def check_center(session: AsyncSession, center: Center) -> Outcome:
    """Open, update and resolve the center's shortfall alerts over its booking horizon. Run
    again with nothing changed, it changes nothing."""
    outcome = Outcome()
    on = today(zone(center.timezone))
    last = on + timedelta(days=center.booking_horizon_days)
    rows = await booked_rows(session, center.id, center.timezone, on, last)
    by_id = {r.appointment_id: r for r in rows}
    catalog = await products(session) if rows else {}
    short = shortfall.uncovered(
        [r.booked() for r in rows],
        await lots_at(session, center.id, on, last) if rows else [],
        {pid: p.catalog for pid, p in catalog.items()},
    )
    live = {
        a.subject_id: a
        for a in await session.scalars(
            select(Alert)
            .join(Appointment, Appointment.id == Alert.subject_id)
            .where(Alert.kind == KIND, Alert.status.in_(LIVE), Appointment.center_id == center.id)
        )
    }
    outcome.short += len(short)
    for s in short:
        row, product = by_id[s.appointment_id], catalog[s.product_id]
        lead = product.order_lead_days
        wanted = (
            shortfall.severity(s.day, on, lead),
            shortfall.due_date(s.day, on, lead),
            shortfall.describe(s, product.name),
        )
        alert = live.pop(s.appointment_id, None)
        if alert is None:
            await _open(session, row, *wanted)
            outcome.opened += 1
        elif (alert.severity, alert.due_date, alert.detail) != wanted:
            alert.severity, alert.due_date, alert.detail = wanted
            outcome.updated += 1
    for alert in live.values():  # no longer short: received, moved, cancelled, given
        alert.status, alert.resolved_at, alert.resolution = "resolved", utcnow(), "cleared"
        outcome.resolved += 1
    await session.flush()
    return outcome


async def _open(session: AsyncSession, row: Row, severity: str, due: date, detail: str) -> None:
    alert = Alert(
        id=uuid.uuid4(),
        kind=KIND,
        subject_id=row.appointment_id,
        status="open",
        severity=severity,
        due_date=due,
        patient_id=row.patient_id,
        appointment_id=row.appointment_id,
        course_id=row.course_id,
        detail=detail,
    )
    session.add(alert)
    await session.flush()
    await events.emit(
        session,
        "alert.opened",
        alert_id=alert.id,
        kind=alert.kind,
        patient_id=alert.patient_id,
        appointment_id=alert.appointment_id,
        course_id=alert.course_id,
        due_date=alert.due_date,
    )
