"""Booking, listing, moving and progressing appointments."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response, status
from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.courses import changes_out
from app.api.covers import coverage_out
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
from app.api.idempotent import IdempotencyKey, IdempotentPost
from core.problems import Invalid
from core.schemas import LocalDate, Output, Page
from insurance import allocation
from insurance.allocation import SessionPayment
from pharmacy import service as pharmacy
from scheduling.appointments import booking
from scheduling.appointments.models import Appointment
from scheduling.appointments.schemas import (
    AppointmentChangeOut,
    AppointmentCreate,
    AppointmentOut,
    AppointmentReschedule,
    Status,
)
from scheduling.centers import repository as center_repository
from scheduling.courses import cascade
from scheduling.courses import changes as session_changes
from scheduling.courses.schemas import CourseSessionOut, VisitActionIn
from scheduling.localtime import zone

router = APIRouter(prefix="/api/v1", tags=["appointments"])
CONFLICT_DOC: dict[int | str, dict[str, Any]] = {
    409: {"description": "The chair, the patient or nurse capacity is taken"}
}
Action = Literal["check-in", "start", "complete", "cancel", "no-show"]


def appointment_out(
    appt: Appointment, tz_name: str, cover: SessionPayment | None = None
) -> AppointmentOut:
    tz = zone(tz_name)
    return AppointmentOut(
        id=appt.id,
        patient_id=appt.patient_id,
        chair_id=appt.chair_id,
        center_id=appt.center_id,
        start=appt.start_at.astimezone(tz),
        end=appt.end_at.astimezone(tz),
        duration_minutes=int((appt.end_at - appt.start_at).total_seconds() // 60),
        status=appt.status,
        version=appt.version,
        booked_by=appt.booked_by,
        created_at=appt.created_at.astimezone(tz),
        updated_at=appt.updated_at.astimezone(tz),
        outside_window=appt.outside_window,
        pinned=appt.pinned,
        coverage=coverage_out(cover),
    )


async def _tz(session: AsyncSession, center_id: uuid.UUID) -> str:
    return await center_repository.timezone_of(session, center_id)


@router.post(
    "/appointments",
    status_code=status.HTTP_201_CREATED,
    response_model=AppointmentOut,
    responses=CONFLICT_DOC,
)
async def create_appointment(
    data: AppointmentCreate,
    caller: Allowed,
    session: Session,
    trail: Audited,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Book an appointment in a chair. 409 when the chair, the patient or the nurses'
    capacity is taken then. With an Idempotency-Key, a repeat of the same request gets
    the first answer again, and one with another body 409."""
    trail.saw(data.patient_id)
    post = IdempotentPost(session, caller, idempotency_key, "POST /api/v1/appointments", data)
    if (earlier := await post.earlier()) is not None:
        return earlier
    appointment_id = uuid.uuid4()
    trail.saw(data.patient_id, appointment_id)
    # Recorded now, it is written with the booking's INSERT; a refusal rolls it back and is
    # recorded as one instead.
    await trail.record_now()
    try:
        placed = await booking.book(session, data, caller.user_id, appointment_id=appointment_id)
    except BaseException:
        trail.saw(data.patient_id)  # a refusal names no appointment: none was made
        raise
    appt = placed.appointment
    out = appointment_out(appt, placed.timezone)
    return await post.reply(status.HTTP_201_CREATED, out, f"/api/v1/appointments/{appt.id}")


class BookingCheck(Output):
    bookable: bool
    problem: dict[str, Any] | None = Field(
        default=None, description="the problem booking it would answer (type, title, detail…)"
    )


@router.post("/appointments/check", response_model=BookingCheck)
async def check_appointment(
    data: AppointmentCreate, caller: Allowed, session: Session, trail: Audited
) -> BookingCheck:
    """What booking this would answer, without booking it: every rule runs as for a real
    booking, and everything it wrote is rolled back (the web app shows it before saving)."""
    trail.saw(data.patient_id)
    problem = await booking.check(session, data, caller.user_id)
    if problem is None:
        return BookingCheck(bookable=True)
    body = {"type": problem.type, "title": problem.title, "detail": problem.detail}
    return BookingCheck(bookable=False, problem={**body, **problem.extra})


