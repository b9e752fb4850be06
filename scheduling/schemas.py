"""Request and response models for centers, chairs and appointments."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StringConstraints, field_validator, model_validator

from app.schemas import HHMM, Input, Instant, LocalDate, Output, Text, printable

ChairKind = Literal["chair", "bed", "isolation"]
Label = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=50),
    AfterValidator(printable),
]
Status = Literal["booked", "checked_in", "in_progress", "completed", "cancelled", "no_show"]


class OpeningHoursIn(Input):
    weekday: int = Field(ge=0, le=6, description="Monday = 0")
    opens: HHMM
    closes: HHMM

    @model_validator(mode="after")
    def _order(self) -> OpeningHoursIn:
        if self.opens >= self.closes:
            raise ValueError("opens must be before closes")
        return self


class StaffingIn(Input):
    weekday: int = Field(ge=0, le=6)
    start: HHMM
    end: HHMM
    nurses: int = Field(ge=0, le=100)

    @model_validator(mode="after")
    def _order(self) -> StaffingIn:
        if self.start >= self.end:
            raise ValueError("start must be before end")
        return self


def _one_per_weekday(hours: list[OpeningHoursIn] | None) -> list[OpeningHoursIn] | None:
    if hours is not None and len({h.weekday for h in hours}) != len(hours):
        raise ValueError("one opening-hours entry per weekday")
    return hours


CoveragePolicy = Literal["warn", "block"]


class SessionCoverage(Output):
    """Whether insurance pays for a course session, and which authorization (billing's view)."""

    state: Literal["covered", "uncovered"]
    authorization_id: uuid.UUID | None
    reason: str | None


class CenterCreate(Input):
    name: Text
    address: str | None = Field(default=None, min_length=1, max_length=300)
    timezone: str = Field(min_length=1, max_length=64, examples=["America/New_York"])
    opening_hours: list[OpeningHoursIn] = Field(max_length=7)
    patients_per_nurse: int = Field(ge=1, le=20)
    staffing: list[StaffingIn] = Field(default_factory=list, max_length=200)
    turnover_minutes: int = Field(default=15, ge=0, le=120)
    coverage_policy: CoveragePolicy = Field(
        default="warn",
        description="a course session no authorization covers: booked and flagged, or refused",
    )
    booking_horizon_days: int = Field(
        default=56, ge=1, le=366, description="how far ahead the nightly run books courses"
    )
    auto_book_at: HHMM = Field(default="02:00", description="local time of the nightly run")

    _weekdays = field_validator("opening_hours")(_one_per_weekday)


class CenterUpdate(Input):
    name: Text | None = None
    address: str | None = Field(default=None, min_length=1, max_length=300)
    timezone: str | None = Field(default=None, min_length=1, max_length=64)
    opening_hours: list[OpeningHoursIn] | None = Field(default=None, max_length=7)
    patients_per_nurse: int | None = Field(default=None, ge=1, le=20)
    staffing: list[StaffingIn] | None = Field(default=None, max_length=200)
    turnover_minutes: int | None = Field(default=None, ge=0, le=120)
    coverage_policy: CoveragePolicy | None = None
    booking_horizon_days: int | None = Field(default=None, ge=1, le=366)
    auto_book_at: HHMM | None = None

    _weekdays = field_validator("opening_hours")(_one_per_weekday)


class OpeningHoursOut(Output):
    weekday: int
    opens: str
    closes: str


class StaffingOut(Output):
    weekday: int
    start: str
    end: str
    nurses: int


class CenterOut(Output):
    id: uuid.UUID
    name: str
    address: str | None
    timezone: str
    patients_per_nurse: int
    turnover_minutes: int
    coverage_policy: CoveragePolicy
    booking_horizon_days: int
    auto_book_at: str
    opening_hours: list[OpeningHoursOut]
    staffing: list[StaffingOut]
    version: int


class ClosureIn(Input):
    date: LocalDate
    reason: Text


class ClosureOut(Output):
    id: uuid.UUID
    center_id: uuid.UUID
    date: date
    reason: str


class ChairCreate(Input):
    label: Label
    kind: ChairKind = "chair"


class ChairUpdate(Input):
    label: Label | None = None
    kind: ChairKind | None = None
    active: bool | None = None


class ChairOut(Output):
    id: uuid.UUID
    center_id: uuid.UUID
    label: str
    kind: ChairKind
    active: bool
    version: int


class ChairBlockIn(Input):
    start: Instant
    end: Instant
    reason: Text

    @model_validator(mode="after")
    def _order(self) -> ChairBlockIn:
        if self.start >= self.end:
            raise ValueError("start must be before end")
        return self


class ChairBlockOut(Output):
    id: uuid.UUID
    chair_id: uuid.UUID
    start: datetime
    end: datetime
    reason: str


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
    start: Instant | None = None
    end: Instant | None = None
    duration_minutes: int | None = Field(default=None, ge=1, le=24 * 60)
    chair_id: uuid.UUID | None = None

    @model_validator(mode="after")
    def _shape(self) -> AppointmentReschedule:
        if self.end is not None and self.duration_minutes is not None:
            raise ValueError("give either end or duration_minutes, not both")
        if (
            self.start is None
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
    coverage: SessionCoverage | None = Field(
        default=None, description="course sessions only: who pays, or why nobody does"
    )


class Slot(Output):
    chair_id: uuid.UUID
    start: datetime
    end: datetime


class Availability(Output):
    slots: list[Slot]


class BoardAppointment(Output):
    id: uuid.UUID
    patient_id: uuid.UUID
    start: datetime
    end: datetime
    status: Status
    coverage: SessionCoverage | None = None


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


# --- products and infusion time ------------------------------------------------------------

Rate = Annotated[Decimal, Field(gt=0, le=50, max_digits=8, decimal_places=4)]
Minutes = Annotated[int, Field(ge=0, le=24 * 60)]
RiskFlag = Literal["renal", "thrombosis"]


class TitrationIn(Input):
    initial_rate_mg_per_kg_min: Rate
    step_mg_per_kg_min: Annotated[Decimal, Field(ge=0, le=50, max_digits=8, decimal_places=4)]
    step_interval_minutes: int = Field(ge=1, le=240)


# Per kilogram, per order: orders outside the range need a stated reason.
UsualDose = Annotated[Decimal, Field(gt=0, le=10, max_digits=7, decimal_places=4)]


class ProductCreate(Input):
    name: Text
    hcpcs_code: Annotated[str, StringConstraints(pattern=r"^[A-Z][0-9]{4}$")]
    billing_unit_mg: int = Field(gt=0, le=100_000)
    concentration_pct: Annotated[Decimal, Field(gt=0, le=100, max_digits=5, decimal_places=2)]
    titration: TitrationIn
    max_rate_mg_per_kg_min: Rate
    min_practicable_rate_mg_per_kg_min: Rate | None = None
    premed_minutes: Minutes
    observation_minutes: Minutes
    first_dose_extra_observation_minutes: Minutes = 0
    vial_sizes_g: list[Annotated[float, Field(gt=0, le=1000)]] = Field(min_length=1, max_length=20)
    price_per_unit: Annotated[Decimal, Field(ge=0, max_digits=10, decimal_places=2)] | None = None
    usual_dose_min_g_per_kg: UsualDose | None = None
    usual_dose_max_g_per_kg: UsualDose | None = None

    @model_validator(mode="after")
    def _rates(self) -> ProductCreate:
        if self.titration.initial_rate_mg_per_kg_min > self.max_rate_mg_per_kg_min:
            raise ValueError("the initial rate cannot exceed the maximum rate")
        floor = self.min_practicable_rate_mg_per_kg_min
        if floor is not None and floor > self.max_rate_mg_per_kg_min:
            raise ValueError("the minimum practicable rate cannot exceed the maximum rate")
        return self


class ProductUpdate(Input):
    name: Text | None = None
    titration: TitrationIn | None = None
    max_rate_mg_per_kg_min: Rate | None = None
    min_practicable_rate_mg_per_kg_min: Rate | None = None
    premed_minutes: Minutes | None = None
    observation_minutes: Minutes | None = None
    first_dose_extra_observation_minutes: Minutes | None = None
    vial_sizes_g: list[Annotated[float, Field(gt=0, le=1000)]] | None = Field(
        default=None, min_length=1, max_length=20
    )
    price_per_unit: Annotated[Decimal, Field(ge=0, max_digits=10, decimal_places=2)] | None = None
    usual_dose_min_g_per_kg: UsualDose | None = None
    usual_dose_max_g_per_kg: UsualDose | None = None
    active: bool | None = None


class TitrationOut(Output):
    initial_rate_mg_per_kg_min: float
    step_mg_per_kg_min: float
    step_interval_minutes: int


class ProductOut(Output):
    id: uuid.UUID
    name: str
    hcpcs_code: str
    billing_unit_mg: int
    concentration_pct: float
    titration: TitrationOut
    max_rate_mg_per_kg_min: float
    min_practicable_rate_mg_per_kg_min: float | None
    premed_minutes: int
    observation_minutes: int
    first_dose_extra_observation_minutes: int
    vial_sizes_g: list[float]
    price_per_unit: float | None
    usual_dose_min_g_per_kg: float | None
    usual_dose_max_g_per_kg: float | None
    active: bool
    version: int


class InfusionTimeIn(Input):
    product_id: uuid.UUID
    weight_kg: Annotated[Decimal, Field(gt=0, lt=500)]
    dose_g_per_kg: Annotated[Decimal, Field(gt=0, le=3)] | None = None
    dose_g: Annotated[Decimal, Field(gt=0, le=1000)] | None = None
    max_rate_mg_per_kg_min: Rate | None = Field(
        default=None, description="the patient's tolerated rate, after a reaction"
    )
    first_dose: bool = False
    risk_flags: list[RiskFlag] = Field(
        default_factory=list, description="renal or thrombosis risk: infuse at the minimum rate"
    )
    center_id: uuid.UUID | None = Field(
        default=None, description="adds the center's chair turnover to the chair time"
    )

    @model_validator(mode="after")
    def _one_dose(self) -> InfusionTimeIn:
        if (self.dose_g_per_kg is None) == (self.dose_g is None):
            raise ValueError("give either dose_g_per_kg or dose_g")
        return self


class RateStepOut(Output):
    minute: float
    rate_mg_per_kg_min: float


class ChairBreakdown(Output):
    premed: int
    infusion: int
    observation: int
    turnover: int


class InfusionTimeOut(Output):
    dose_g: float
    infusion_minutes: int
    chair_minutes: int
    rate_ceiling_mg_per_kg_min: float
    steps: list[RateStepOut]
    breakdown: ChairBreakdown
