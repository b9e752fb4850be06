"""Request and response models for treatment courses."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field, model_validator

from core.schemas import HHMM, Input, Instant, LocalDate, Output, Text
from scheduling.appointments.schemas import AppointmentOut
from scheduling.catalog.schemas import (
    Diagnosis,
    InductionIn,
    InductionOut,
    MaintenanceIn,
    MaintenanceOut,
    Rate,
)
from scheduling.centers.schemas import ChairKind

CourseStatus = Literal["active", "on_hold", "completed", "discontinued"]


class CourseCreate(Input):
    """`induction` and `maintenance` left out entirely take the diagnosis preset; `null` means
    the course has no such phase."""

    patient_id: uuid.UUID
    center_id: uuid.UUID
    product_id: uuid.UUID
    diagnosis_code: Diagnosis
    induction: InductionIn | None = None
    maintenance: MaintenanceIn | None = None
    start_date: LocalDate
    preferred_weekdays: list[Annotated[int, Field(ge=0, le=6)]] = Field(
        default_factory=list, max_length=7
    )
    preferred_start_time: HHMM = "09:00"
    chair_kind: ChairKind = "chair"
    weight_basis: Literal["actual", "adjusted"] = "actual"
    vial_tolerance_pct: Annotated[Decimal, Field(ge=0, le=20)] | None = None
    renal_risk: bool = False
    thrombosis_risk: bool = False
    tolerated_rate_mg_per_kg_min: Rate | None = None
    dose_override_reason: Text | None = Field(
        default=None, description="required for a dose outside 0.1-3 g/kg"
    )


class CourseOut(Output):
    id: uuid.UUID
    patient_id: uuid.UUID
    center_id: uuid.UUID
    product_id: uuid.UUID
    diagnosis_code: str
    status: CourseStatus
    induction: InductionOut | None
    maintenance: MaintenanceOut | None
    start_date: date
    preferred_weekdays: list[int]
    preferred_start_time: str
    chair_kind: ChairKind
    weight_basis: str
    vial_tolerance_pct: float | None
    renal_risk: bool
    thrombosis_risk: bool
    tolerated_rate_mg_per_kg_min: float | None
    dose_override_reason: str | None
    version: int


class CourseAction(Input):
    note: Text | None = None


class BookThrough(Input):
    through: LocalDate | None = Field(
        default=None,
        description="book sessions due up to this date, at most a year ahead; left out (or "
        "no body at all): through the center's booking horizon, as the nightly run does",
    )


class SessionAppointment(Output):
    id: uuid.UUID
    phase: Literal["induction", "maintenance"] | None
    sequence: int | None
    chair_id: uuid.UUID
    start: datetime
    end: datetime
    duration_minutes: int
    dose_g: float | None
    status: str


class PlannedSession(Output):
    phase: Literal["induction", "maintenance"]
    sequence: int
    window_start: date
    window_end: date
    target_date: date
    appointment: SessionAppointment | None
    dose_g: float | None
    chair_minutes: int | None
    coverage: Literal["covered", "uncovered", "unknown"] = Field(
        default="unknown", description="unknown until the session is booked"
    )
    coverage_reason: str | None = None
    unbookable_reason: str | None = None


class CoursePlan(Output):
    course_id: uuid.UUID
    status: CourseStatus
    sessions: list[PlannedSession]


class BookingResult(Output):
    booked: list[SessionAppointment]
    unbookable: PlannedSession | None = Field(description="where the course is stuck, if it is")
    problems: list[PlannedSession] = Field(description="every session that could not be booked")


class CourseChanges(Output):
    """What a change to one session did to the rest of its course."""

    moved: list[SessionAppointment]
    resized: list[SessionAppointment]
    added: list[SessionAppointment]
    problems: list[PlannedSession]


class CourseSessionOut(AppointmentOut):
    """An appointment after a change. `course_changes` is there when the change re-planned
    the appointment's course (a move, a cancellation, a no-show, a session record)."""

    course_changes: CourseChanges | None = None


Reaction = Literal["none", "mild", "moderate", "severe"]


class SessionRecordIn(Input):
    """What happened at a session, recorded when it is completed."""

    weight_kg: Annotated[Decimal, Field(gt=0, lt=500, max_digits=5, decimal_places=1)] | None = None
    dose_given_g: (
        Annotated[Decimal, Field(gt=0, le=1000, max_digits=7, decimal_places=2)] | None
    ) = None
    actual_start: Instant | None = None
    actual_end: Instant | None = None
    reaction: Reaction = "none"
    tolerated_rate_mg_per_kg_min: Rate | None = None
    incat: int | None = Field(default=None, ge=0, le=10)
    i_rods: int | None = Field(default=None, ge=0, le=100)
    mrc_sum: int | None = Field(default=None, ge=0, le=60)
    grip_strength_kg: (
        Annotated[Decimal, Field(ge=0, le=150, max_digits=5, decimal_places=1)] | None
    ) = None

    @model_validator(mode="after")
    def _consistent(self) -> SessionRecordIn:
        if self.reaction != "none" and self.tolerated_rate_mg_per_kg_min is None:
            raise ValueError("after a reaction, give the rate that was tolerated")
        if self.actual_start and self.actual_end and self.actual_end <= self.actual_start:
            raise ValueError("actual_end must be after actual_start")
        return self


class OutcomeOut(Output):
    appointment_id: uuid.UUID
    session_date: date
    recorded_at: datetime
    weight_kg: float | None
    dose_given_g: float | None
    reaction: Reaction
    tolerated_rate_mg_per_kg_min: float | None
    incat: int | None
    i_rods: int | None
    mrc_sum: int | None
    grip_strength_kg: float | None
