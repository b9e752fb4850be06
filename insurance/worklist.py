"""Billing's work queue: reading, acting on and sweeping alerts. Flushes; never commits."""

from __future__ import annotations

import asyncio
import gc
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import bindparam, case, func, select, union, update
from sqlalchemy.ext.asyncio import AsyncSession

from core import locks
from core.clock import utcnow
from core.db import Database
from core.outbox import events
from core.pagination import page
from core.problems import IllegalTransition, Invalid, NotFound
from core.users import User
from insurance import alert_queue, alert_rules, allocation, facts, priority, rules
from insurance.models import NOT_BILLING_KINDS, Alert, Authorization, Payer, SessionDraw
from insurance.schemas import AlertAction
from patients.models import Patient
from scheduling.appointments.models import Appointment
from scheduling.centers.models import Center
from scheduling.courses.models import Course
from scheduling.localtime import zone

# Patients per transaction: bounded memory and lock count, few round trips.
SWEEP_CHUNK = 2000
# Chunks under way at once on PostgreSQL (see `recompute_patients`).
SWEEP_IN_FLIGHT = 2

# The work queue's order, `priority.queue_key` in SQL: most severe first, then the most money
# at risk (unknown as nothing), then soonest due, then id. Every term ascends, so the keyset
# pagination can compare rows as tuples: money is negated rather than sorted descending.
# (`page` is typed for plain columns; it compares and reads back any SQL expression alike.)
QUEUE_ORDER: list[Any] = [
    case(
        {s: i for i, s in enumerate(priority.SEVERITIES)},
        value=Alert.severity,
        else_=len(priority.SEVERITIES),
    ),
    -func.coalesce(Alert.amount_at_risk, 0),
    Alert.due_date,
    Alert.id,
]


async def list_alerts(
    session: AsyncSession, filters: alert_queue.AlertFilter, limit: int, cursor: str | None
) -> tuple[list[Alert], str | None]:
    return await page(session, filters.apply(select(Alert)), QUEUE_ORDER, limit, cursor)


async def get_alert(
    session: AsyncSession, alert_id: uuid.UUID, *, for_update: bool = False
) -> Alert:
    alert = await session.get(Alert, alert_id, with_for_update=for_update)
    if alert is None:
        raise NotFound("no such alert")
    return alert


async def act(
    session: AsyncSession,
    alert_id: uuid.UUID,
    action: str,
    data: AlertAction,
    actor_id: uuid.UUID | None,
) -> Alert:
    alert = await get_alert(session, alert_id, for_update=True)
    if alert.status == "resolved":
        raise IllegalTransition(f"cannot {action} a resolved alert")
    if action == "acknowledge":
        if alert.status == "acknowledged":
            raise IllegalTransition("the alert is already acknowledged")
        alert.status, alert.acknowledged_at = "acknowledged", utcnow()
    elif action == "resolve":
        # Done by hand; if the condition is still there the next recompute opens a new one,
        # except for a session already given: billing has settled that bill its own way.
        alert.status, alert.resolved_at, alert.resolution = "resolved", utcnow(), "by_hand"
        if alert.kind == "session_uncovered" and alert.appointment_id is not None:
            await session.execute(
                update(SessionDraw)
                .where(
                    SessionDraw.appointment_id == alert.appointment_id,
                    SessionDraw.authorization_id.is_(None),
                )
                .values(reason=facts.WRITTEN_OFF)
            )
    else:
        assignee = data.assignee_id or actor_id
        user = await _biller(session, assignee)
        alert.assigned_to = user
    if data.note is not None:
        alert.note = data.note
    await session.flush()
    return alert


async def _biller(session: AsyncSession, user_id: uuid.UUID | None) -> uuid.UUID:
    user = await session.get(User, user_id) if user_id is not None else None
    if user is None or not alert_queue.may_be_assigned(user):
        raise Invalid("alerts are assigned to an active billing or admin user")
    return user.id


@dataclass(frozen=True)
class Draw:
    """A session drawing on an authorization: given (units used) or booked (units held)."""

    appointment_id: uuid.UUID
    day: date  # the center's local date
    units: int  # as the payer counts them
    given: bool


