"""Treatment courses: order, book, plan, hold, resume, discontinue."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response, status

from app.api.covers import coverage_out
from app.api.deps import DEFAULT_PAGE, Allowed, Audited, Cursor, Limit, Session, etag
from app.api.idempotent import IdempotencyKey, IdempotentPost
from core.schemas import LocalDate, Page
from insurance import allocation
from insurance.allocation import SessionPayment
from scheduling.appointments.models import Appointment
from scheduling.catalog.schemas import InductionOut, MaintenanceOut
from scheduling.courses import booking as course_booking
from scheduling.courses import cascade, replans
from scheduling.courses import plan as course_plan
from scheduling.courses import service as courses
from scheduling.courses import sessions as course_sessions
from scheduling.courses.models import Course, SessionRecord
from scheduling.courses.schemas import (
    BookingResult,
    BookThrough,
    CourseAction,
    CourseChanges,
    CourseCreate,
    CourseOut,
    CoursePlan,
    CourseStatus,
    DoseSplit,
    LastReplan,
    OutcomeOut,
    PlannedRecord,
    PlannedSession,
    ReplanPlace,
    ReplanSession,
    SessionAppointment,
)
from scheduling.localtime import zone

router = APIRouter(prefix="/api/v1", tags=["courses"])
PLAN_HORIZON = timedelta(weeks=12)


def course_out(c: Course) -> CourseOut:
    induction = maintenance = None
    if c.induction_days and c.induction_total_g_per_kg is not None:
        induction = InductionOut(
            total_dose_g_per_kg=float(c.induction_total_g_per_kg),
            days=c.induction_days,
            skip_closures=c.induction_skips_closures,
        )
    interval = c.interval_days
    if interval and c.maintenance_g_per_kg is not None:
        maintenance = MaintenanceOut(
            dose_g_per_kg=float(c.maintenance_g_per_kg),
            interval_days=interval,
            window_min_days=c.window_min_days or interval,
            window_max_days=c.window_max_days or interval,
            cycles=c.cycles,
            end_date=c.end_date,
        )
    return CourseOut(
        id=c.id,
        patient_id=c.patient_id,
        center_id=c.center_id,
        product_id=c.product_id,
        diagnosis_code=c.diagnosis_code,
        status=c.status,
        induction=induction,
        maintenance=maintenance,
        start_date=c.start_date,
        preferred_weekdays=c.preferred_weekdays,
        preferred_start_time=c.preferred_start_time.strftime("%H:%M"),
        chair_kind=c.chair_kind,
        weight_basis=c.weight_basis,
        vial_tolerance_pct=float(c.vial_tolerance_pct) if c.vial_tolerance_pct else None,
        renal_risk=c.renal_risk,
        thrombosis_risk=c.thrombosis_risk,
        tolerated_rate_mg_per_kg_min=float(c.tolerated_rate) if c.tolerated_rate else None,
        dose_override_reason=c.dose_override_reason,
        version=c.version,
    )


def session_out(a: Appointment, tz_name: str) -> SessionAppointment:
    tz = zone(tz_name)
    return SessionAppointment(
        id=a.id,
        phase=a.phase if a.phase in ("induction", "maintenance") else None,
        sequence=a.sequence,
        chair_id=a.chair_id,
        start=a.start_at.astimezone(tz),
        end=a.end_at.astimezone(tz),
        duration_minutes=int((a.end_at - a.start_at).total_seconds() // 60),
        dose_g=float(a.dose_g) if a.dose_g is not None else None,
        status=a.status,
    )


def record_summary(r: SessionRecord, tz_name: str) -> PlannedRecord:
    tz = zone(tz_name)
    return PlannedRecord(
        recorded_at=r.recorded_at.astimezone(tz),
        weight_kg=float(r.weight_kg) if r.weight_kg is not None else None,
        dose_given_g=float(r.dose_given_g) if r.dose_given_g is not None else None,
        actual_start=r.actual_start.astimezone(tz) if r.actual_start else None,
        actual_end=r.actual_end.astimezone(tz) if r.actual_end else None,
        reaction=r.reaction,
        tolerated_rate_mg_per_kg_min=float(r.tolerated_rate) if r.tolerated_rate else None,
    )


def planned_out(
    e: course_plan.PlanEntry, tz_name: str, cover: SessionPayment | None = None
) -> PlannedSession:
    shown = coverage_out(cover)
    appt = e.appointment
    return PlannedSession(
        coverage=shown.state if shown is not None else "unknown",
        coverage_reason=shown.reason if shown is not None else None,
        phase=e.phase,
        sequence=e.sequence,
        part=e.part,
        dose_number=e.dose_number,
        window_start=e.window.earliest,
        window_end=e.window.latest,
        target_date=e.window.target,
        appointment=session_out(appt, tz_name) if appt else None,
        record=record_summary(e.record, tz_name) if e.record else None,
        dose_g=float(e.dose_g) if e.dose_g is not None else None,
        chair_minutes=e.chair_minutes,
        outside_window=appt.outside_window if appt else False,
        pinned=appt.pinned if appt else False,
        unbookable_reason=e.unbookable_reason,
    )


def split_out(s: course_sessions.PhaseSplit) -> DoseSplit:
    return DoseSplit(
        phase=s.phase,
        ordered_days=s.split.ordered_days,
        days=s.days,
        minutes_as_ordered=s.split.minutes_as_ordered,
        session_minutes=s.split.longest,
        max_session_minutes=s.limit.minutes,
        detail=s.detail(),
    )


def unbookable_out(u: course_sessions.Unbookable) -> PlannedSession:
    return PlannedSession(
        phase=u.phase,
        sequence=u.sequence,
        window_start=u.window.earliest,
        window_end=u.window.latest,
        target_date=u.window.target,
        appointment=None,
        dose_g=None,
        chair_minutes=None,
        unbookable_reason=u.reason,
    )


def replan_out(r: replans.Replan, tz_name: str) -> LastReplan:
    tz = zone(tz_name)

    def place(p: replans.Place) -> ReplanPlace:
        return ReplanPlace(
            chair_id=p.chair_id,
            start=p.start.astimezone(tz),
            end=p.end.astimezone(tz),
            duration_minutes=int((p.end - p.start).total_seconds() // 60),
            dose_g=float(p.dose_g) if p.dose_g is not None else None,
        )

    def changed(c: replans.SessionChange) -> ReplanSession:
        return ReplanSession(
            appointment_id=c.appointment_id,
            phase="induction" if c.phase == "induction" else "maintenance",
            sequence=c.sequence,
            part=c.part,
            from_=place(c.before) if c.before is not None else None,
            to=place(c.after),
        )

    return LastReplan(
        at=r.at.astimezone(tz),
        actor_id=r.actor_id,
        trigger=r.cause,
        moved=[changed(c) for c in r.moved],
        resized=[changed(c) for c in r.resized],
        added=[changed(c) for c in r.added],
    )


def changes_out(result: cascade.CascadeResult, tz_name: str) -> CourseChanges:
    return CourseChanges(
        moved=[session_out(a, tz_name) for a in result.moved],
        resized=[session_out(a, tz_name) for a in result.resized],
        added=[session_out(a, tz_name) for a in result.added],
        problems=[unbookable_out(u) for u in result.problems],
    )


@router.post("/courses", status_code=status.HTTP_201_CREATED, response_model=CourseOut)
async def create_course(
    data: CourseCreate,
    session: Session,
    caller: Allowed,
    trail: Audited,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Order a treatment course for a patient: the drug, diagnosis and phases (the
    diagnosis preset where left out), the start date and preferred days and time. Its
    sessions are booked with POST /api/v1/courses/{course_id}/book. With an
    Idempotency-Key, a repeat of the same request gets the first answer again."""
    trail.saw(data.patient_id)
    post = IdempotentPost(session, caller, idempotency_key, "POST /api/v1/courses", data)
    if (earlier := await post.earlier()) is not None:
        return earlier
    course = await course_booking.order(session, data, caller.user_id)
    trail.saw(course.patient_id, course.id)
    location = f"/api/v1/courses/{course.id}"
    return await post.reply(status.HTTP_201_CREATED, course_out(course), location)


