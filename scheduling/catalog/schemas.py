"""Request and response models for the drug catalog, the infusion-time calculator and the
usual regimens."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from core.schemas import Input, LocalDate, Output, Text

# --- products and infusion time ------------------------------------------------------------

Rate = Annotated[Decimal, Field(gt=0, le=50, max_digits=8, decimal_places=4)]
Minutes = Annotated[int, Field(ge=0, le=24 * 60)]
RiskFlag = Literal["renal", "thrombosis"]
ShelfMonths = Annotated[int, Field(ge=1, le=120)]
LeadDays = Annotated[int, Field(ge=0, le=365)]
PREP_DOC = "the pharmacy's lead time before a session's start"
ROOM_DOC = "how long a vial may stay at room temperature; null: it must stay refrigerated"


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
    refrigerated_shelf_months: ShelfMonths | None = None
    room_temperature_months: ShelfMonths | None = Field(default=None, description=ROOM_DOC)
    preparation_minutes: Minutes = Field(default=30, description=PREP_DOC)
    order_lead_days: LeadDays | None = Field(default=None, description="the supplier's lead time")

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
    refrigerated_shelf_months: ShelfMonths | None = None
    room_temperature_months: ShelfMonths | None = Field(default=None, description=ROOM_DOC)
    preparation_minutes: Minutes | None = Field(default=None, description=PREP_DOC)
    order_lead_days: LeadDays | None = Field(default=None, description="the supplier's lead time")
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
    refrigerated_shelf_months: int | None
    room_temperature_months: int | None = Field(description=ROOM_DOC)
    preparation_minutes: int = Field(description=PREP_DOC)
    order_lead_days: int | None
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


DosePerKg = Annotated[Decimal, Field(gt=0, le=10, max_digits=5, decimal_places=3)]
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
