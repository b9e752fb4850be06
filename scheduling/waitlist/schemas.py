"""Waitlist requests and replies."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StringConstraints

from core.schemas import Input, LocalDate, Output, printable

ChairKind = Literal["chair", "bed", "isolation"]
WaitlistStatus = Literal["waiting", "booked", "removed"]
Note = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=500),
    AfterValidator(printable),
]
Duration = Annotated[int, Field(ge=15, le=720, description="minutes in the chair")]
Priority = Annotated[int, Field(ge=1, le=5, description="1 is the most urgent, 5 the least")]


class WaitlistCreate(Input):
    """A patient waiting for an opening at a center, any day from `earliest` to `latest`."""

    center_id: uuid.UUID
    patient_id: uuid.UUID
    course_id: uuid.UUID | None = Field(default=None, description="the patient's course, if any")
    earliest: LocalDate
    latest: LocalDate
    duration_minutes: Duration
    chair_kind: ChairKind = "chair"
    priority: Priority = 3
    note: Note | None = None


class WaitlistUpdate(Input):
    """The window, the priority or the note of a waiting entry; or `status: removed`."""

    earliest: LocalDate | None = None
    latest: LocalDate | None = None
    priority: Priority | None = None
    note: Note | None = None
    status: Literal["removed"] | None = None


class WaitlistOut(Output):
    id: uuid.UUID
    center_id: uuid.UUID
    patient_id: uuid.UUID
    course_id: uuid.UUID | None
    earliest: dt.date
    latest: dt.date
    duration_minutes: int
    chair_kind: ChairKind
    priority: int
    status: WaitlistStatus
    note: str | None
    created_at: dt.datetime
    created_by: uuid.UUID
    version: int


class WaitlistFits(Output):
    items: list[WaitlistOut]
