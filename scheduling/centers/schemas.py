"""Request and response models for centers, closures, chairs and chair blocks."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StringConstraints, field_validator, model_validator

from core.schemas import HHMM, Input, Instant, LocalDate, Output, Text, printable
from scheduling.centers.models import DEFAULT_SHORTAGE_PRIORITY

ChairKind = Literal["chair", "bed", "isolation"]
PreparePolicy = Literal["ahead", "on_clearance"]
Label = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=50),
    AfterValidator(printable),
]


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
# An ICD-10 code or the start of one (`G61.0`, `G61.8`, `G61`): the shortage plan's priorities.
Icd10Prefix = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Z][0-9]{2}(\.[0-9A-Z]{0,4})?$")
]
ShortagePriority = Annotated[
    list[Icd10Prefix],
    Field(
        max_length=30,
        description="ICD-10 prefixes, highest priority first: whose doses a shortage plan "
        "protects first (the longest matching prefix decides; a diagnosis not listed comes last)",
    ),
]


def _distinct(prefixes: list[str] | None) -> list[str] | None:
    if prefixes is not None and len(set(prefixes)) != len(prefixes):
        raise ValueError("each prefix once")
    return prefixes


class CenterCreate(Input):
    name: Text
    address: str | None = Field(default=None, min_length=1, max_length=300)
    timezone: str = Field(min_length=1, max_length=64, examples=["America/New_York"])
    opening_hours: list[OpeningHoursIn] = Field(max_length=7)
    patients_per_nurse: int = Field(ge=1, le=20)
    staffing: list[StaffingIn] = Field(default_factory=list, max_length=200)
    turnover_minutes: int = Field(default=15, ge=0, le=120)
    checkin_opens_minutes: int = Field(
        default=120,
        ge=0,
        le=1440,
        description="check-in opens this long before a visit's start (never before its day)",
    )
    max_session_minutes: int = Field(
        default=480,
        ge=60,
        le=1440,
        description="the longest a course session may hold a chair; a longer dose is split "
        "over more days",
    )
    coverage_policy: CoveragePolicy = Field(
        default="warn",
        description="a course session no authorization covers: booked and flagged, or refused",
    )
    prepare_policy: PreparePolicy = Field(
        default="ahead",
        description="the pharmacy prepares doses ahead of their start, or on the nurse's "
        "clearance of the patient",
    )
    booking_horizon_days: int = Field(
        default=56, ge=1, le=366, description="how far ahead the nightly run books courses"
    )
    auto_book_at: HHMM = Field(default="02:00", description="local time of the nightly run")
    shortage_priority: ShortagePriority = Field(
        default_factory=lambda: list(DEFAULT_SHORTAGE_PRIORITY)
    )
    no_move_days: int = Field(
        default=2,
        ge=0,
        le=60,
        description="the optimiser leaves sessions within this many days of today where they are",
    )
    optimise_nightly: bool = Field(
        default=False,
        description="the nightly booking run re-places what it booked with the optimiser",
    )
    offer_hold_minutes: int = Field(
        default=720, ge=5, le=10080, description="how long a waitlist offer holds an opening"
    )
    offer_hold_same_day_minutes: int = Field(
        default=30,
        ge=5,
        le=1440,
        description="how long a waitlist offer holds an opening the same day",
    )

    _weekdays = field_validator("opening_hours")(_one_per_weekday)
    _priorities = field_validator("shortage_priority")(_distinct)


class CenterUpdate(Input):
    name: Text | None = None
    address: str | None = Field(default=None, min_length=1, max_length=300)
    timezone: str | None = Field(default=None, min_length=1, max_length=64)
    opening_hours: list[OpeningHoursIn] | None = Field(default=None, max_length=7)
    patients_per_nurse: int | None = Field(default=None, ge=1, le=20)
    staffing: list[StaffingIn] | None = Field(default=None, max_length=200)
    turnover_minutes: int | None = Field(default=None, ge=0, le=120)
    checkin_opens_minutes: int | None = Field(default=None, ge=0, le=1440)
    max_session_minutes: int | None = Field(default=None, ge=60, le=1440)
    coverage_policy: CoveragePolicy | None = None
    prepare_policy: PreparePolicy | None = None
    booking_horizon_days: int | None = Field(default=None, ge=1, le=366)
    auto_book_at: HHMM | None = None
    shortage_priority: ShortagePriority | None = None
    no_move_days: int | None = Field(default=None, ge=0, le=60)
    optimise_nightly: bool | None = None
    offer_hold_minutes: int | None = Field(default=None, ge=5, le=10080)
    offer_hold_same_day_minutes: int | None = Field(default=None, ge=5, le=1440)

    _weekdays = field_validator("opening_hours")(_one_per_weekday)
    _priorities = field_validator("shortage_priority")(_distinct)


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
    checkin_opens_minutes: int
    max_session_minutes: int
    coverage_policy: CoveragePolicy
    prepare_policy: PreparePolicy
    booking_horizon_days: int
    auto_book_at: str
    shortage_priority: list[str]
    no_move_days: int
    optimise_nightly: bool
    offer_hold_minutes: int
    offer_hold_same_day_minutes: int
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
