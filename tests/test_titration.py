"""Dose, titration and chair time: property tests of the pure rules."""

from __future__ import annotations

import math

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from scheduling.catalog.dose import (
    MissingMeasurement,
    dose_grams,
    dosing_weight,
    ideal_body_weight,
    round_to_vials,
)
from scheduling.catalog.titration import Titration, ceiling_rate, chair_time, infusion_plan

rates = st.floats(0.05, 15, allow_nan=False)
titrations = st.builds(
    lambda initial, extra, step, minutes: Titration(initial, step, minutes, initial + extra),
    rates,
    st.floats(0, 10),
    st.floats(0, 4),
    st.integers(5, 60),
)
doses = st.floats(10, 3000)  # mg/kg: 0.01 to 3 g/kg


@settings(max_examples=300)
@given(titrations, doses, doses)
def test_more_dose_never_shortens_the_infusion(t: Titration, a: float, b: float) -> None:
    low, high = sorted((a, b))
    ceiling = ceiling_rate(t)
    shorter = infusion_plan(low, t, ceiling).minutes
    longer = infusion_plan(high, t, ceiling).minutes
    assert shorter <= longer or math.isclose(shorter, longer, rel_tol=1e-12)


@settings(max_examples=300)
@given(titrations, doses, rates, rates)
def test_a_lower_cap_never_shortens_the_infusion(
    t: Titration, dose: float, a: float, b: float
) -> None:
    low, high = sorted((a, b))
    slow = infusion_plan(dose, t, ceiling_rate(t, (low,)))
    fast = infusion_plan(dose, t, ceiling_rate(t, (high,)))
    # Minutes are sums of many floats: equal plans may differ in the last bits (a step of
    # 1e-244 mL/kg/h adds thousands of 16-minute steps that change nothing).
    assert slow.minutes >= fast.minutes or math.isclose(slow.minutes, fast.minutes, rel_tol=1e-12)


@settings(max_examples=300)
@given(titrations, doses, st.one_of(st.none(), rates))
def test_titration_never_exceeds_its_ceiling_and_delivers_the_dose(
    t: Titration, dose: float, cap: float | None
) -> None:
    ceiling = ceiling_rate(t, (cap,))
    plan = infusion_plan(dose, t, ceiling)
    assert all(0 < s.rate <= min(t.max_rate, cap or math.inf) + 1e-12 for s in plan.steps)
    assert [s.minute for s in plan.steps] == sorted(s.minute for s in plan.steps)
    # Integrating the step function over the plan gives back the dose.
    delivered = 0.0
    for here, nxt in zip(plan.steps, [*plan.steps[1:], None], strict=True):
        until = nxt.minute if nxt else plan.minutes
        delivered += here.rate * (until - here.minute)
    assert delivered == pytest.approx(dose, rel=1e-9)


@given(titrations, st.floats(0.2, 2.5), st.floats(30, 150))
def test_the_same_dose_in_grams_or_mg_per_kg_takes_the_same_time(
    t: Titration, g_per_kg: float, weight: float
) -> None:
    grams = dose_grams(g_per_kg, weight)
    via_grams = infusion_plan(grams * 1000 / weight, t, ceiling_rate(t))
    via_per_kg = infusion_plan(g_per_kg * 1000, t, ceiling_rate(t))
    assert via_grams.minutes == pytest.approx(via_per_kg.minutes, rel=1e-9)


def test_a_70_kg_patient_on_1_g_per_kg_needs_a_few_hours() -> None:
    # docs/domain.md: 70 g of a 10 % product takes roughly 2.5-3 hours. Gamunex-C-like titration:
    # 2 mg/kg/min, +2 every 30 minutes, up to 8: 60 + 120 + 180 mg/kg in 90 min, then 640 / 8.
    gamunex = Titration(initial_rate=2.0, step=2.0, step_minutes=30, max_rate=8.0)
    plan = infusion_plan(1000, gamunex, ceiling_rate(gamunex))
    assert plan.minutes == pytest.approx(170)
    assert [s.rate for s in plan.steps] == [2, 4, 6, 8]
    # After a reaction the patient tolerated 4 mg/kg/min: 60 + 4 * t = 1000 -> t = 235 min.
    capped = infusion_plan(1000, gamunex, ceiling_rate(gamunex, (4.0,)))
    assert capped.minutes == pytest.approx(265) and capped.steps[-1].rate == 4


def test_chair_time_adds_up_and_rounds_to_the_grid() -> None:
    chair = chair_time(
        151.2, premed=30, observation=30, first_dose_extra=30, first_dose=True, turnover=15
    )
    assert (chair.premed, chair.infusion, chair.observation, chair.turnover) == (30, 152, 60, 15)
    assert chair.total == 270  # 257 rounded up to the 15-minute grid
    again = chair_time(
        151.2, premed=30, observation=30, first_dose_extra=30, first_dose=False, turnover=15
    )
    assert again.total == 240


@given(st.floats(100, 230), st.sampled_from(["female", "male"]), st.floats(30, 250))
def test_adjusted_weight_lies_between_ideal_and_actual(
    height: float, sex: str, weight: float
) -> None:
    ideal = ideal_body_weight(height, sex)
    adjusted = dosing_weight(weight, height, sex, "adjusted")
    assert min(weight, ideal) <= adjusted <= max(weight, ideal) + 1e-9
    assert dosing_weight(weight, None, "unknown", "actual") == weight


def test_adjusted_weight_needs_height_and_sex() -> None:
    with pytest.raises(MissingMeasurement):
        dosing_weight(120, None, "female", "adjusted")
    with pytest.raises(MissingMeasurement):
        dosing_weight(120, 170, "unknown", "adjusted")
    with pytest.raises(MissingMeasurement):
        dosing_weight(None, 170, "female", "actual")
    # 175 cm man: ideal 70.5 kg; 120 kg actual -> 70.5 + 0.4 * 49.5 = 90.3
    assert dosing_weight(120, 175, "male", "adjusted") == pytest.approx(90.3, abs=0.1)


@given(st.floats(1, 300), st.floats(0.5, 15))
def test_vial_rounding_stays_within_tolerance(dose: float, tolerance: float) -> None:
    rounded = round_to_vials(dose, [5, 10, 20, 40], tolerance)
    assert abs(rounded - dose) <= dose * tolerance / 100 + 0.05
    if rounded != dose:
        assert round(rounded / 5, 6).is_integer()


def test_vial_rounding_examples() -> None:
    assert round_to_vials(70.0, [5, 10, 20, 40], 5) == 70.0
    assert round_to_vials(72.0, [5, 10, 20, 40], 5) == 70.0
    assert round_to_vials(73.0, [5, 10, 20, 40], 5) == 75.0
    assert round_to_vials(72.0, [5, 10, 20, 40], 2) == 72.0  # 70 is 2.8 % away: too far
    assert round_to_vials(1.5, [1, 2.5], 10) == 1.5  # 1.5 g cannot be made, 1 and 2 are too far


@given(titrations)
def test_titration_rejects_nothing_it_built(t: Titration) -> None:
    assume(t.max_rate >= t.initial_rate)
    assert ceiling_rate(t) == t.max_rate
