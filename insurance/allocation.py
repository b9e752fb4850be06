"""Which authorization pays for each course session, and the billing alerts that follow.
Flushes; never commits.

`recompute(session, patient_ids)` is the one path: it loads what it needs for those patients
in a few set-based queries (`facts`), lets the pure rules (`rules.allocate`,
`alert_rules.patient_alerts`) decide, then reconciles the live alerts in bulk and sets each
patient's next review date. It runs for one patient after every change that can affect
coverage, and over the patients whose review date has come in the sweep. The cover of a
booked session is derived when asked for (`covers_of`), never stored.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from operator import itemgetter
from typing import cast

from sqlalchemy import (
    JSON,
    Select,
    Table,
    bindparam,
    delete,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from core import clock, locks
from core.clock import utcnow
from core.outbox import events
from core.outbox.models import OutboxEvent
from insurance import alert_rules, rules
from insurance.facts import COVERAGE_KINDS, LIVE, decide, load
from insurance.models import (
    Alert,
    Authorization,
    Coverage,
    CoverageReview,
    SessionDraw,
)
from insurance.usage import settle_unpaid
from scheduling.appointments.models import ACTIVE_STATUSES, Appointment
from scheduling.courses.models import Course


@dataclass
class Outcome:
    patients: int = 0
    opened: int = 0
    resolved: int = 0
    updated: int = 0


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
    wanted: dict[tuple[str, uuid.UUID], tuple[uuid.UUID, alert_rules.AlertSpec]] = {}
    now = utcnow()
    reviews: list[dict[str, object]] = []
    for patient_id in ids:
        review: date | None = None
        if patient_id in facts:
            mine = facts[patient_id]
            if mine.unpaid:
                await settle_unpaid(session, mine)
            decision = decide(mine)
            for spec in decision.alerts:
                wanted[(spec.kind, spec.subject_id)] = (patient_id, spec)
            review = decision.review_on
        reviews.append({"patient_id": patient_id, "review_on": review, "reviewed_at": now})
    await _reconcile(session, ids, wanted, outcome)
    await session.execute(delete(CoverageReview).where(CoverageReview.patient_id.in_(ids)))
    await _insert(session, _REVIEWS, reviews)
    return outcome


async def due_for_review(session: AsyncSession, candidates: Sequence[uuid.UUID]) -> list[uuid.UUID]:
    """Of these patients, those never reviewed or whose review date has come. A day early
    everywhere, so that no time zone sees its date come before the sweep does."""
    horizon = clock.utcnow().date() + timedelta(days=1)
    settled = set(
        await session.scalars(
            select(CoverageReview.patient_id).where(
                or_(CoverageReview.review_on.is_(None), CoverageReview.review_on > horizon)
            )
        )
    )
    return [p for p in candidates if p not in settled]


_ALERT = cast(Table, Alert.__table__)  # plain-table statements, run with many parameter sets
_REVIEWS = cast(Table, CoverageReview.__table__)
_OUTBOX = cast(Table, OutboxEvent.__table__)
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
    wanted: dict[tuple[str, uuid.UUID], tuple[uuid.UUID, alert_rules.AlertSpec]],
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
    await _insert(session, _ALERT, rows)
    # Other systems hear of every alert opened, and of authorizations lapsing.
    opened = [_alert_event(r) for r in rows]
    lapsing = [e for e in opened if e["kind"] in LAPSING]
    await _insert(session, _OUTBOX, events.rows("alert.opened", opened))
    await _insert(session, _OUTBOX, events.rows("authorization.lapsing", lapsing))
    outcome.opened += len(rows)
    await session.flush()


LAPSING = ("auth_expiring", "auth_units_low")


def _alert_event(row: Mapping[str, object]) -> dict[str, object]:
    """An alert as other systems hear of it: ids, kind and due date; no detail text."""
    keys = ("kind", "patient_id", "authorization_id", "appointment_id", "course_id", "due_date")
    return {"alert_id": row["id"], **{k: row[k] for k in keys}}


async def _insert(
    session: AsyncSession, table: Table, rows: Sequence[Mapping[str, object]]
) -> None:
    """Many rows at once. On PostgreSQL through COPY, in this transaction: a first sweep can
    open a hundred thousand alerts, and multi-row INSERTs spend most of their time in Python."""
    if not rows:
        return
    if session.get_bind().dialect.name != "postgresql" or len(rows) < 100:
        await session.execute(table.insert(), rows)
        return
    columns = list(rows[0])
    # COPY takes values as the driver sends them: JSON goes as text.
    as_json = [i for i, c in enumerate(columns) if isinstance(table.c[c].type, JSON)]
    values = itemgetter(*columns) if len(columns) > 1 else lambda r: (r[columns[0]],)
    records: list[tuple[object, ...]] = [values(r) for r in rows]
    if as_json:
        records = [
            tuple(json.dumps(v) if i in as_json else v for i, v in enumerate(record))
            for record in records
        ]
    connection = await session.connection()
    raw = (await connection.get_raw_connection()).driver_connection
    assert raw is not None
    await raw.copy_records_to_table(table.name, records=records, columns=columns)


@dataclass(frozen=True)
class SessionPayment:
    """Who pays for a course session: drawn from an authorization when it was given, or the
    authorization the rules allocate it today (derived, never stored)."""

    authorization_id: uuid.UUID | None
    reason: str | None  # None when covered


async def covers_of(
    session: AsyncSession, appointment_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, SessionPayment]:
    """The cover of these sessions: given ones as drawn, booked ones as allocated now.
    Appointments outside a course have none."""
    ids = list(appointment_ids)
    if not ids:
        return {}
    drawn = await session.execute(
        select(SessionDraw.appointment_id, SessionDraw.authorization_id, SessionDraw.reason).where(
            SessionDraw.appointment_id.in_(ids)
        )
    )
    found = {a: SessionPayment(auth, reason) for a, auth, reason in drawn}
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
    # The allocation alone: what the alerts would say is the sweep's business, not a screen's.
    for facts in (await load(session, list(patients), cover_only=True)).values():
        grants = [a.grant for a in facts.auths]
        for cover in rules.allocate([need for need, _ in facts.sessions], grants):
            if cover.appointment_id in wanted and cover.appointment_id not in found:
                found[cover.appointment_id] = SessionPayment(cover.authorization_id, cover.reason)
    return found


async def paid_periods(
    session: AsyncSession, appointment_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, tuple[date, date]]:
    """The valid period of the authorization that pays for each of these sessions, where one
    does (as allocated now; `covers_of`)."""
    paying = {
        a: p.authorization_id
        for a, p in (await covers_of(session, appointment_ids)).items()
        if p.authorization_id is not None and p.reason is None
    }
    if not paying:
        return {}
    rows = await session.execute(
        select(Authorization.id, Authorization.valid_from, Authorization.valid_to).where(
            Authorization.id.in_(set(paying.values()))
        )
    )
    periods = {i: (first, last) for i, first, last in rows}
    return {a: periods[auth] for a, auth in paying.items() if auth in periods}


async def uncovered(
    session: AsyncSession, patient_id: uuid.UUID, *, locked: bool = True
) -> dict[uuid.UUID, str]:
    """The patient's booked course sessions no authorization would pay for, and why.
    `locked`: decided under the patient's cover lock; False reads without it (what was unpaid
    before a change, to tell what the change left unpaid)."""
    if locked:
        await locks.patient_cover(session, [patient_id])
    facts = (await load(session, [patient_id])).get(patient_id)
    if facts is None:
        return {}
    sessions = decide(facts).sessions
    return {
        s.need.appointment_id: alert_rules.why_uncovered(s, facts.auths)
        for s in sessions
        if s.allocation.reason is not None
    }


async def uncovered_reason(
    session: AsyncSession, patient_id: uuid.UUID, appointment_id: uuid.UUID
) -> str | None:
    """Why no authorization would pay for this booked session, or None when one would: the
    check a center with the `block` policy makes before keeping a booking."""
    await locks.patient_cover(session, [patient_id])
    facts = (await load(session, [patient_id])).get(patient_id)
    if facts is None:
        return None
    sessions = decide(facts).sessions
    for s in sessions:
        if s.need.appointment_id == appointment_id and s.allocation.reason is not None:
            return alert_rules.why_uncovered(s, facts.auths)
    return None


async def _mark_due(session: AsyncSession, patient_ids: Select[uuid.UUID]) -> None:
    """Something many patients' cover depends on changed: the next sweep recomputes them.
    One statement, however many patients."""
    await session.execute(
        delete(CoverageReview).where(CoverageReview.patient_id.in_(patient_ids.scalar_subquery()))
    )


async def mark_due(session: AsyncSession, patient_ids: Sequence[uuid.UUID]) -> None:
    """These patients' cover changed; the next sweep (or the caller, later) recomputes them."""
    await session.execute(_FORGET_REVIEWS, {"ids": list(patient_ids)})


_FORGET_REVIEWS = delete(CoverageReview).where(
    CoverageReview.patient_id.in_(bindparam("ids", expanding=True))
)


async def payers_changed(session: AsyncSession, payer_ids: Sequence[uuid.UUID]) -> None:
    """Turnaround, margin and alert window feed every renew-by date of the payers' patients."""
    await _mark_due(session, select(Coverage.patient_id).where(Coverage.payer_id.in_(payer_ids)))


async def products_changed(session: AsyncSession, product_ids: Sequence[uuid.UUID]) -> None:
    """A drug's price or billing unit changes money at risk and billing units."""
    await _mark_due(session, select(Course.patient_id).where(Course.product_id.in_(product_ids)))


async def centers_changed(session: AsyncSession, center_ids: Sequence[uuid.UUID]) -> None:
    """A center's time zone can move its sessions' local dates."""
    await _mark_due(session, select(Course.patient_id).where(Course.center_id.in_(center_ids)))