@router.get("/courses", response_model=Page[CourseOut])
async def list_courses(
    session: Session,
    _: Allowed,
    trail: Audited,
    patient_id: uuid.UUID | None = None,
    status: CourseStatus | None = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
) -> Page[CourseOut]:
    """Courses, a page at a time, by patient or status."""
    trail.saw(patient_id)
    items, nxt = await courses.list_courses(session, patient_id, status, limit, cursor)
    return Page[CourseOut](items=[course_out(c) for c in items], next_cursor=nxt)


@router.get("/courses/{course_id}", response_model=CourseOut)
async def get_course(
    course_id: uuid.UUID, session: Session, _: Allowed, trail: Audited, response: Response
) -> CourseOut:
    """One course, with its ETag."""
    course = await courses.get_course(session, course_id)
    trail.saw(course.patient_id)
    response.headers["ETag"] = etag(course.version)
    return course_out(course)


@router.post("/courses/{course_id}/book", response_model=BookingResult)
async def book_course(
    course_id: uuid.UUID,
    session: Session,
    caller: Allowed,
    trail: Audited,
    idempotency_key: IdempotencyKey = None,
    data: BookThrough | None = None,
) -> Response:
    """Book the course's sessions due by `through`; with no body, through the center's
    booking horizon."""
    data = data or BookThrough()
    scope = f"POST /api/v1/courses/{course_id}/book"
    post = IdempotentPost(session, caller, idempotency_key, scope, data)
    if (earlier := await post.earlier()) is not None:
        return earlier
    # Whose course it is goes on the audit trail even when the booking is refused.
    trail.saw((await courses.get_course(session, course_id)).patient_id)
    _, center, result = await course_booking.book_course(
        session, course_id, data.through, caller.user_id
    )
    stuck = result.unbookable
    out = BookingResult(
        booked=[session_out(a, center.timezone) for a in result.appointments],
        unbookable=None if stuck is None else unbookable_out(stuck),
        problems=[unbookable_out(u) for u in result.problems],
    )
    return await post.reply(status.HTTP_200_OK, out)


