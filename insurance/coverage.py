"""Which authorization pays for each course session, and the billing alerts that follow.
Flushes; never commits.

`recompute(session, patient_ids)` is the one path: it loads what it needs for those patients
in a few set-based queries, lets the pure rules (`rules.allocate`, `lapse.patient_alerts`)
decide, then writes the session covers and reconciles the live alerts in bulk. It runs for one
patient after every change that can affect coverage, and over everyone in the sweep.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    bindparam,
    delete,
    func,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from insurance import lapse, rules
from insurance.models import (
    Alert,
    Authorization,
    Coverage,
    CoverageReview,
    Payer,
    SessionCover,
)
from scheduling.localtime import zone
from scheduling.models import ACTIVE_STATUSES, Appointment, Center, Course, Product

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
    auths: list[lapse.Auth] = field(default_factory=list)
    coverages: list[lapse.Cover] = field(default_factory=list)
    plans: list[lapse.Plan] = field(default_factory=list)
    # Sessions already given that no authorization paid for: the real unpaid bills.
    unpaid: list[tuple[rules.Need, Decimal | None, str]] = field(default_factory=list)


@dataclass
class Outcome:
    patients: int = 0
    opened: int = 0
    resolved: int = 0
    updated: int = 0


def _lock_key(patient_id: uuid.UUID) -> int:
    digest = hashlib.blake2b(f"{patient_id}/coverage".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def lock_patient(session: AsyncSession, patient_id: uuid.UUID) -> None:
    """One coverage decision at a time per patient (units are shared between sessions)."""
    if session.get_bind().dialect.name != "postgresql":
        return  # SQLite write transactions already hold the database lock
    await session.execute(
        text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(patient_id)}
    )


async def try_lock_patients(
    session: AsyncSession, patient_ids: Sequence[uuid.UUID]
) -> list[uuid.UUID]:
    """Those of these patients whose coverage lock is free, now locked for this transaction.
    The others are being recomputed by a request at this moment: the sweep leaves them be."""
    if session.get_bind().dialect.name != "postgresql" or not patient_ids:
        return list(patient_ids)
    keys = {_lock_key(p): p for p in patient_ids}
    got = await session.scalars(
        text(
            "SELECT k FROM unnest(CAST(:keys AS bigint[])) AS k "
            "WHERE pg_try_advisory_xact_lock(k) ORDER BY k"
        ),
        {"keys": sorted(keys)},
    )
    return sorted(keys[k] for k in got)


def _local_day(session: AsyncSession) -> ColumnElement[Any]:
    """A session's local date. PostgreSQL works it out itself, sparing the sweep a Python
    time-zone conversion per row; elsewhere the start instant comes back to be converted."""
    if session.get_bind().dialect.name == "postgresql":
        return func.date(func.timezone(Center.timezone, Appointment.start_at))
    return Appointment.__table__.c.start_at


async def load(
    session: AsyncSession,
    patient_ids: Sequence[uuid.UUID],
    span: tuple[uuid.UUID, uuid.UUID] | None = None,
) -> dict[uuid.UUID, Facts]:
    """The facts for these patients, in five queries whatever their number. `span` (the
    sweep's) reads every patient whose id lies in it instead: index range scans, no id list."""
    ids = list(patient_ids)
    facts: dict[uuid.UUID, Facts] = {}

    def mine(column: Any) -> ColumnElement[bool]:
        chosen: ColumnElement[bool] = column.between(*span) if span is not None else column.in_(ids)
        return chosen

    def of(patient_id: uuid.UUID, tz_name: str | None = None) -> Facts:
        if patient_id not in facts:
            tz = zone(tz_name) if tz_name else UTC
            facts[patient_id] = Facts(today=datetime.now(tz).date())
        return facts[patient_id]

    planned = (
        select(func.count())
        .where(
            Appointment.course_id == Course.id,
            Appointment.status.in_((*ACTIVE_STATUSES, "completed")),
        )
        .scalar_subquery()
    )
    plans = await session.execute(
        select(
            Course.patient_id,
            Course.id,
            Course.interval_days,
            Course.cycles,
            planned,
            Product.hcpcs_code,
            Center.timezone,
        )
        .join(Product, Product.id == Course.product_id)
        .join(Center, Center.id == Course.center_id)
        .where(mine(Course.patient_id), Course.status.in_(("active", "on_hold")))
        .order_by(Course.start_date, Course.id)  # the same course sets the pace every time
    )
    for patient_id, course_id, interval, cycles, count, hcpcs, tz_name in plans:
        left = max(cycles - count, 0) if cycles is not None else None
        of(patient_id, tz_name).plans.append(lapse.Plan(course_id, hcpcs, interval, left))

    rows = await session.execute(
        select(
            Appointment.patient_id,
            Appointment.id,
            _local_day(session),
            Appointment.course_id,
            Appointment.dose_g,
            Product.hcpcs_code,
            Product.billing_unit_mg,
            Product.price_per_unit,
            Center.timezone,
        )
        .join(Course, Course.id == Appointment.course_id)
        .join(Product, Product.id == Course.product_id)
        .join(Center, Center.id == Appointment.center_id)
        .where(
            mine(Appointment.patient_id),
            # Every session not yet given, even one running past its end: until it is
            # completed or missed it still holds its units.
            Appointment.status.in_(ACTIVE_STATUSES),
        )
    )
    for owner, appt_id, day, of_course, dose, hcpcs, unit_mg, price, tz_name in rows:
        if isinstance(day, datetime):
            day = day.astimezone(zone(tz_name)).date()
        need = rules.Need(appt_id, day, hcpcs, of_course, dose, unit_mg)
        of(owner, tz_name).sessions.append((need, price))

    # Plain rows, not ORM objects: the sweep reads every authorization, and units drawn by a
    # conditional UPDATE earlier in this transaction must show.
    auths = await session.execute(
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
            lapse.Auth(grant, approved, used, payer_id, turnaround, margin, alert_days)
        )

    unpaid = await session.execute(
        select(
            SessionCover.patient_id,
            SessionCover.reason,
            Appointment.id,
            Appointment.start_at,
            Appointment.course_id,
            Appointment.dose_g,
            Product.hcpcs_code,
            Product.billing_unit_mg,
            Product.price_per_unit,
            Center.timezone,
        )
        .join(Appointment, Appointment.id == SessionCover.appointment_id)
        .join(Course, Course.id == Appointment.course_id)
        .join(Product, Product.id == Course.product_id)
        .join(Center, Center.id == Appointment.center_id)
        .where(
            mine(SessionCover.patient_id),
            SessionCover.consumed.is_(True),
            SessionCover.authorization_id.is_(None),
            SessionCover.reason.is_distinct_from(WRITTEN_OFF),
        )
        .order_by(Appointment.start_at)
    )
    for owner, reason, appt_id, start, of_course, dose, hcpcs, unit_mg, price, tz_name in unpaid:
        day = start.astimezone(zone(tz_name)).date()
        need = rules.Need(appt_id, day, hcpcs, of_course, dose, unit_mg)
        of(owner, tz_name).unpaid.append((need, price, reason or "no_authorization"))

    coverages = await session.execute(
        select(
            Coverage.patient_id,
            Coverage.id,
            Coverage.payer_id,
            Coverage.effective_from,
            Coverage.effective_to,
        ).where(mine(Coverage.patient_id))
    )
    for owner, coverage_id, payer_id, starts, ends in coverages:
        of(owner).coverages.append(lapse.Cover(coverage_id, payer_id, starts, ends))
    return facts


def decide(facts: Facts) -> tuple[list[lapse.Session], list[lapse.AlertSpec]]:
    """Pure: the cover of every booked session, and the alerts that should be live."""
    prices = {need.appointment_id: price for need, price in facts.sessions}
    covers = rules.allocate([n for n, _ in facts.sessions], [a.grant for a in facts.auths])
    by_id = {n.appointment_id: n for n, _ in facts.sessions}
    sessions = [lapse.Session(by_id[c.appointment_id], c, prices[c.appointment_id]) for c in covers]
    given = [
        lapse.Session(need, rules.Cover(need.appointment_id, None, 0, reason), price)
        for need, price, reason in facts.unpaid
    ]
    alerts = lapse.patient_alerts(
        facts.today, sessions, facts.auths, facts.coverages, facts.plans, given
    )
    return sessions, alerts


async def recompute(
    session: AsyncSession,
    patient_ids: Iterable[uuid.UUID],
    *,
    span: tuple[uuid.UUID, uuid.UUID] | None = None,
) -> Outcome:
    """Bring the live coverage alerts of these patients up to date (and pay for sessions
    given without cover when an authorization for them has arrived since). The caller holds
    their coverage locks. `span`: the sweep's, an id range holding them all, read as a range."""
    ids = sorted(set(patient_ids))
    outcome = Outcome(patients=len(ids))
    if not ids:
        return outcome
    facts = await load(session, ids, span)
    wanted: dict[tuple[str, uuid.UUID], tuple[uuid.UUID, lapse.AlertSpec]] = {}
    now = utcnow()
    reviews: list[dict[str, object]] = []
    for patient_id in ids:
        review: date | None = None
        if patient_id in facts:
            mine = facts[patient_id]
            if mine.unpaid:
                await _settle_unpaid(session, mine)
            sessions, alerts = decide(mine)
            for spec in alerts:
                wanted[(spec.kind, spec.subject_id)] = (patient_id, spec)
            review = lapse.next_review(mine.today, sessions, mine.auths, mine.coverages, mine.plans)
        reviews.append({"patient_id": patient_id, "review_on": review, "reviewed_at": now})
    await _reconcile(session, ids, wanted, outcome)
    await session.execute(delete(CoverageReview).where(CoverageReview.patient_id.in_(ids)))
    await session.execute(_REVIEWS.insert(), reviews)
    return outcome


async def due_for_review(session: AsyncSession, candidates: Sequence[uuid.UUID]) -> list[uuid.UUID]:
    """Of these patients, those never reviewed or whose review date has come. A day early
    everywhere, so that no time zone sees its date come before the sweep does."""
    horizon = datetime.now(UTC).date() + timedelta(days=1)
    settled = set(
        await session.scalars(
            select(CoverageReview.patient_id).where(
                or_(CoverageReview.review_on.is_(None), CoverageReview.review_on > horizon)
            )
        )
    )
    return [p for p in candidates if p not in settled]


async def _draw(session: AsyncSession, authorization_id: uuid.UUID, units: int) -> bool:
    """Take units from an authorization unless that would pass what was approved."""
    drawn = await session.execute(
        update(Authorization)
        .where(
            Authorization.id == authorization_id,
            Authorization.units_used + units <= Authorization.units_approved,
        )
        .values(units_used=Authorization.units_used + units, version=Authorization.version + 1)
        .execution_options(synchronize_session=False)
    )
    return bool(drawn.rowcount == 1)  # type: ignore[attr-defined]


async def _settle_unpaid(session: AsyncSession, facts: Facts) -> None:
    """A session given without cover is paid for once an authorization that covers its date
    arrives (payers approve retroactively): draw the units now, before upcoming sessions."""
    still: list[tuple[rules.Need, Decimal | None, str]] = []
    for need, price, reason in facts.unpaid:
        cover = rules.allocate([need], [a.grant for a in facts.auths])[0]
        if cover.authorization_id is None:
            still.append((need, price, cover.reason or reason))
            continue
        # Claim the session first: a concurrent settle of the same session then finds it
        # taken (after waiting for this transaction) and draws nothing.
        mine = SessionCover.appointment_id == need.appointment_id
        claimed = await session.execute(
            update(SessionCover)
            .where(mine, SessionCover.authorization_id.is_(None))
            .values(authorization_id=cover.authorization_id, units=cover.units, reason=None)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            continue  # settled meanwhile
        if not await _draw(session, cover.authorization_id, cover.units):
            await session.execute(
                update(SessionCover)
                .where(mine)
                .values(authorization_id=None, units=0, reason="units_exhausted")
            )
            still.append((need, price, "units_exhausted"))
            continue
        facts.auths = [
            replace(a, grant=replace(a.grant, units_left=a.grant.units_left - cover.units))
            if a.grant.authorization_id == cover.authorization_id
            else a
            for a in facts.auths
        ]
    facts.unpaid = still


_ALERT = cast(Table, Alert.__table__)  # plain-table statements, run with many parameter sets
_REVIEWS = cast(Table, CoverageReview.__table__)
_RESOLVE = (
    _ALERT.update()
    .where(_ALERT.c.id == bindparam("alert"))
    .values(
        status="resolved",
        resolved_at=bindparam("at"),
        resolution="cleared",
        version=_ALERT.c.version + 1,
    )
)
_REFRESH = (
    _ALERT.update()
    .where(_ALERT.c.id == bindparam("alert"))
    .values(
        severity=bindparam("severity"),
        due_date=bindparam("due_date"),
        amount_at_risk=bindparam("amount_at_risk"),
        detail=bindparam("detail"),
        payer_id=bindparam("payer_id"),
        version=_ALERT.c.version + 1,
    )
)


async def _reconcile(
    session: AsyncSession,
    ids: list[uuid.UUID],
    wanted: dict[tuple[str, uuid.UUID], tuple[uuid.UUID, lapse.AlertSpec]],
    outcome: Outcome,
) -> None:
    live = await session.execute(
        select(
            Alert.id,
            Alert.kind,
            Alert.subject_id,
            Alert.severity,
            Alert.due_date,
            Alert.amount_at_risk,
            Alert.detail,
            Alert.payer_id,
        ).where(Alert.patient_id.in_(ids), Alert.status.in_(LIVE), Alert.kind.in_(COVERAGE_KINDS))
    )
    now = utcnow()
    cleared: list[dict[str, object]] = []
    changed: list[dict[str, object]] = []
    for alert_id, kind, subject_id, *held in live:
        spec = wanted.pop((kind, subject_id), None)
        if spec is None:
            cleared.append({"alert": alert_id})
            continue
        _, s = spec
        fresh = [s.severity, s.due_date, s.amount_at_risk, s.detail, s.payer_id]
        if fresh != held:
            changed.append(
                {
                    "alert": alert_id,
                    "severity": s.severity,
                    "due_date": s.due_date,
                    "amount_at_risk": s.amount_at_risk,
                    "detail": s.detail,
                    "payer_id": s.payer_id,
                }
            )
    # Bulk statements, not ORM objects: a sweep may touch many thousands of alerts.
    if cleared:
        await session.execute(_RESOLVE, [{**c, "at": now} for c in cleared])
    if changed:
        await session.execute(_REFRESH, changed)
    outcome.resolved += len(cleared)
    outcome.updated += len(changed)
    rows = [
        {
            "id": uuid.uuid4(),
            "kind": s.kind,
            "subject_id": s.subject_id,
            "status": "open",
            "severity": s.severity,
            "due_date": s.due_date,
            "patient_id": patient_id,
            "payer_id": s.payer_id,
            "authorization_id": s.authorization_id,
            "appointment_id": s.appointment_id,
            "course_id": s.course_id,
            "amount_at_risk": s.amount_at_risk,
            "detail": s.detail,
            "opened_at": now,
            "version": 1,
        }
        for patient_id, s in wanted.values()
    ]
    if rows:
        await session.execute(_ALERT.insert(), rows)
    outcome.opened += len(rows)
    await session.flush()


async def recompute_patient(session: AsyncSession, patient_id: uuid.UUID) -> Outcome:
    await lock_patient(session, patient_id)
    return await recompute(session, [patient_id])


async def consume(
    session: AsyncSession, appointment_id: uuid.UUID, dose_given_g: Decimal | None
) -> SessionCover | None:
    """A course session was given: draw its units from the authorization that covers it.
    The draw is one conditional UPDATE, so two completions racing for the last unit can never
    both take it; the loser tries the next authorization or stays uncovered."""
    appt = await session.get(Appointment, appointment_id)
    if appt is None or appt.course_id is None:
        return None
    await lock_patient(session, appt.patient_id)
    row = (
        await session.execute(
            select(Product.hcpcs_code, Product.billing_unit_mg, Center.timezone)
            .join(Course, Course.product_id == Product.id)
            .join(Center, Center.id == Course.center_id)
            .where(Course.id == appt.course_id)
        )
    ).one()
    hcpcs, unit_mg, tz_name = row
    dose = dose_given_g if dose_given_g is not None else appt.dose_g
    need = rules.Need(
        appt.id,
        appt.start_at.astimezone(zone(tz_name)).date(),
        hcpcs,
        appt.course_id,
        dose,
        unit_mg,
    )
    facts = await load(session, [appt.patient_id])
    grants = [a.grant for a in facts[appt.patient_id].auths] if appt.patient_id in facts else []
    cover = rules.allocate([need], grants)[0]
    while cover.authorization_id is not None:
        if await _draw(session, cover.authorization_id, cover.units):
            break
        grants = [g for g in grants if g.authorization_id != cover.authorization_id]
        cover = rules.allocate([need], grants)[0]
    await session.execute(delete(SessionCover).where(SessionCover.appointment_id == appt.id))
    record = SessionCover(
        appointment_id=appt.id,
        patient_id=appt.patient_id,
        authorization_id=cover.authorization_id,
        units=cover.units,
        reason=cover.reason,
        consumed=True,
    )
    session.add(record)
    await session.flush()
    return record


@dataclass(frozen=True)
class SessionState:
    """Who pays for a course session: drawn from an authorization when it was given, or the
    authorization the rules allocate it today (derived, never stored)."""

    authorization_id: uuid.UUID | None
    reason: str | None  # None when covered


async def covers_of(
    session: AsyncSession, appointment_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, SessionState]:
    """The cover of these sessions: given ones as drawn, booked ones as allocated now.
    Appointments outside a course have none."""
    ids = list(appointment_ids)
    if not ids:
        return {}
    drawn = await session.execute(
        select(
            SessionCover.appointment_id, SessionCover.authorization_id, SessionCover.reason
        ).where(SessionCover.appointment_id.in_(ids))
    )
    found = {a: SessionState(auth, reason) for a, auth, reason in drawn}
    patients = await session.scalars(
        select(Appointment.patient_id)
        .where(
            Appointment.id.in_([i for i in ids if i not in found]),
            Appointment.course_id.is_not(None),
            Appointment.status.in_(ACTIVE_STATUSES),
        )
        .distinct()
    )
    wanted = set(ids)
    for facts in (await load(session, list(patients))).values():
        sessions, _ = decide(facts)
        for s in sessions:
            if s.need.appointment_id in wanted and s.need.appointment_id not in found:
                found[s.need.appointment_id] = SessionState(
                    s.cover.authorization_id, s.cover.reason
                )
    return found


async def uncovered_reason(
    session: AsyncSession, patient_id: uuid.UUID, appointment_id: uuid.UUID
) -> str | None:
    """Why no authorization would pay for this booked session, or None when one would: the
    check a center with the `block` policy makes before keeping a booking."""
    await lock_patient(session, patient_id)
    facts = (await load(session, [patient_id])).get(patient_id)
    if facts is None:
        return None
    sessions, _ = decide(facts)
    for s in sessions:
        if s.need.appointment_id == appointment_id and s.cover.reason is not None:
            return lapse.REASON_TEXT[s.cover.reason]
    return None


async def _mark_due(session: AsyncSession, patient_ids: Select[uuid.UUID]) -> None:
    """Something many patients' cover depends on changed: the next sweep recomputes them.
    One statement, however many patients."""
    await session.execute(
        delete(CoverageReview).where(CoverageReview.patient_id.in_(patient_ids.scalar_subquery()))
    )


async def payer_changed(session: AsyncSession, payer_id: uuid.UUID) -> None:
    """Turnaround, margin and alert window feed every renew-by date of the payer's patients."""
    await _mark_due(session, select(Coverage.patient_id).where(Coverage.payer_id == payer_id))


async def product_changed(session: AsyncSession, product_id: uuid.UUID) -> None:
    """A drug's price or billing unit changes money at risk and billing units."""
    await _mark_due(session, select(Course.patient_id).where(Course.product_id == product_id))


async def center_changed(session: AsyncSession, center_id: uuid.UUID) -> None:
    """A center's time zone can move its sessions' local dates."""
    await _mark_due(session, select(Course.patient_id).where(Course.center_id == center_id))
