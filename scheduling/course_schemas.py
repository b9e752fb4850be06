"""Request and response models for treatment courses."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field, model_validator

from app.schemas import HHMM, Input, Instant, LocalDate, Output, Text
from scheduling.schemas import AppointmentOut, ChairKind, Rate

DosePerKg = Annotated[Decimal, Field(gt=0, le=10, max_digits=5, decimal_places=3)]
CourseStatus = Literal["active", "on_hold", "completed", "discontinued"]
Diagnosis = Annotated[str, Field(pattern=r"^[A-Z][0-9]{2}(\.[0-9A-Z]{1,4})?$")]


class InductionIn(Input):
    total_dose_g_per_kg: DosePerKg
    days: int = Field(ge=1, le=5)
    skip_closures: bool = Field(
        default=False, description="may a closed day fall inside the loading days"
    )


class MaintenanceIn(Input):
    dose_g_per_kg: DosePerKg
    interval_days: int = Field(ge=1, le=365)
    window_min_days: int = Field(ge=1, le=365)
    window_max_days: int = Field(ge=1, le=365)
    cycles: int | None = Field(default=None, ge=1, le=500)
    end_date: LocalDate | None = None

    @model_validator(mode="after")
    def _window(self) -> MaintenanceIn:
        if not self.window_min_days <= self.interval_days <= self.window_max_days:
            raise ValueError("need window_min_days <= interval_days <= window_max_days")
        if (self.cycles is None) == (self.end_date is None):
            raise ValueError("give either cycles or end_date")
        return self


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


class InductionOut(Output):
    total_dose_g_per_kg: float
    days: int
    skip_closures: bool


class MaintenanceOut(Output):
    dose_g_per_kg: float
    interval_days: int
    window_min_days: int
    window_max_days: int
    cycles: int | None
    end_date: date | None


class RegimenCreate(Input):
    """The usual regimen for a diagnosis; a course order that leaves a phase out takes it."""

    diagnosis_code: Diagnosis
    name: Text
    induction: InductionIn | None = None
    maintenance: MaintenanceIn | None = None

    @model_validator(mode="after")
    def _phases(self) -> RegimenCreate:
        check_regimen(self.induction, self.maintenance)
        return self


class RegimenUpdate(Input):
    """Fields sent replace the stored ones; a phase sent as null is removed."""

    name: Text | None = None
    induction: InductionIn | None = None
    maintenance: MaintenanceIn | None = None


def check_regimen(induction: InductionIn | None, maintenance: MaintenanceIn | None) -> None:
    if induction is None and maintenance is None:
        raise ValueError("a regimen needs an induction, a maintenance phase or both")
    if maintenance is not None and maintenance.cycles is None:
        raise ValueError("a regimen's maintenance counts cycles (an end date belongs to a course)")


class RegimenOut(Output):
    id: uuid.UUID
    diagnosis_code: str
    name: str
    induction: InductionOut | None
    maintenance: MaintenanceOut | None
    version: int


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
    through: LocalDate = Field(
        description="book sessions due up to this date; at most a year ahead"
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
