"""What the optimiser routes take and give."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import Field

from core.schemas import Input, LocalDate, Output


class OptimiseIn(Input):
    from_: LocalDate = Field(alias="from", description="the first local day to even out")
    to: LocalDate = Field(description="the last local day (at most 14 days after `from`)")
    time_limit_seconds: int = Field(
        default=10, ge=1, le=60, description="how long the solver may search"
    )


class Move(Output):
    appointment_id: uuid.UUID
    patient_id: uuid.UUID
    from_start: datetime
    from_chair_id: uuid.UUID
    to_start: datetime
    to_end: datetime
    to_chair_id: uuid.UUID


class Figures(Output):
    peak_census: int = Field(description="the most patients in chairs at once")
    max_starts_per_30_min: int = Field(description="the most infusions started in 30 minutes")
    off_target_day: int = Field(description="movable sessions not on their target date")
    moves: int
    last_finish: str | None = Field(description="local HH:MM the last visit of a day ends")


class DayCensus(Output):
    date: LocalDate
    opens: str | None = Field(description="local HH:MM of the first slot (None: closed)")
    slot_minutes: int
    before: list[int] = Field(description="patients in chairs per slot, as booked now")
    after: list[int] = Field(description="per slot, once the proposal is applied")
    capacity: list[int] = Field(description="per slot, nurses on duty x patients per nurse")


class OptimisationOut(Output):
    id: uuid.UUID
    center_id: uuid.UUID
    from_: LocalDate = Field(serialization_alias="from")
    to: LocalDate
    status: Literal["proposed", "applied"]
    moves: list[Move]
    before: Figures
    after: Figures
    lower_bound_peak: int = Field(description="no plan of these days has a lower peak census")
    optimal: bool = Field(description="the solver proved every objective optimal in its time")
    feasible: bool = Field(description="False: no plan found in time; nothing would move")
    movable_sessions: int
    fixed_sessions: int
    solve_ms: int
    time_limit_seconds: int
    days: list[DayCensus]
    created_at: datetime
    applied_at: datetime | None
