"""What follows when a nurse moves or progresses a session: the course is re-planned, units
are drawn from the authorization that pays, and billing's alerts are recomputed — all in the
request's one transaction. Flushes; never commits.

This is where scheduling and insurance meet, so it lives in `app/`: neither domain imports
the other's services.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from core.problems import Conflict, Invalid
from insurance import allocation, usage
from scheduling.appointments import booking
from scheduling.appointments.booking import Placed
from scheduling.appointments.models import Appointment
from scheduling.appointments.schemas import AppointmentReschedule
from scheduling.centers import repository as center_repository
from scheduling.courses import cascade
from scheduling.courses import service as courses
from scheduling.courses.schemas import SessionRecordIn


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
    appt = await booking.get_appointment(session, appointment_id, for_update=True)
    blocking = False
    unpaid_before: set[uuid.UUID] = set()
    if appt.course_id is not None:
        center = await center_repository.get_center(session, appt.center_id)
        blocking = center.coverage_policy == "block"
        if blocking:
            unpaid_before = set(await allocation.uncovered(session, appt.patient_id))
    placed = await booking.reschedule(session, appt, version, data, actor_id)
    if appt.course_id is None:
        return placed, None
    changes = await cascade.cascade(session, appt.course_id, actor_id, keep=appt.id)
    if blocking:
        unpaid = await allocation.uncovered(session, appt.patient_id)
        newly = {a: why for a, why in unpaid.items() if a not in unpaid_before}
        if newly:
            why = next(iter(newly.values()))
            raise Conflict(
                f"insurance would not pay for {len(newly)} session(s) after this move: {why}"
            )
    await allocation.recompute_patient(session, appt.patient_id)
    return placed, changes


async def progress(
    session: AsyncSession,
    appointment_id: uuid.UUID,
    action: str,
    record: SessionRecordIn | None,
    actor_id: uuid.UUID | None,
) -> tuple[Appointment, cascade.CascadeResult | None]:
    """Check in, start, complete, cancel or mark a no-show. A cancelled or missed course
    session, or a record with a new weight or tolerated rate, re-plans the course; a completed
    one draws its units."""
    if record is not None and action != "complete":
        raise Invalid("only completing a session takes a session record")
    weighed = record is not None and record.weight_kg is not None
    if weighed:
        # A new weight re-plans all the patient's courses: lock them in the usual order first.
        await cascade.lock_patient_courses(
            session, await booking.patient_of(session, appointment_id)
        )
    appt = await booking.get_appointment(session, appointment_id, for_update=True)
    appt = await booking.transition(session, appt, action, actor_id)
    changes = None
    if record is not None:
        await courses.record_session(session, appt, record, actor_id)
        if weighed:
            # Every course of the patient doses by the new weight, not only this one.
            replanned = await cascade.replan_patient(session, appt.patient_id, actor_id)
            changes = replanned.get(appt.course_id) if appt.course_id else None
    lost = appt.status in ("cancelled", "no_show")
    if appt.course_id is not None and changes is None and (lost or record is not None):
        changes = await cascade.cascade(session, appt.course_id, actor_id)
    if appt.course_id is not None and appt.status == "completed":
        await usage.consume(session, appt.id, record.dose_given_g if record else None)
    if appt.course_id is not None or weighed:
        await allocation.recompute_patient(session, appt.patient_id)
    return appt, changes