@dataclass(frozen=True)
class UsageReport:
    usage: rules.Usage
    today: date  # at the patient's center: what the figures are reckoned from
    course_id: uuid.UUID | None  # the course the authorization pays for, whose pace counts
    draws: list[Draw]  # by day (when asked for)


async def usage_of(
    session: AsyncSession, auth: Authorization, *, sessions: bool = False
) -> UsageReport:
    """An authorization's units (used, booked, left) and when to renew it; with `sessions`,
    also the sessions that draw on it, given or booked: what its burn-down is drawn from."""
    known = (await facts.load(session, [auth.patient_id])).get(auth.patient_id)
    assert known is not None  # the authorization itself is one of the facts
    covers = facts.decide(known).sessions
    mine = next(a for a in known.auths if a.grant.authorization_id == auth.id)
    usage = alert_rules.auth_usage(mine, covers, known.plans)
    course_id = auth.course_id or next(
        (p.course_id for p in known.plans if p.service_code == auth.service_code), None
    )
    if not sessions:
        return UsageReport(usage, known.today, course_id, [])
    given = await session.execute(
        select(SessionDraw.appointment_id, SessionDraw.units, Appointment.start_at, Center.timezone)
        .join(Appointment, Appointment.id == SessionDraw.appointment_id)
        .join(Center, Center.id == Appointment.center_id)
        .where(SessionDraw.authorization_id == auth.id, SessionDraw.consumed.is_(True))
    )
    draws = [
        Draw(appt_id, start.astimezone(zone(tz_name)).date(), units, True)
        for appt_id, units, start, tz_name in given
    ]
    draws += [
        Draw(s.need.appointment_id, s.need.day, s.allocation.units, False)
        for s in covers
        if s.allocation.authorization_id == auth.id
    ]
    draws.sort(key=lambda d: (d.day, not d.given, d.appointment_id))
    return UsageReport(usage, known.today, course_id, draws)


async def sweep(db: Database, *, everyone: bool = False) -> tuple[allocation.Outcome, float]:
    """Recompute the patients whose review date has come (or, with `everyone`, every patient
    with a course, an authorization or a live alert). One transaction per chunk of patients,
    each holding those patients' coverage locks, so a nurse's request never waits long and
    never races the sweep; a patient a request is recomputing right now is left to it. A
    second sweep straight after has nobody to recompute, and would open nothing if it had."""
    started = time.perf_counter()
    async with db.unit_of_work(write=False) as session:
        # Course sessions, authorizations, given-but-unpaid sessions and live alerts all
        # belong to patients with a course or an authorization, or with a live alert.
        ids = sorted(
            await session.scalars(
                union(
                    select(Authorization.patient_id),
                    select(Course.patient_id),
                    select(Alert.patient_id).where(Alert.status.in_(facts.LIVE)),
                )
            )
        )
        due = ids if everyone else await allocation.due_for_review(session, ids)
    # Read by id range when (nearly) everyone is due, by id list when few are.
    total = await recompute_patients(db, due, dense=len(due) * 2 > len(ids))
    return total, time.perf_counter() - started


async def recompute_patients(
    db: Database, patient_ids: Sequence[uuid.UUID], *, dense: bool = False
) -> allocation.Outcome:
    """Recompute the patients (sorted by id) in chunks, one transaction each, holding their
    coverage locks; a patient a request is recomputing right now is left to it. `dense`: the
    ids are (nearly) every patient's, so each chunk reads its facts by id range.

    On PostgreSQL two chunks are under way at once, on two connections: while one waits for
    the database (its reads, its COPY, its commit) the other's rules run, so the sweep's time
    is closer to the larger of the two than to their sum. Chunks share no patient, so they
    share no lock and no alert. SQLite has one writer: one chunk at a time."""
    chunks = [
        list(patient_ids[i : i + SWEEP_CHUNK]) for i in range(0, len(patient_ids), SWEEP_CHUNK)
    ]
    gate = asyncio.Semaphore(SWEEP_IN_FLIGHT if db.dialect == "postgresql" else 1)

    async def one(chunk: list[uuid.UUID]) -> allocation.Outcome:
        async with gate, db.unit_of_work() as session:
            free = await locks.try_patient_cover(session, chunk)
            span = (chunk[0], chunk[-1]) if dense else None
            with _collector_paused():
                return await allocation.recompute(session, free, span=span)

    async with asyncio.TaskGroup() as group:  # one chunk failing stops the others
        tasks = [group.create_task(one(chunk)) for chunk in chunks]
    total = allocation.Outcome()
    for task in tasks:
        outcome = task.result()
        total.patients += outcome.patients
        total.opened += outcome.opened
        total.resolved += outcome.resolved
        total.updated += outcome.updated
    return total


