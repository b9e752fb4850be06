"""Request and response models for appointments, availability and the day board."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from core.schemas import HHMM, Input, Instant, LocalDate, Output
from scheduling.centers.schemas import ChairKind

# Why a person overrode a rule: kept on the visit's history, so something a colleague can read.
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=500)]

Status = Literal["booked", "checked_in", "in_progress", "completed", "cancelled", "no_show"]


class SessionPaymentOut(Output):
    """Whether insurance pays for a course session, and which authorization (billing's view)."""

    state: Literal["covered", "uncovered"]
    authorization_id: uuid.UUID | None
    reason: str | None


class AppointmentCreate(Input):
    """Give `start` as an instant, or `local_date` + `local_time` in the center's time zone;
    and `end` or `duration_minutes`."""

    patient_id: uuid.UUID
    chair_id: uuid.UUID
    start: Instant | None = None
    local_date: LocalDate | None = None
    local_time: HHMM | None = None
    end: Instant | None = None
    duration_minutes: int | None = Field(default=None, ge=1, le=24 * 60)
    record_reason: Reason | None = Field(
        default=None, description="books a visit whose start has passed: why it is recorded late"
    )

    @model_validator(mode="after")
    def _shape(self) -> AppointmentCreate:
        local = self.local_date is not None or self.local_time is not None
        if (self.start is None) == (not local) or (
            local and (self.local_date is None or self.local_time is None)
        ):
            raise ValueError("give either start, or both local_date and local_time")
        if (self.end is None) == (self.duration_minutes is None):
            raise ValueError("give either end or duration_minutes")
        return self


class AppointmentReschedule(Input):
    """Give the new `start` as an instant, or `local_date` + `local_time` in the center's time
    zone (of the chair it moves to)."""

    start: Instant | None = None
    local_date: LocalDate | None = None
    local_time: HHMM | None = None
    end: Instant | None = None
    duration_minutes: int | None = Field(default=None, ge=1, le=24 * 60)
    chair_id: uuid.UUID | None = None
    record_reason: Reason | None = Field(
        default=None, description="moves a visit to a start that has passed: why"
    )
    override_reason: Reason | None = Field(
        default=None,
        description="moves a course session outside its clinical window on purpose: why",
    )

    @model_validator(mode="after")
    def _shape(self) -> AppointmentReschedule:
        if self.end is not None and self.duration_minutes is not None:
            raise ValueError("give either end or duration_minutes, not both")
        if (self.local_date is None) != (self.local_time is None):
            raise ValueError("give both local_date and local_time")
        if self.local_date is not None and self.start is not None:
            raise ValueError("give either start, or local_date and local_time")
        if (
            self.start is None
            and self.local_date is None
            and self.end is None
            and self.duration_minutes is None
            and (self.chair_id is None)
        ):
            raise ValueError("nothing to change")
        return self


class AppointmentOut(Output):
    id: uuid.UUID
    patient_id: uuid.UUID
    chair_id: uuid.UUID
    center_id: uuid.UUID
    start: datetime
    end: datetime
    duration_minutes: int
    status: Status
    version: int
    booked_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    outside_window: bool = Field(
        default=False, description="a course session placed outside its window on purpose"
    )
    pinned: bool = Field(default=False, description="placed by a person: re-plans leave it")
    coverage: SessionPaymentOut | None = Field(
        default=None, description="course sessions only: who pays, or why nobody does"
    )


class AppointmentChangeOut(Output):
    at: datetime
    actor_id: uuid.UUID | None
    action: str
    from_status: Status | None
    to_status: Status
    chair_id: uuid.UUID
    start: datetime
    end: datetime
    reason: str | None


class Slot(Output):
    chair_id: uuid.UUID
    chair_label: str
    start: datetime
    end: datetime


class Availability(Output):
    slots: list[Slot]


class BoardAppointment(Output):
    id: uuid.UUID
    patient_id: uuid.UUID
    patient_name: str = Field(description="family, given")
    mrn: str
    start: datetime
    end: datetime
    status: Status
    product: str | None = Field(description="a course session's product")
    dose_g: float | None
    phase: Literal["induction", "maintenance"] | None
    sequence: int | None = Field(description="the session's number in its phase")
    coverage: SessionPaymentOut | None = None
    version: int = Field(description="for If-Match when moving it")
    outside_window: bool = False


class BoardChair(Output):
    id: uuid.UUID
    label: str
    kind: ChairKind
    active: bool
    appointments: list[BoardAppointment]


class BoardSlot(Output):
    start: datetime
    census: int
    nurses: int
    nurse_capacity: int
    starts: int


class DayBoard(Output):
    center_id: uuid.UUID
    date: date
    opens: datetime | None
    closes: datetime | None
    closed_reason: str | None
    chairs: list[BoardChair]
    slots: list[BoardSlot]


class WeekBoard(Output):
    center_id: uuid.UUID
    start: date
    days: list[DayBoard] = Field(description="seven days from `start`")
