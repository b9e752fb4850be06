"""Appointment reminders: one event per appointment, a set time before it starts."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.settings import get_settings
from core.clock import utcnow
from core.db import Database
from core.outbox import events
from scheduling.appointments.models import Appointment


async def send_reminders(db: Database) -> dict[str, int]:
    """An `appointment.reminder` event for each booked appointment starting within the next
    `reminder_hours` (48 by default): exactly once per appointment, however often this runs
    or however many schedulers run it (the outbox's unique dedupe key sees to it)."""
    hours = get_settings().reminder_hours
    now = utcnow()
    counts = {"due": 0, "reminded": 0}
    async with db.unit_of_work() as session:
        due = await session.scalars(
            select(Appointment).where(
                Appointment.status == "booked",
                Appointment.start_at > now,
                Appointment.start_at <= now + timedelta(hours=hours),
            )
        )
        for appt in due:
            counts["due"] += 1
            made = await events.emit_once(
                session,
                "appointment.reminder",
                # Moved after its reminder went out, an appointment is reminded again.
                f"reminder:{appt.id}:{appt.start_at.isoformat()}",
                appointment_id=appt.id,
                patient_id=appt.patient_id,
                center_id=appt.center_id,
                start=appt.start_at,
                end=appt.end_at,
            )
            counts["reminded"] += int(made)
    return counts