@router.get("/appointments", response_model=Page[AppointmentOut])
async def list_appointments(
    session: Session,
    _: Allowed,
    trail: Audited,
    center_id: uuid.UUID | None = None,
    patient_id: uuid.UUID | None = None,
    date: Annotated[LocalDate | None, Query()] = None,
    status: Status | None = None,
    limit: Limit = DEFAULT_PAGE,
    cursor: Cursor = None,
) -> Page[AppointmentOut]:
    """Appointments, a page at a time, by center, patient, local date or status."""
    trail.saw(patient_id)
    items, nxt = await booking.list_appointments(
        session,
        center_id=center_id,
        patient_id=patient_id,
        day=date,
        status=status,
        limit=limit,
        cursor=cursor,
    )
    zones = await booking.center_zones(session, {a.center_id for a in items})
    covers = await allocation.covers_of(session, [a.id for a in items if a.course_id])
    return Page[AppointmentOut](
        items=[appointment_out(a, zones[a.center_id], covers.get(a.id)) for a in items],
        next_cursor=nxt,
    )


@router.get("/appointments/{appointment_id}", response_model=AppointmentOut)
async def get_appointment(
    appointment_id: uuid.UUID, session: Session, _: Allowed, trail: Audited, response: Response
) -> AppointmentOut:
    """One appointment, with its ETag for a later change."""
    appt = await booking.get_appointment(session, appointment_id)
    trail.saw(appt.patient_id, appt.id)
    response.headers["ETag"] = etag(appt.version)
    cover = (await allocation.covers_of(session, [appt.id])).get(appt.id)
    return appointment_out(appt, await _tz(session, appt.center_id), cover)


@router.get("/appointments/{appointment_id}/history", response_model=list[AppointmentChangeOut])
async def get_appointment_history(
    appointment_id: uuid.UUID, session: Session, _: Allowed, trail: Audited
) -> list[AppointmentChangeOut]:
    """Every booking, move and status change of the visit, oldest first, with who made it and
    why when they said (a visit recorded late, a window overridden)."""
    appt = await booking.get_appointment(session, appointment_id)
    trail.saw(appt.patient_id, appt.id)
    tz = zone(await _tz(session, appt.center_id))
    return [
        AppointmentChangeOut(
            at=c.at.astimezone(tz),
            actor_id=c.actor_id,
            action=c.action,
            from_status=c.from_status,
            to_status=c.to_status,
            chair_id=c.chair_id,
            start=c.start_at.astimezone(tz),
            end=c.end_at.astimezone(tz),
            reason=c.reason,
        )
        for c in await booking.history(session, appt.id)
    ]


async def with_course_changes(
    session: AsyncSession, appt: Appointment, tz_name: str, changes: cascade.CascadeResult | None
) -> CourseSessionOut:
    cover = (await allocation.covers_of(session, [appt.id])).get(appt.id)
    out = appointment_out(appt, tz_name, cover).model_dump()
    return CourseSessionOut(
        **out, course_changes=changes_out(changes, tz_name) if changes is not None else None
    )


@router.patch(
    "/appointments/{appointment_id}", response_model=CourseSessionOut, responses=CONFLICT_DOC
)
async def reschedule_appointment(
    appointment_id: uuid.UUID,
    data: AppointmentReschedule,
    version: IfMatch,
    session: Session,
    caller: Allowed,
    trail: Audited,
    response: Response,
) -> CourseSessionOut:
    """Moving a course session re-places the later ones (`course_changes` says how)."""
    placed, changes = await session_changes.move(
        session, appointment_id, version, data, caller.user_id
    )
    trail.saw(placed.appointment.patient_id, appointment_id)
    response.headers["ETag"] = etag(placed.appointment.version)
    return await with_course_changes(session, placed.appointment, placed.timezone, changes)


@router.post("/appointments/{appointment_id}/{action}", response_model=CourseSessionOut)
async def act_on_appointment(
    appointment_id: uuid.UUID,
    action: Action,
    session: Session,
    caller: Allowed,
    trail: Audited,
    response: Response,
    body: VisitActionIn | None = None,
) -> CourseSessionOut:
    """`complete` may carry the session record (weight, dose given, reaction, scores) and
    the vials used, by lot (drawn from the center's stock in the same transaction);
    `cancel` and `no-show` a `reason`, kept on the visit's history. A cancelled or missed
    course session, or a record that changes the dose or the tolerated rate, re-plans the
    course's later sessions (`course_changes` says how)."""
    if body is not None and body.vials_used and action != "complete":
        raise Invalid("vials_used: only completing a session records the vials used")
    appt, changes = await session_changes.progress(
        session, appointment_id, action, body, caller.user_id
    )
    if body is not None and body.vials_used:
        # Scheduling knows nothing of stock: the pharmacy draws it after, in this transaction.
        await pharmacy.record_vials_used(session, appt, body.vials_used, caller.user_id)
    trail.saw(appt.patient_id, appt.id)
    response.headers["ETag"] = etag(appt.version)
    return await with_course_changes(session, appt, await _tz(session, appt.center_id), changes)
