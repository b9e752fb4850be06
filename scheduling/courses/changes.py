"""What follows when a nurse changes a session or a patient: the course is re-planned, and
what that means for insurance (units drawn, cover and billing alerts recomputed) is marked
for the unit of work to settle, all in the caller's one transaction. Flushes; never commits.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core import locks, settle
from core.problems import Conflict, Invalid, OutsideWindow
from patients import service as patients
from patients.models import Patient
from patients.schemas import PatientUpdate
from scheduling import cover
from scheduling.appointments import booking
from scheduling.appointments.booking import Placed
from scheduling.appointments.models import Appointment
from scheduling.appointments.schemas import AppointmentReschedule
from scheduling.centers import repository as center_repository
from scheduling.courses import cascade, replans
from scheduling.courses import service as courses
from scheduling.courses import sessions as course_sessions
from scheduling.courses.models import Course
from scheduling.courses.schemas import REASONED_ACTIONS, VisitActionIn
from scheduling.courses.windows import session_window
from scheduling.localtime import local_date, zone

MEASURES = frozenset({"weight_kg", "height_cm", "sex"})  # what dosing weight comes from


async def locked_session(
    session: AsyncSession, appointment_id: uuid.UUID, to_chair: uuid.UUID | None = None
) -> Appointment:
    """The appointment, its row locked. A course session's change may re-place the course's
    other sessions, so its course row and its center's planning lock are taken first:
    everyone who changes a course's sessions takes the course, the planning, the
    appointments, then the days (core.locks), and no two of them wait on each other. A
    course session moving to a chair at another center plans there too: its day there is
    followed by the patient's cover lock."""
    course_id = await session.scalar(
        select(Appointment.course_id).where(Appointment.id == appointment_id)
    )
    if course_id is not None:
        centers = {c.center_id for c in await locks.courses(session, Course, [course_id])}
        if to_chair is not None:
            centers.add((await center_repository.chair_at_center(session, to_chair)).center_id)
        await locks.course_planning(session, centers)
    return await booking.get_appointment(session, appointment_id, for_update=True)


@settle.use_case
async def move(
    session: AsyncSession,
    appointment_id: uuid.UUID,
    version: int,
    data: AppointmentReschedule,
    actor_id: uuid.UUID | None,
) -> tuple[Placed, cascade.CascadeResult | None]:
    """Move a session; a course session's later ones follow it. At a center whose policy is
    `block`, the move is refused (409, nothing changes) when it would leave a session of the
    course, the moved one or one that followed it, where no authorization pays."""
    appt = await locked_session(session, appointment_id, data.chair_id)
    blocking = False
    unpaid_before: set[uuid.UUID] = set()
    if appt.course_id is not None:
        center = await center_repository.get_center(session, appt.center_id)
        blocking = center.coverage_policy == "block"
        if blocking:
            # Read without the cover lock: that comes last, after the days (core.locks).
            before = await cover.check().uncovered(session, appt.patient_id, locked=False)
            unpaid_before = set(before)
    if appt.course_id is not None:
        await _keep_in_window(session, appt, data)
    placed = await booking.reschedule(session, appt, version, data, actor_id)
    if appt.course_id is None:
        return placed, None
    moved = replans.cause_text(appt.phase, appt.sequence, appt.part, "rescheduled")
    changes = await cascade.cascade(session, appt.course_id, actor_id, keep=appt.id, cause=moved)
    if blocking:
        unpaid = await cover.check().uncovered(session, appt.patient_id)
        newly = {a: why for a, why in unpaid.items() if a not in unpaid_before}
        if newly:
            why = next(iter(newly.values()))
            raise Conflict(
                f"insurance would not pay for {len(newly)} session(s) after this move: {why}"
            )
    settle.mark(session, settle.COVER, appt.patient_id)
    return placed, changes


