"""A patient's cover as plain values, read in a few set-based queries, and what the pure
rules make of it. Reads only."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Select,
    func,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from core import clock
from insurance import alert_rules, rules
from insurance.models import (
    Authorization,
    Coverage,
    Payer,
    SessionDraw,
)
from scheduling.appointments.models import ACTIVE_STATUSES, Appointment
from scheduling.catalog.models import Product
from scheduling.centers.models import Center
from scheduling.courses.models import Course, SessionRecord
from scheduling.localtime import zone

LIVE = ("open", "acknowledged")
# A session given without cover that billing has dealt with by hand (resolved its alert).
WRITTEN_OFF = "written_off"
# Alerts this module owns; `course_unbookable` belongs to the course booking run.
COVERAGE_KINDS = (
    "auth_expiring",
    "auth_units_low",
    "session_uncovered",
    "auth_denied_with_bookings",
    "coverage_ended",
)


@dataclass
class Facts:
    """Everything about one patient's cover, as plain values."""

    today: date
    sessions: list[tuple[rules.Need, Decimal | None]] = field(default_factory=list)
    auths: list[alert_rules.Auth] = field(default_factory=list)
    coverages: list[alert_rules.CoverageTerm] = field(default_factory=list)
    plans: list[alert_rules.CoursePace] = field(default_factory=list)
    # Sessions already given that no authorization paid for: the real unpaid bills.
    unpaid: list[tuple[rules.Need, Decimal | None, str]] = field(default_factory=list)


def _local_day(conn: AsyncConnection) -> ColumnElement[Any]:
    """A session's local date. PostgreSQL works it out itself, sparing the sweep a Python
    time-zone conversion per row; elsewhere the start instant comes back to be converted."""
    if conn.dialect.name == "postgresql":
        return func.date(func.timezone(Center.timezone, Appointment.start_at))
    return Appointment.__table__.c.start_at


async def _load_plans(
    conn: AsyncConnection,
    mine: Callable[[Any], ColumnElement[bool]],
    of: Callable[[uuid.UUID, str | None], Facts],
) -> None:
    """Each patient's active courses and how many sessions they have left (for the alerts)."""
    # `cycles` counts maintenance sessions only (as the booking run does): an induction's days
    # would otherwise make a course look nearer its end than it is.
    planned = (
        select(func.count())
        .where(
            Appointment.course_id == Course.id,
            Appointment.phase == "maintenance",
            Appointment.status.in_((*ACTIVE_STATUSES, "completed")),
        )
        .scalar_subquery()
    )
    plans = await conn.execute(
        select(
            Course.patient_id,
            Course.id,
            Course.interval_days,
            Course.cycles,
            Course.end_date,
            planned,
            Product.hcpcs_code,
            Center.timezone,
        )
        .join(Product, Product.id == Course.product_id)
        .join(Center, Center.id == Course.center_id)
        .where(mine(Course.patient_id), Course.status.in_(("active", "on_hold")))
        .order_by(Course.start_date, Course.id)  # the same course sets the pace every time
    )
    for patient_id, course_id, interval, cycles, ends_on, count, hcpcs, tz_name in plans:
        left = max(cycles - count, 0) if cycles is not None else None
        of(patient_id, tz_name).plans.append(
            alert_rules.CoursePace(course_id, hcpcs, interval, left, ends_on)
        )


