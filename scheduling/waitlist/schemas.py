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
    appointment_id: uuid.UUID | None = Field(
        default=None, description="the course's booked session an accepted offer brings forward"
    )
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
    appointment_id: uuid.UUID | None
    earliest: dt.date
    latest: dt.date
    duration_minutes: int
    chair_kind: ChairKind
    priority: int
    status: WaitlistStatus
    note: str | None
    created_at: dt.datetime
    created_by: uuid.UUID | None = Field(description="None: put on by the booking run")
    version: int


class WaitlistFits(Output):
    items: list[WaitlistOut]


OfferStatus = Literal["open", "accepted", "declined", "expired", "withdrawn"]
OpeningCause = Literal["cancelled", "no_show", "moved"]


class OfferOut(Output):
    """An opening offered to one entry: the visit proposed and how long it is held."""

    id: uuid.UUID
    opening_id: uuid.UUID
    entry_id: uuid.UUID
    patient_id: uuid.UUID
    center_id: uuid.UUID
    chair_id: uuid.UUID
    start: dt.datetime
    end: dt.datetime
    duration_minutes: int
    status: OfferStatus
    offered_at: dt.datetime
    hold_until: dt.datetime
    answered_at: dt.datetime | None
    appointment_id: uuid.UUID | None = Field(description="what accepting it booked or moved")
    opening_start: dt.datetime
    opening_end: dt.datetime
    cause: OpeningCause = Field(description="what freed the chair")
    version: int


class FiguresOut(Output):
    """What the waitlist recovered at a center, for openings starting `from`..`to` (local)."""

    center_id: uuid.UUID
    from_: dt.date = Field(serialization_alias="from")
    to: dt.date
    openings: int
    offered: int = Field(description="openings offered to at least one entry")
    offers: int
    filled: int
    fill_rate: float | None = Field(description="filled / openings; None without openings")
    median_minutes_to_fill: float | None = Field(
        description="from the opening to the accept, over the filled ones"
    )
    chair_hours_recovered: float = Field(description="the filled visits' hours in the chair")
