"""Dose in grams from a dose per kilogram and the patient's dosing weight.

Plain functions. Dosing weight is the actual body weight, or the adjusted body weight (ideal
body weight plus 0.4 of the excess) that many centers use for obese patients; ideal body
weight follows Devine (50 kg for men, 45.5 kg for women, plus 2.3 kg per inch over 5 feet).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from scheduling.catalog.vials import Tolerance, catalog_stock, plan_vials

WeightBasis = Literal["actual", "adjusted"]
CM_PER_INCH = 2.54
EXCESS_FRACTION = 0.4


class MissingMeasurement(ValueError):
    """The dosing weight needs a measurement (weight, height, sex) the patient lacks."""


def ideal_body_weight(height_cm: float, sex: str) -> float:
    base = {"male": 50.0, "female": 45.5}.get(sex)
    if base is None:
        raise MissingMeasurement("adjusted body weight needs the patient's sex (female or male)")
    inches_over_five_feet = max(0.0, height_cm / CM_PER_INCH - 60)
    return base + 2.3 * inches_over_five_feet


def dosing_weight(
    weight_kg: float | None, height_cm: float | None, sex: str, basis: WeightBasis
) -> float:
    if weight_kg is None:
        raise MissingMeasurement("the dose needs the patient's weight")
    if basis == "actual":
        return weight_kg
    if height_cm is None:
        raise MissingMeasurement("adjusted body weight needs the patient's height")
    ideal = ideal_body_weight(height_cm, sex)
    return weight_kg if weight_kg <= ideal else ideal + EXCESS_FRACTION * (weight_kg - ideal)


def dose_grams(dose_g_per_kg: float, weight_kg: float) -> float:
    return dose_g_per_kg * weight_kg


def round_to_vials(dose_g: float, vial_sizes_g: Sequence[float], tolerance_pct: float) -> float:
    """The nearest amount the vials can make up, when within `tolerance_pct` of the dose;
    otherwise the dose itself (the pharmacy then draws a partial vial). The catalog's sizes,
    as many as needed: `scheduling.catalog.vials.plan_vials` decides."""
    sizes = [v for v in vial_sizes_g if v > 0]
    if not sizes or tolerance_pct <= 0 or dose_g <= 0:
        return dose_g
    plan = plan_vials(dose_g, catalog_stock(sizes), Tolerance(pct=tolerance_pct))
    return plan.given_g if plan.within_tolerance else dose_g