_paused = 0  # chunks under way with the cyclic garbage collector paused
_collector_was_enabled = True


@contextmanager
def _collector_paused() -> Iterator[None]:
    """A chunk makes hundreds of thousands of short-lived objects (facts, covers, alerts);
    every so many the cyclic collector walks the whole process, and in a cold sweep that was
    two fifths of its time. The chunk's objects are freed by reference counting as usual; only
    the walk waits until no chunk is under way."""
    global _paused, _collector_was_enabled
    if _paused == 0:
        _collector_was_enabled = gc.isenabled()
        gc.disable()
    _paused += 1
    try:
        yield
    finally:
        _paused -= 1
        if _paused == 0 and _collector_was_enabled:
            gc.enable()


async def worklist(
    session: AsyncSession, filters: alert_queue.AlertFilter | None = None
) -> list[list[Any]]:
    """One row per live billing alert for the CSV export, in the work queue's order (a course
    nothing can book is on the nurses' queue, a dose short of stock on the pharmacy's, not
    billing's), narrowed by the queue's filters if given."""
    query = (
        select(
            Alert.due_date,
            Alert.severity,
            Alert.kind,
            Alert.status,
            Patient.mrn,
            Patient.family_name,
            Patient.given_name,
            Payer.name,
            Authorization.auth_number,
            Alert.amount_at_risk,
            Alert.detail,
            Alert.id,
            User.email,
        )
        .join(Patient, Patient.id == Alert.patient_id)
        .outerjoin(Payer, Payer.id == Alert.payer_id)
        .outerjoin(Authorization, Authorization.id == Alert.authorization_id)
        .outerjoin(User, User.id == Alert.assigned_to)
        .where(Alert.status.in_(facts.LIVE), Alert.kind.not_in(NOT_BILLING_KINDS))
    )
    if filters is not None:
        query = filters.apply(query)
    rows = await session.execute(query.order_by(*QUEUE_ORDER))
    return [
        [*row[:5], f"{row.family_name}, {row.given_name}", *row[7:]]  # the patient's name
        for row in rows
    ]


async def course_unbookable(session: AsyncSession, course: Course, problem: str) -> Alert:
    """The booking run could not book a course as planned: one live alert per course, brought
    up to date on every run that still cannot."""
    live = await session.scalar(
        select(Alert).where(
            Alert.kind == "course_unbookable",
            Alert.subject_id == course.id,
            Alert.status.in_(facts.LIVE),
        )
    )
    detail = problem[:500]
    if live is not None:
        live.detail, live.due_date = detail, utcnow().date()
        await session.flush()
        return live
    alert = Alert(
        id=uuid.uuid4(),
        kind="course_unbookable",
        subject_id=course.id,
        status="open",
        severity="warning",
        due_date=utcnow().date(),
        patient_id=course.patient_id,
        course_id=course.id,
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
        course_id=alert.course_id,
        due_date=alert.due_date,
    )
    return alert


async def courses_booked(session: AsyncSession, course_ids: Sequence[uuid.UUID]) -> None:
    """These courses booked cleanly: their unbookable alerts, if any, are resolved."""
    await session.execute(_CLEAR_UNBOOKABLE, {"ids": list(course_ids), "now": utcnow()})


# Built once: a nightly run clears every course it books, one transaction each.
_CLEAR_UNBOOKABLE = (
    update(Alert)
    .where(
        Alert.kind == "course_unbookable",
        Alert.subject_id.in_(bindparam("ids", expanding=True)),
        Alert.status.in_(facts.LIVE),
    )
    .values(
        status="resolved",
        resolved_at=bindparam("now"),
        resolution="cleared",
        version=Alert.version + 1,
    )
)
