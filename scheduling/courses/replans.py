"""What a course's re-plan changed, kept whole in `course_replans` so the plan can say what
the last one did. Writes in the caller's transaction; never commits.

A re-plan (`cascade.cascade`) runs in the transaction of the change that set it off: a nurse
moving, cancelling or completing a session, a missed session, the patient's new weight. Its
caller says which, in words (`cause_text`); the re-plan notes where each session stood before
it (`places`) and, once done, records each session it moved, resized or added (`record`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.clock import utcnow
from scheduling.appointments.models import Appointment
from scheduling.courses.models import CourseReplan

PATIENT_CHANGED = "the patient's weight, height or sex changed"
Kind = Literal["moved", "resized", "added"]

# --- pure: the words ---------------------------------------------------------------------------


def session_label(phase: str | None, sequence: int | None, part: int = 1) -> str:
    """A session as nurses name it: "loading day 2", "maintenance session 3 (second day)"."""
    if phase == "induction":
        return f"loading day {sequence}"
    label = f"maintenance session {sequence}"
    return f"{label} (second day)" if part == 2 else label


def cause_text(
    phase: str | None,
    sequence: int | None,
    part: int,
    action: str | None,
) -> str:
    """What set a re-plan off, from the change a person made (None: the patient's record).
    Never the person's own words (a cancel's reason): those stay on that visit's history, not
    on every session the re-plan moved and in what billing reads of the plan."""
    if action is None:
        return PATIENT_CHANGED
    label = session_label(phase, sequence, part)
    what = {
        "cancel": "was cancelled",
        "no-show": "was missed (no-show)",
        "complete": "was given and recorded",
        "rescheduled": "was moved",
    }.get(action, f"changed ({action})")
    return f"{label} {what}"


def history_reason(cause: str) -> str:
    """What a re-plan's move says on the visit's history."""
    return f"Re-planned after {cause}"[:500]


@dataclass(frozen=True)
class Place:
    chair_id: uuid.UUID
    start: datetime
    end: datetime
    dose_g: Decimal | None


@dataclass(frozen=True)
class SessionChange:
    appointment_id: uuid.UUID
    kind: Kind
    phase: str
    sequence: int
    part: int
    before: Place | None  # None: a session the re-plan added
    after: Place


@dataclass(frozen=True)
class Replan:
    at: datetime
    actor_id: uuid.UUID | None
    cause: str
    moved: list[SessionChange]
    resized: list[SessionChange]
    added: list[SessionChange]


def place_of(appt: Appointment) -> Place:
    return Place(appt.chair_id, appt.start_at, appt.end_at, appt.dose_g)


def places(sessions: Iterable[Appointment]) -> dict[uuid.UUID, Place]:
    """Where each session stands before the re-plan changes it (values, not the rows the
    re-plan will change)."""
    return {a.id: place_of(a) for a in sessions}


def changes(before: dict[uuid.UUID, Place], changed: Sequence[Appointment]) -> list[SessionChange]:
    """Pure: each session changed, as moved (another day, time or chair), resized (same
    place, new dose or length) or added (no place before), in course order."""
    found = []
    for appt in {a.id: a for a in changed}.values():
        was, now = before.get(appt.id), place_of(appt)
        if was == now:
            continue
        kind: Kind = (
            "added"
            if was is None
            else "resized"
            if (was.chair_id, was.start) == (now.chair_id, now.start)
            else "moved"
        )
        phase = appt.phase or "maintenance"
        found.append(SessionChange(appt.id, kind, phase, appt.sequence or 0, appt.part, was, now))
    return sorted(found, key=lambda c: (c.phase != "induction", c.sequence, c.part))


def _place_json(p: Place | None) -> dict[str, Any] | None:
    if p is None:
        return None
    dose = str(p.dose_g) if p.dose_g is not None else None
    return {
        "chair_id": str(p.chair_id),
        "start": p.start.isoformat(),
        "end": p.end.isoformat(),
        "dose_g": dose,
    }


def _place(d: dict[str, Any] | None) -> Place | None:
    if d is None:
        return None
    dose = Decimal(d["dose_g"]) if d["dose_g"] is not None else None
    start, end = datetime.fromisoformat(d["start"]), datetime.fromisoformat(d["end"])
    return Place(uuid.UUID(d["chair_id"]), start, end, dose)


async def record(
    session: AsyncSession,
    course_id: uuid.UUID,
    before: dict[uuid.UUID, Place],
    changed: Sequence[Appointment],
    cause: str,
    actor_id: uuid.UUID | None,
) -> None:
    """Keep what the re-plan changed; nothing when it changed nothing."""
    found = changes(before, changed)
    if not found:
        return
    rows = [
        {
            "appointment_id": str(c.appointment_id),
            "kind": c.kind,
            "phase": c.phase,
            "sequence": c.sequence,
            "part": c.part,
            "before": _place_json(c.before),
            "after": _place_json(c.after),
        }
        for c in found
    ]
    await session.execute(
        insert(CourseReplan).values(
            id=uuid.uuid4(),
            course_id=course_id,
            at=utcnow(),
            actor_id=actor_id,
            cause=cause[:300],
            changes=rows,
        )
    )


async def last_replan(session: AsyncSession, course_id: uuid.UUID) -> Replan | None:
    """The course's latest re-plan that changed any session, or None when none has."""
    row = await session.scalar(
        select(CourseReplan)
        .where(CourseReplan.course_id == course_id)
        .order_by(CourseReplan.at.desc(), CourseReplan.id.desc())
        .limit(1)
    )
    if row is None:
        return None
    kept = [
        SessionChange(
            uuid.UUID(c["appointment_id"]),
            c["kind"],
            c["phase"],
            c["sequence"],
            c["part"],
            _place(c["before"]),
            after,
        )
        for c in row.changes
        if (after := _place(c["after"])) is not None
    ]
    return Replan(
        at=row.at,
        actor_id=row.actor_id,
        cause=row.cause,
        moved=[c for c in kept if c.kind == "moved"],
        resized=[c for c in kept if c.kind == "resized"],
        added=[c for c in kept if c.kind == "added"],
    )
