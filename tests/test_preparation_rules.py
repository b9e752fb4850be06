"""The pharmacy's steps for a dose, as pure rules: order, policy, prepare-by, drug wait."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pharmacy.preparation import (
    STEPS,
    PreparePolicy,
    Progress,
    Step,
    StepRefused,
    drug_wait,
    prepare_by,
    refusal,
    status,
    take,
)

START = datetime(2027, 3, 2, 14, 0, tzinfo=UTC)
POLICIES: tuple[PreparePolicy, ...] = ("ahead", "on_clearance")
policies = st.sampled_from(POLICIES)


@given(
    order=st.permutations(STEPS),
    policy=policies,
    gaps=st.lists(st.integers(0, 120), min_size=4, max_size=4),
)
def test_steps_taken_in_any_order_end_as_the_rules_allow(
    order: list[Step], policy: PreparePolicy, gaps: list[int]
) -> None:
    progress, at = Progress(), START
    for step, gap in zip(order, gaps, strict=True):
        at += timedelta(minutes=gap)
        why = refusal(progress, step, policy)
        if why is None:
            progress = take(progress, step, at, policy)
        else:
            with pytest.raises(StepRefused):
                take(progress, step, at, policy)
    # Never dispensed without being prepared and cleared, never given without being dispensed.
    if progress.dispensed_at is not None:
        assert progress.prepared_at is not None and progress.cleared_at is not None
        assert progress.prepared_at <= progress.dispensed_at
    if progress.administered_at is not None:
        assert progress.dispensed_at is not None
    if policy == "on_clearance" and progress.prepared_at is not None:
        assert progress.cleared_at is not None and progress.cleared_at <= progress.prepared_at
    taken = [s for s in STEPS if progress.at(s) is not None]
    assert status(progress) == (taken[-1] if taken else "planned")


def test_the_usual_day_and_its_drug_wait() -> None:
    p = Progress()
    assert status(p) == "planned"
    p = take(p, "cleared", START, "on_clearance")
    p = take(p, "prepared", START + timedelta(minutes=25), "on_clearance")
    p = take(p, "dispensed", START + timedelta(minutes=31), "on_clearance")
    assert status(p) == "dispensed" and drug_wait(p) == timedelta(minutes=31)
    p = take(p, "administered", START + timedelta(minutes=40), "on_clearance")
    assert status(p) == "administered"
    with pytest.raises(StepRefused, match="already"):
        take(p, "cleared", START + timedelta(hours=1), "on_clearance")


def test_prepared_ahead_is_prepared_before_clearance_and_waits_for_it() -> None:
    p = take(Progress(), "prepared", START - timedelta(hours=20), "ahead")
    assert status(p) == "prepared"
    with pytest.raises(StepRefused, match="cleared"):
        take(p, "dispensed", START, "ahead")
    p = take(p, "cleared", START - timedelta(minutes=10), "ahead")
    p = take(p, "dispensed", START - timedelta(minutes=5), "ahead")
    assert drug_wait(p) == timedelta(minutes=5)


def test_a_step_is_not_dated_before_the_one_before_it() -> None:
    p = take(Progress(), "cleared", START, "ahead")
    with pytest.raises(StepRefused, match="before"):
        take(p, "prepared", START - timedelta(minutes=1), "ahead")


@given(lead=st.integers(0, 240), cleared=st.none() | st.integers(-120, 120))
def test_prepare_by(lead: int, cleared: int | None) -> None:
    lead_time = timedelta(minutes=lead)
    assert prepare_by(START, lead_time, "ahead", None) == START - lead_time
    cleared_at = None if cleared is None else START + timedelta(minutes=cleared)
    by = prepare_by(START, lead_time, "on_clearance", cleared_at)
    assert by == (None if cleared_at is None else cleared_at + lead_time)