async def _keep_in_window(
    session: AsyncSession, appt: Appointment, data: AppointmentReschedule
) -> None:
    """A course session moved to another day stays inside its window (409 otherwise) unless
    the nurse overrides it with a reason; either way a person placed it, so it is pinned: no
    re-plan moves it back."""
    assert appt.course_id is not None
    course = await courses.get_course(session, appt.course_id)
    ctx = await course_sessions.load_context(session, course)
    window = await session_window(session, ctx, appt)
    tz = zone(ctx.center.timezone)
    day = local_date(booking.new_start(data, ctx.center.timezone) or appt.start_at, tz)
    outside = day not in window
    if outside and day != local_date(appt.start_at, tz) and not data.override_reason:
        raise OutsideWindow(
            f"this {appt.phase} session belongs between {window.earliest.isoformat()} and "
            f"{window.latest.isoformat()}; to move it anyway, give override_reason",
            window_start=window.earliest.isoformat(),
            window_end=window.latest.isoformat(),
        )
    appt.outside_window = outside
    appt.pinned = True


@settle.use_case
async def progress(
    session: AsyncSession,
    appointment_id: uuid.UUID,
    action: str,
    body: VisitActionIn | None,
    actor_id: uuid.UUID | None,
) -> tuple[Appointment, cascade.CascadeResult | None]:
    """Check in, start, complete, cancel or mark a no-show (a cancel or no-show with its
    reason). A cancelled or missed course session, or a record with a new weight or tolerated
    rate, re-plans the course; a completed one draws its units."""
    record, reason = body.parts(action) if body is not None else (None, None)
    if record is not None and action != "complete":
        raise Invalid("only completing a session takes a session record")
    if reason is not None and action not in REASONED_ACTIONS:
        raise Invalid("only a cancel or a no-show takes a reason")
    weighed = record is not None and record.weight_kg is not None
    if weighed:
        # A new weight re-plans all the patient's courses: lock them in the usual order first.
        patient_id = await booking.patient_of(session, appointment_id)
        await cascade.lock_patient_courses(session, patient_id)
    appt = await locked_session(session, appointment_id)
    appt = await booking.transition(session, appt, action, actor_id, reason)
    changes = None
    if record is not None:
        await courses.record_session(session, appt, record, actor_id)
        if weighed:
            # Every course of the patient doses by the new weight, not only this one.
            replanned = await cascade.replan_patient(session, appt.patient_id, actor_id)
            changes = replanned.get(appt.course_id) if appt.course_id else None
    lost = appt.status in ("cancelled", "no_show")
    if appt.course_id is not None and changes is None and (lost or record is not None):
        why = replans.cause_text(appt.phase, appt.sequence, appt.part, action)
        changes = await cascade.cascade(session, appt.course_id, actor_id, cause=why)
    if appt.course_id is not None and appt.status == "completed":
        dose_given = record.dose_given_g if record else None
        settle.mark(session, settle.SESSION_GIVEN, (appt.id, dose_given))
    if appt.course_id is not None or weighed:
        settle.mark(session, settle.COVER, appt.patient_id)
    return appt, changes


@settle.use_case
async def update_patient(
    session: AsyncSession,
    patient_id: uuid.UUID,
    version: int,
    data: PatientUpdate,
    actor_id: uuid.UUID | None,
) -> Patient:
    """Change a patient's record. A new weight, height or sex changes the dosing weight: every
    booked session of their courses gets the dose and chair time it now needs, and billing's
    units follow the dose."""
    measured = bool(MEASURES & data.model_fields_set)
    if measured:
        # The courses, then the patient row: the order every planner takes them in.
        await cascade.lock_patient_courses(session, patient_id)
    patient = await patients.get_patient(session, patient_id)
    patient = await patients.update_patient(session, patient, version, data, actor_id)
    if measured:
        await cascade.replan_patient(session, patient.id, actor_id)
        settle.mark(session, settle.COVER, patient.id)
    return patient
