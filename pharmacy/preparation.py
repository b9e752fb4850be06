"""A dose's way from the plan to the chair: the steps, their order, and when it must be ready.

Plain functions. A dose is `planned` when its visit is booked. The nurse `clears` the patient
(vitals and screening done); the pharmacy marks it `prepared`, then `dispensed` (the drug is
at the chair); the visit's completion makes it `administered`. A center that prepares ahead
(the day before, or hours before the start) may prepare before clearance; one that prepares
on clearance waits for it, so nothing is mixed for a patient who is not fit to receive it.
Each step's time is kept: the center's *drug wait* is clearance to drug at the chair.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

Step = Literal["cleared", "prepared", "dispensed", "administered"]
Status = Literal["planned", "cleared", "prepared", "dispensed", "administered"]
PreparePolicy = Literal["ahead", "on_clearance"]
STEPS: tuple[Step, ...] = ("cleared", "prepared", "dispensed", "administered")


class StepRefused(ValueError):
    """A step out of order (dispensing what is not prepared), or taken twice."""


@dataclass(frozen=True)
class Progress:
    """When each step was taken (None: not yet)."""

    cleared_at: datetime | None = None
    prepared_at: datetime | None = None
    dispensed_at: datetime | None = None
    administered_at: datetime | None = None

    def at(self, step: Step) -> datetime | None:
        value: datetime | None = getattr(self, f"{step}_at")
        return value


def status(progress: Progress) -> Status:
    """The furthest step taken; a dose prepared ahead and not yet cleared is `prepared`."""
    for step in reversed(STEPS):
        if progress.at(step) is not None:
            return step
    return "planned"


def refusal(progress: Progress, step: Step, policy: PreparePolicy) -> str | None:
    """Why `step` may not be taken now, or None when it may."""
    if progress.at(step) is not None:
        return f"the dose is already {step}"
    if step == "cleared" and progress.dispensed_at is not None:
        return "the dose is already at the chair"
    if step == "prepared" and policy == "on_clearance" and progress.cleared_at is None:
        return "this center prepares on the nurse's clearance: clear the patient first"
    if step == "dispensed":
        if progress.prepared_at is None:
            return "only a prepared dose can be dispensed"
        if progress.cleared_at is None:
            return "the patient must be cleared before the drug goes to the chair"
    if step == "administered" and progress.dispensed_at is None:
        return "only a dispensed dose can be administered"
    return None


def take(progress: Progress, step: Step, at: datetime, policy: PreparePolicy) -> Progress:
    """`progress` with `step` taken at `at` (StepRefused when it may not be)."""
    why = refusal(progress, step, policy)
    if why is not None:
        raise StepRefused(why)
    earlier = [t for s in STEPS if (t := progress.at(s)) is not None]
    if earlier and at < max(earlier):
        raise StepRefused("a step cannot be dated before the one before it")
    return Progress(**{**progress.__dict__, f"{step}_at": at})


def prepare_by(
    start: datetime, lead: timedelta, policy: PreparePolicy, cleared_at: datetime | None
) -> datetime | None:
    """When the dose must be ready at the latest. Prepared ahead: the lead time before the
    start. On clearance: the lead time after the clearance (None until the patient is
    cleared); a late clearance makes a late drug, which the drug wait shows."""
    if policy == "ahead":
        return start - lead
    if cleared_at is None:
        return None
    return cleared_at + lead


def drug_wait(progress: Progress) -> timedelta | None:
    """Clearance to drug at the chair: the figure infusion centers are judged by."""
    if progress.cleared_at is None or progress.dispensed_at is None:
        return None
    return max(timedelta(0), progress.dispensed_at - progress.cleared_at)
