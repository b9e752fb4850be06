"""A course's plan: every upcoming session with its window, booking, dose and chair time."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from scheduling.appointments.models import ACTIVE_STATUSES, Appointment
from scheduling.courses import sessions as course_sessions
from scheduling.courses.models import Course
from scheduling.courses.recurrence import Window
from scheduling.localtime import zone

# --- the plan ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanEntry:
    phase: str
    sequence: int
    window: Window
    appointment: Appointment | None
    dose_g: Decimal | None
    chair_minutes: int | None
    unbookable_reason: str | None


async def plan(
    session: AsyncSession, course: Course, today: date, through: date
) -> list[PlanEntry]:
    """Every upcoming session up to `through`: booked ones with their appointment, the rest
    where they are due, each with its window (from its predecessor), dose and chair time."""
    ctx = await course_sessions.load_context(session, course)
    tz_name = ctx.center.timezone
    stuck = course.unbookable or {}
    entries: list[PlanEntry] = []
    reported: set[str] = set()  # phases whose recorded problem is already shown
    previous: date | None = None
    for appt in ctx.sessions:
        day = course_sessions.local_day(appt, tz_name)
        if appt.phase == "induction" or course.interval_days is None:
            window = Window(day, day, day)
        else:
            window = course_sessions.window_after(course, previous)
        if day >= today and appt.status in ACTIVE_STATUSES:
            minutes = int((appt.end_at - appt.start_at).total_seconds() // 60)
            problem = None
            if day not in window:  # kept where it was when it could not be re-placed
                recorded = stuck.get("phase") == appt.phase and stuck.get("sequence") == str(
                    appt.sequence
                )
                problem = stuck.get("reason") if recorded else "booked outside its window"
                if recorded:
                    reported.add(appt.phase or "")
            entries.append(
                PlanEntry(
                    appt.phase or "",
                    appt.sequence or 0,
                    window,
                    appt,
                    appt.dose_g,
                    minutes,
                    problem,
                )
            )
        previous = day

    def reason(phase: str) -> str | None:
        """Why the last booking run could not place this phase's next session: shown on the
        first unbooked session of the phase (numbers of cancelled sessions are not reused)."""
        if stuck.get("phase") != phase or phase in reported:
            return None
        reported.add(phase)
        return stuck.get("reason")

    if course.status != "active":
        return entries
    loading = [a for a in ctx.sessions if a.phase == "induction"]
    missing = (course.induction_days or 0) - len(loading)
    if loading and course_sessions.lost_days_are_final(ctx):
        missing = 0
    maintained = any(a.phase == "maintenance" for a in ctx.sessions)
    if missing > 0:
        # Not booked yet (all days from the start), or days lost (added after the last one).
        if loading:
            first_day = await course_sessions.next_loading_day(session, ctx)
            sequence = await course_sessions.last_sequence(session, course.id, "induction")
        else:
            first_day, sequence = course.start_date, 0
        for offset in range(missing):
            day = first_day + timedelta(days=offset)
            first = not loading and offset == 0
            figures = course_sessions.session_figures(
                course, ctx.product, ctx.patient, "induction", first
            )
            entries.append(
                PlanEntry(
                    "induction",
                    sequence + offset + 1,
                    Window(day, day, day),
                    None,
                    figures.dose_g,
                    figures.chair_minutes,
                    reason("induction"),
                )
            )
            if not maintained:  # else maintenance goes on from its own last session
                previous = day
    if course.interval_days:
        # Kept sessions count towards the cycles; numbers continue after the highest used.
        count = sum(1 for a in ctx.sessions if a.phase == "maintenance")
        sequence = await course_sessions.last_sequence(session, course.id, "maintenance")
        figures = course_sessions.session_figures(
            course, ctx.product, ctx.patient, "maintenance", previous is None
        )
        while course.cycles is None or count < course.cycles:
            window = course_sessions.window_after(course, previous)
            if window.target > through or (course.end_date and window.target > course.end_date):
                break
            sequence += 1
            count += 1
            entries.append(
                PlanEntry(
                    "maintenance",
                    sequence,
                    window,
                    None,
                    figures.dose_g,
                    figures.chair_minutes,
                    reason("maintenance"),
                )
            )
            previous = window.target
    tz = zone(tz_name)
    return sorted(
        entries,
        key=lambda e: (
            e.appointment.start_at.astimezone(tz).date() if e.appointment else e.window.target
        ),
    )
