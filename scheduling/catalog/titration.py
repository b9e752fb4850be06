"""Infusion time from a product's rate titration, and the chair time around it.

Plain functions over plain numbers. Rates are in mg/kg/min, doses in mg/kg, times in minutes.
The infusion starts at the initial rate and steps up by a fixed amount every interval until it
reaches its ceiling: the product's maximum, lowered by whatever caps the patient has (a rate
tolerated after a reaction, or the minimum practicable rate for renal or thrombosis risk).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

GRID_MINUTES = 15


@dataclass(frozen=True)
class Titration:
    initial_rate: float
    step: float  # added at each step; 0 for a constant-rate product
    step_minutes: int
    max_rate: float

    def __post_init__(self) -> None:
        if not (0 < self.initial_rate <= self.max_rate):
            raise ValueError("the initial rate must be positive and at most the maximum rate")
        if self.step < 0 or self.step_minutes <= 0:
            raise ValueError("steps must be non-negative and intervals positive")


@dataclass(frozen=True)
class RateStep:
    minute: float
    rate: float


@dataclass(frozen=True)
class InfusionPlan:
    minutes: float
    steps: tuple[RateStep, ...]
    ceiling: float


def ceiling_rate(titration: Titration, caps: tuple[float | None, ...] = ()) -> float:
    """The fastest this infusion may run: the product maximum under every cap that applies."""
    return min([titration.max_rate, *(c for c in caps if c is not None)])


def infusion_plan(dose_mg_per_kg: float, titration: Titration, ceiling: float) -> InfusionPlan:
    """How long `dose_mg_per_kg` takes, and the rate steps on the way.

    A ceiling below the initial rate means the whole infusion runs at the ceiling.
    """
    if dose_mg_per_kg <= 0:
        raise ValueError("the dose must be positive")
    if ceiling <= 0:
        raise ValueError("the ceiling rate must be positive")
    rate = min(titration.initial_rate, ceiling)
    remaining, minute = dose_mg_per_kg, 0.0
    steps: list[RateStep] = []
    while True:
        steps.append(RateStep(minute, rate))
        final = rate >= ceiling or titration.step == 0
        per_step = rate * titration.step_minutes
        if final or per_step >= remaining:
            return InfusionPlan(minute + remaining / rate, tuple(steps), ceiling)
        remaining -= per_step
        minute += titration.step_minutes
        rate = min(rate + titration.step, ceiling)


@dataclass(frozen=True)
class ChairTime:
    premed: int
    infusion: int
    observation: int
    turnover: int

    @property
    def total(self) -> int:
        """Minutes the chair is held, rounded up to the booking grid."""
        raw = self.premed + self.infusion + self.observation + self.turnover
        return GRID_MINUTES * math.ceil(raw / GRID_MINUTES)


def chair_time(
    infusion_minutes: float,
    *,
    premed: int,
    observation: int,
    first_dose_extra: int,
    first_dose: bool,
    turnover: int,
) -> ChairTime:
    return ChairTime(
        premed=premed,
        infusion=math.ceil(infusion_minutes - 1e-9),
        observation=observation + (first_dose_extra if first_dose else 0),
        turnover=turnover,
    )


# --- a pump's rate in mL/h and the same rate in mg/kg/min --------------------------------------


def concentration_mg_per_ml(concentration_pct: float) -> float:
    """A solution's strength: percent is grams per 100 mL, so 10 % is 100 mg/mL."""
    return concentration_pct * 10


def rate_from_ml_per_hour(ml_per_hour: float, mg_per_ml: float, weight_kg: float) -> float:
    """The mg/kg/min a pump set to `ml_per_hour` delivers: mL/h x mg/mL / 60 / kg."""
    if ml_per_hour <= 0 or mg_per_ml <= 0 or weight_kg <= 0:
        raise ValueError("rate, concentration and weight must be positive")
    return ml_per_hour * mg_per_ml / 60 / weight_kg


def ml_per_hour_from_rate(mg_per_kg_min: float, mg_per_ml: float, weight_kg: float) -> float:
    """The pump setting that delivers `mg_per_kg_min`: the inverse of `rate_from_ml_per_hour`."""
    if mg_per_kg_min <= 0 or mg_per_ml <= 0 or weight_kg <= 0:
        raise ValueError("rate, concentration and weight must be positive")
    return mg_per_kg_min * weight_kg * 60 / mg_per_ml