@router.get("/courses/{course_id}/plan", response_model=CoursePlan)
async def read_course_plan(
    course_id: uuid.UUID,
    session: Session,
    _: Allowed,
    trail: Audited,
    through: Annotated[LocalDate | None, Query()] = None,
) -> CoursePlan:
    """The course's sessions through `through` (by default a few months ahead): booked ones
    with their appointments, the rest as planned, the dose splits and the last replan."""
    course = await courses.get_course(session, course_id)
    trail.saw(course.patient_id)
    center = await course_sessions.center_of(session, course)
    today = course_sessions.today_at(center)
    shown = await course_plan.plan(session, course, today, through or today + PLAN_HORIZON)
    covers = await allocation.covers_of(
        session, [e.appointment.id for e in shown.entries if e.appointment]
    )
    last = await replans.last_replan(session, course.id)
    return CoursePlan(
        course_id=course.id,
        status=course.status,
        sessions=[
            planned_out(e, center.timezone, covers.get(e.appointment.id) if e.appointment else None)
            for e in shown.entries
        ],
        splits=[split_out(s) for s in shown.splits],
        last_replan=replan_out(last, center.timezone) if last is not None else None,
    )


@router.get("/courses/{course_id}/outcomes", response_model=list[OutcomeOut])
async def course_outcomes(
    course_id: uuid.UUID, session: Session, _: Allowed, trail: Audited
) -> list[OutcomeOut]:
    """Outcome scores and reactions session by session (proof of benefit for renewals)."""
    course = await courses.get_course(session, course_id)
    trail.saw(course.patient_id)
    tz = zone((await course_sessions.center_of(session, course)).timezone)
    return [
        OutcomeOut(
            appointment_id=appt.id,
            session_date=appt.start_at.astimezone(tz).date(),
            recorded_at=r.recorded_at.astimezone(tz),
            weight_kg=float(r.weight_kg) if r.weight_kg is not None else None,
            dose_given_g=float(r.dose_given_g) if r.dose_given_g is not None else None,
            reaction=r.reaction,
            tolerated_rate_mg_per_kg_min=float(r.tolerated_rate) if r.tolerated_rate else None,
            incat=r.incat,
            i_rods=r.i_rods,
            mrc_sum=r.mrc_sum,
            grip_strength_kg=float(r.grip_strength_kg) if r.grip_strength_kg is not None else None,
        )
        for r, appt in await courses.outcomes(session, course)
    ]


@router.post("/courses/{course_id}/{action}", response_model=CourseOut)
async def act_on_course(
    course_id: uuid.UUID,
    action: Literal["hold", "resume", "discontinue"],
    session: Session,
    caller: Allowed,
    trail: Audited,
    data: CourseAction | None = None,
) -> CourseOut:
    """Hold, resume or discontinue a course, with an optional note. 409 when the course's
    status does not allow it."""
    course = await courses.get_course(session, course_id, for_update=True)
    trail.saw(course.patient_id)
    course = await courses.act(session, course, action, caller.user_id, data.note if data else None)
    return course_out(course)
