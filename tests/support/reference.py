"""Earlier versions of rules, kept as references: a test shows the new one answers the same,
and a benchmark measures against it in the same run."""

from __future__ import annotations

from collections.abc import Sequence


def old_round_to_vials(dose_g: float, vial_sizes_g: Sequence[float], tolerance_pct: float) -> float:
    """`scheduling.catalog.dose.round_to_vials` as it was before the vial planner."""
    sizes = sorted({round(v / 0.1) for v in vial_sizes_g if v > 0})
    if not sizes or tolerance_pct <= 0:
        return dose_g
    target = dose_g / 0.1
    limit = int(target * (1 + tolerance_pct / 100)) + 1
    makeable = [False] * (limit + 1)
    makeable[0] = True
    for amount in range(1, limit + 1):
        makeable[amount] = any(amount >= s and makeable[amount - s] for s in sizes)
    candidates = [a for a in range(1, limit + 1) if makeable[a]]
    if not candidates:
        return dose_g
    best = min(candidates, key=lambda a: (abs(a - target), a))
    if abs(best - target) > target * tolerance_pct / 100:
        return dose_g
    return round(best * 0.1, 1)
