"""Request and response models for treatment courses."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, ConfigDict, Field, StringConstraints, model_validator

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


class PlannedRecord(Output):
    """What was recorded at a session given (the whole record: `GET
    /appointments/{id}/record`)."""

    recorded_at: datetime
    weight_kg: float | None
    dose_given_g: float | None
    actual_start: datetime | None
    actual_end: datetime | None
    reaction: str
    tolerated_rate_mg_per_kg_min: float | None


class PlannedSession(Output):
    phase: Literal["induction", "maintenance"]
    sequence: int = Field(
        description="the session's own number in its phase: never reused or renumbered (a "
        "lost session keeps its number, and the one making it up comes at the end)"
    )
    dose_number: int | None = Field(
        default=None,
        description="which dose of its phase this is, counting those given, booked and due; "
        "null for a lost (cancelled or missed) session",
    )
    part: int = Field(
        default=1, description="2: the second day of a maintenance dose given over two days"
    )
    window_start: date
    window_end: date
    target_date: date
    appointment: SessionAppointment | None
    record: PlannedRecord | None = Field(default=None, description="once it has been given")
    dose_g: float | None
    chair_minutes: int | None
    outside_window: bool = Field(
        default=False, description="a nurse placed it outside its window (`override_reason`)"
    )
    pinned: bool = Field(default=False, description="placed by a person: re-plans leave it")
    coverage: Literal["covered", "uncovered", "unknown"] = Field(
        default="unknown", description="unknown until the session is booked"
    )
    coverage_reason: str | None = None
    unbookable_reason: str | None = None


class DoseSplit(Output):
    """A phase whose dose one session per day as ordered cannot give: split over more days,
    or (`days` null) not even then."""

    phase: Literal["induction", "maintenance"]
    ordered_days: int
    days: int | None
    minutes_as_ordered: int = Field(description="the longest session over the days ordered")
    session_minutes: int = Field(description="the longest session over `days` (or the most)")
    max_session_minutes: int = Field(
        description="the longest a session may last: the center's setting or longest opening"
    )
    detail: str


class ReplanPlace(Output):
    """Where a session stood, how long, and its dose."""

    chair_id: uuid.UUID
    start: datetime
    end: datetime
    duration_minutes: int
    dose_g: float | None


class ReplanSession(Output):
    """A session the last re-plan changed: `from` where it was (null for a session it added),
    `to` where it left it."""

    model_config = ConfigDict(from_attributes=True, populate_by_name=True)

    appointment_id: uuid.UUID
    phase: Literal["induction", "maintenance"]
    sequence: int
    part: int = 1
    from_: ReplanPlace | None = Field(alias="from")
    to: ReplanPlace


class LastReplan(Output):
    """What the course's last re-plan changed: when, what set it off, and each session it
    moved (another day, time or chair), resized (same place, new dose or length) or added
    (a loading day in place of a lost one)."""

    at: datetime
    actor_id: uuid.UUID | None = Field(description="who made the change that set it off")
    trigger: str = Field(
        description="what set it off, in words: a session moved, cancelled (with the reason "
        "given), missed or given with a record, or the patient's weight, height or sex"
    )
    moved: list[ReplanSession]
    resized: list[ReplanSession]
    added: list[ReplanSession]


class CoursePlan(Output):
    """The whole course in order: sessions given (with their record), lost, booked, and
    those still due up to `through`; and what the last re-plan changed."""

    course_id: uuid.UUID
    status: CourseStatus
    sessions: list[PlannedSession]
    splits: list[DoseSplit] = Field(default_factory=list)
    last_replan: LastReplan | None = Field(
        default=None, description="null until a re-plan has changed a session"
    )


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


Severity = Literal["none", "mild", "moderate", "severe"]
ReactionKind = Literal[
    "headache",
    "fever",
    "chills",
    "flushing",
    "rash",
    "nausea",
    "hypertension",
    "hypotension",
    "chest_tightness",
    "dyspnea",
    "anaphylaxis",
    "other",
]
ReactionAction = Literal["none", "slowed", "paused", "stopped", "premedicated"]
# What a reaction that changed the infusion leaves behind: the rate it then ran at is what
# caps the course's next sessions, so the nurse must give it.
RATE_CHANGING_ACTIONS = frozenset({"slowed", "paused", "stopped"})
SEVERE_GRADE = 3  # CTCAE: 3 severe, 4 life-threatening, 5 death

MlPerHour = Annotated[Decimal, Field(gt=0, le=1000, max_digits=5, decimal_places=1)]


def _note_text(value: str) -> str:
    # A note may run over several lines; other control characters are refused.
    if any((ord(ch) < 32 and ch not in "\n\t") or ord(ch) == 127 for ch in value):
        raise ValueError("control characters other than line breaks are not allowed")
    return value


Note = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=2000),
    AfterValidator(_note_text),
]


class ReactionIn(Input):
    kind: ReactionKind
    grade: int = Field(
        ge=1,
        le=5,
        description="CTCAE grade: 1 mild, 2 moderate, 3 severe, 4 life-threatening, 5 death",
    )
    action: ReactionAction = Field(description="what the nurse did about it")


class SessionRecordIn(Input):
    """What happened at a session, recorded when it is completed. A reaction of grade 3 or
    more, or one the infusion was slowed, paused or stopped for, needs the rate that was
    tolerated, in mg/kg/min or in mL/h (one of them)."""

    weight_kg: Annotated[Decimal, Field(gt=0, lt=500, max_digits=5, decimal_places=1)] | None = None
    dose_given_g: (
        Annotated[Decimal, Field(gt=0, le=1000, max_digits=7, decimal_places=2)] | None
    ) = None
    infusion_minutes: int | None = Field(default=None, ge=1, le=24 * 60)
    actual_start: Instant | None = None
    actual_end: Instant | None = None
    reactions: list[ReactionIn] | None = Field(default=None, max_length=20)
    reaction: Severity | None = Field(
        default=None,
        description="deprecated: the overall severity alone, as records were kept before "
        "`reactions`; give `reactions` instead (not both). Anything but `none` needs the "
        "tolerated rate",
        json_schema_extra={"deprecated": True},
    )
    tolerated_rate_mg_per_kg_min: Rate | None = None
    tolerated_rate_ml_per_hour: MlPerHour | None = Field(
        default=None,
        description="the pump rate that was tolerated; converted to mg/kg/min with the course "
        "product's concentration and the weight (this record's, else the patient's)",
    )
    creatinine_mg_dl: (
        Annotated[Decimal, Field(ge=Decimal("0.1"), le=20, max_digits=4, decimal_places=2)] | None
    ) = None
    egfr_ml_min: int | None = Field(default=None, ge=1, le=200, description="mL/min/1.73 m²")
    hydrated: bool | None = Field(default=None, description="hydration checked and adequate")
    thrombosis_risk: bool | None = Field(default=None, description="thrombosis risk screened")
    notes: Note | None = None
    incat: int | None = Field(default=None, ge=0, le=10)
    i_rods: int | None = Field(default=None, ge=0, le=100)
    mrc_sum: int | None = Field(default=None, ge=0, le=60)
    grip_strength_kg: (
        Annotated[Decimal, Field(ge=0, le=150, max_digits=5, decimal_places=1)] | None
    ) = None

    @model_validator(mode="after")
    def _consistent(self) -> SessionRecordIn:
        if self.reactions is not None and self.reaction is not None:
            raise ValueError("give reactions or the older reaction severity, not both")
        if (
            self.tolerated_rate_mg_per_kg_min is not None
            and self.tolerated_rate_ml_per_hour is not None
        ):
            raise ValueError("give the tolerated rate in mg/kg/min or in mL/h, not both")
        if self.needs_tolerated_rate and not self.gives_tolerated_rate:
            raise ValueError(
                "after a reaction of grade 3 or more, or one the infusion was slowed, paused "
                "or stopped for, give the rate that was tolerated "
                "(tolerated_rate_mg_per_kg_min or tolerated_rate_ml_per_hour)"
                if self.reactions
                else "after a reaction, give the rate that was tolerated"
            )
        if self.actual_start and self.actual_end and self.actual_end <= self.actual_start:
            raise ValueError("actual_end must be after actual_start")
        return self

    @property
    def gives_tolerated_rate(self) -> bool:
        return (
            self.tolerated_rate_mg_per_kg_min is not None
            or self.tolerated_rate_ml_per_hour is not None
        )

    @property
    def needs_tolerated_rate(self) -> bool:
        if self.reaction is not None:  # the older form: any reaction at all
            return self.reaction != "none"
        return any(
            r.grade >= SEVERE_GRADE or r.action in RATE_CHANGING_ACTIONS
            for r in self.reactions or ()
        )


Reason = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=3, max_length=500),
    AfterValidator(_note_text),
]
REASONED_ACTIONS = frozenset({"cancel", "no-show"})


class VialsUsed(Input):
    """Vials of one drug lot given at the session (the pharmacy's stock goes down by them)."""

    lot_id: uuid.UUID
    vials: int = Field(ge=1, le=1000)


class VisitActionIn(SessionRecordIn):
    """The body of a change at the chair: `complete` may carry the session record and the
    vials used, by lot; `cancel` and `no-show` may carry the `reason`, kept on the visit's
    history."""

    reason: Reason | None = Field(
        default=None, description="why: for `cancel` and `no-show` only (3 to 500 characters)"
    )
    vials_used: list[VialsUsed] | None = Field(
        default=None,
        max_length=50,
        description="for `complete` only: the vials given, by lot, drawn from the center's "
        "stock and kept for a recall",
    )

    def parts(self, action: str) -> tuple[SessionRecordIn | None, str | None]:
        """The session record (None when the body carries none) and the reason."""
        given = self.model_fields_set - {"reason", "vials_used"}
        if not given and action != "complete":
            return None, self.reason
        return SessionRecordIn.model_validate(self.model_dump(include=given)), self.reason


class ReactionOut(Output):
    kind: ReactionKind
    grade: int
    action: ReactionAction


class SessionRecordOut(Output):
    """A session's record. `reaction` is the overall severity: the worst grade of
    `reactions` (1 mild, 2 moderate, 3 or more severe), or, for a record kept before reactions
    had detail, the severity recorded then (with `reactions` empty)."""

    appointment_id: uuid.UUID
    course_id: uuid.UUID | None
    recorded_at: datetime
    recorded_by: uuid.UUID | None
    weight_kg: float | None
    dose_given_g: float | None
    infusion_minutes: int | None
    actual_start: datetime | None
    actual_end: datetime | None
    reaction: Severity
    reactions: list[ReactionOut]
    tolerated_rate_mg_per_kg_min: float | None
    tolerated_rate_ml_per_hour: float | None = Field(description="as given, when it was")
    rate_weight_kg: float | None = Field(
        description="the weight a rate given in mL/h was converted with"
    )
    creatinine_mg_dl: float | None
    egfr_ml_min: int | None
    hydrated: bool | None
    thrombosis_risk: bool | None
    notes: str | None
    incat: int | None
    i_rods: int | None
    mrc_sum: int | None
    grip_strength_kg: float | None


class OutcomeOut(Output):
    appointment_id: uuid.UUID
    session_date: date
    recorded_at: datetime
    weight_kg: float | None
    dose_given_g: float | None
    reaction: Severity
    tolerated_rate_mg_per_kg_min: float | None
    incat: int | None
    i_rods: int | None
    mrc_sum: int | None
    grip_strength_kg: float | None