async def load(
    session: AsyncSession,
    patient_ids: Sequence[uuid.UUID],
    span: tuple[uuid.UUID, uuid.UUID] | None = None,
    *,
    cover_only: bool = False,
) -> dict[uuid.UUID, Facts]:
    """The facts for these patients, in five queries whatever their number. `span` (the
    sweep's) reads every patient whose id lies in it instead: index range scans, no id list.
    `cover_only`: just what allocating the booked sessions needs (the sessions and the
    authorizations, two queries), for a screen that shows cover and raises no alert."""
    ids = list(patient_ids)
    facts: dict[uuid.UUID, Facts] = {}
    # Plain rows straight from the connection: the ORM's result machinery cost more than the
    # database did for the sweep's hundreds of thousands of rows. What the session holds
    # unwritten is written first, as its autoflush would have.
    await session.flush()
    conn = await session.connection()

    def mine(column: Any) -> ColumnElement[bool]:
        chosen: ColumnElement[bool] = column.between(*span) if span is not None else column.in_(ids)
        return chosen

    def of(patient_id: uuid.UUID, tz_name: str | None = None) -> Facts:
        if patient_id not in facts:
            tz = zone(tz_name) if tz_name else UTC
            facts[patient_id] = Facts(today=clock.today(tz))
        return facts[patient_id]

    if not cover_only:
        await _load_plans(conn, mine, of)

    def course_sessions(*extra: Any, dose: Any = Appointment.dose_g) -> Select[Any]:
        """Course sessions with what their cover depends on: day, drug, dose, price."""
        return (
            select(
                Appointment.patient_id,
                Appointment.id,
                _local_day(conn),
                Appointment.course_id,
                dose,
                Product.hcpcs_code,
                Product.billing_unit_mg,
                Product.price_per_unit,
                Center.timezone,
                *extra,
            )
            .join(Course, Course.id == Appointment.course_id)
            .join(Product, Product.id == Course.product_id)
            .join(Center, Center.id == Appointment.center_id)
        )

    def need_of(row: Any) -> tuple[uuid.UUID, str, rules.Need, Decimal | None]:
        owner, appt_id, day, of_course, dose, hcpcs, unit_mg, price, tz_name = row[:9]
        if isinstance(day, datetime):
            day = day.astimezone(zone(tz_name)).date()
        return owner, tz_name, rules.Need(appt_id, day, hcpcs, of_course, dose, unit_mg), price

    booked = await conn.execute(
        course_sessions().where(
            mine(Appointment.patient_id),
            # Every session not yet given, even one running past its end: until it is
            # completed or missed it still holds its units.
            Appointment.status.in_(ACTIVE_STATUSES),
        )
    )
    for row in booked:
        owner, tz_name, need, price = need_of(row)
        of(owner, tz_name).sessions.append((need, price))

    # Plain rows, not ORM objects: the sweep reads every authorization, and units drawn by a
    # conditional UPDATE earlier in this transaction must show.
    auths = await conn.execute(
        select(
            Authorization.patient_id,
            Authorization.id,
            Authorization.status,
            Authorization.service_code,
            Authorization.course_id,
            Authorization.valid_from,
            Authorization.valid_to,
            Authorization.units_type,
            Authorization.units_approved,
            Authorization.units_used,
            Payer.id,
            Payer.turnaround_days,
            Payer.renewal_margin_days,
            Payer.alert_days,
        )
        .join(Coverage, Coverage.id == Authorization.coverage_id)
        .join(Payer, Payer.id == Coverage.payer_id)
        .where(mine(Authorization.patient_id))
    )
    for row in auths:
        (owner, auth_id, status, code, for_course, valid_from, valid_to, units_type) = row[:8]
        approved, used, payer_id, turnaround, margin, alert_days = row[8:]
        kind: rules.UnitsType = "visits" if units_type == "visits" else "billing_units"
        grant = rules.Grant(
            auth_id, status, code, for_course, valid_from, valid_to, kind, approved - used
        )
        of(owner).auths.append(
            alert_rules.Auth(grant, approved, used, payer_id, turnaround, margin, alert_days)
        )

    if cover_only:
        return facts

    # A session given is paid for, when an authorization arrives, by the dose given (as its
    # completion would have drawn), not the dose that was planned.
    given = func.coalesce(SessionRecord.dose_given_g, Appointment.dose_g)
    unpaid = await conn.execute(
        course_sessions(SessionDraw.reason, dose=given)
        .join(SessionDraw, SessionDraw.appointment_id == Appointment.id)
        .outerjoin(SessionRecord, SessionRecord.appointment_id == Appointment.id)
        .where(
            mine(SessionDraw.patient_id),
            SessionDraw.consumed.is_(True),
            SessionDraw.authorization_id.is_(None),
            SessionDraw.reason.is_distinct_from(WRITTEN_OFF),
        )
        .order_by(Appointment.start_at)
    )
    for row in unpaid:
        owner, tz_name, need, price = need_of(row)
        of(owner, tz_name).unpaid.append((need, price, row[9] or "no_authorization"))

    coverages = await conn.execute(
        select(
            Coverage.patient_id,
            Coverage.id,
            Coverage.payer_id,
            Coverage.effective_from,
            Coverage.effective_to,
            Payer.turnaround_days,
        )
        .join(Payer, Payer.id == Coverage.payer_id)
        .where(mine(Coverage.patient_id))
    )
    for owner, coverage_id, payer_id, starts, ends, turnaround in coverages:
        of(owner).coverages.append(
            alert_rules.CoverageTerm(coverage_id, payer_id, starts, ends, turnaround)
        )
    return facts


class Decision(NamedTuple):
    sessions: list[alert_rules.Session]  # every booked session with its cover
    alerts: list[alert_rules.AlertSpec]  # the alerts that should be live
    review_on: date | None  # when time alone could next change them


def decide(facts: Facts) -> Decision:
    """Pure: the cover of every booked session, the alerts that should be live, and when to
    look again."""
    prices = {need.appointment_id: price for need, price in facts.sessions}
    covers = rules.allocate([n for n, _ in facts.sessions], [a.grant for a in facts.auths])
    by_id = {n.appointment_id: n for n, _ in facts.sessions}
    sessions = [
        alert_rules.Session(by_id[c.appointment_id], c, prices[c.appointment_id]) for c in covers
    ]
    given = [
        alert_rules.Session(need, rules.Allocation(need.appointment_id, None, 0, reason), price)
        for need, price, reason in facts.unpaid
    ]
    usages = {
        a.grant.authorization_id: alert_rules.auth_usage(a, sessions, facts.plans)
        for a in facts.auths
        if a.grant.status in rules.APPROVED
    }
    alerts = alert_rules.patient_alerts(
        facts.today, sessions, facts.auths, facts.coverages, facts.plans, given, usages
    )
    review = alert_rules.next_review(
        facts.today, sessions, facts.auths, facts.coverages, facts.plans, usages
    )
    return Decision(sessions, alerts, review)
