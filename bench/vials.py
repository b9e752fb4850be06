"""Vial planner benchmark (issue 15): how long planning one dose takes.

Target: at most 1 ms a dose for realistic cases. --doses random doses (0.4 to 2 g/kg for 10 to
120 kg, so up to 240 g, to the hundredth of a gram), each for Gamunex-C (1, 2.5, 5, 10, 20,
40 g) or Gammagard Liquid (1, 2.5, 5, 10, 20, 30 g), under a random policy (no rounding,
10 %, 5 g, both; one in ten in a shortage), planned two ways:

* catalog: every size, as many as needed (what the course plan and booking ask);
* stock:   one to three lots of each size, 0 to 12 vials each, random expiry dates, one size in
           six out of stock (what the preparation list asks).

The baseline, timed on the same doses in the same run, is round_to_vials as it was before the
planner (a copy below): dynamic programming over every tenth of a gram up to the tolerance,
amounts only, with no vial counts, lots or waste.

    .venv/bin/python -m bench.vials [--doses 10000] [--seed 7]

It prints figures; it asserts nothing about timing.
"""

from __future__ import annotations

import argparse
import math
import random
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from functools import partial

from scheduling.catalog.vials import Stock, Tolerance, catalog_stock, plan_vials
from tests.support.reference import old_round_to_vials

PRODUCTS = {
    "Gamunex-C": (1.0, 2.5, 5.0, 10.0, 20.0, 40.0),
    "Gammagard Liquid": (1.0, 2.5, 5.0, 10.0, 20.0, 30.0),
}
POLICIES = (Tolerance(), Tolerance(pct=10), Tolerance(grams=5), Tolerance(pct=10, grams=5))
TARGET_MS = 1.0
FIRST_EXPIRY = date(2027, 1, 1)


def shelf(rng: random.Random, sizes: Sequence[float]) -> list[Stock]:
    stock = []
    for size in sizes:
        if rng.random() < 1 / 6:
            continue
        for _ in range(rng.randint(1, 3)):
            expires = FIRST_EXPIRY + timedelta(days=rng.randrange(720))
            stock.append(
                Stock(size, rng.randint(0, 12), uuid.UUID(int=rng.getrandbits(128)), expires)
            )
    return stock


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest rank (no interpolation: a time some dose really took)."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1] if ordered else math.nan


def timed(calls: Sequence[Callable[[], object]]) -> list[float]:
    ms = []
    for call in calls:
        start = time.perf_counter_ns()
        call()
        ms.append((time.perf_counter_ns() - start) / 1e6)
    return ms


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--doses", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    catalog: list[Callable[[], object]] = []
    stocked: list[Callable[[], object]] = []
    baseline: list[Callable[[], object]] = []
    for _ in range(args.doses):
        sizes = PRODUCTS[rng.choice(sorted(PRODUCTS))]
        dose = round(rng.uniform(0.4, 2.0) * rng.uniform(10, 120), 2)
        policy = rng.choice(POLICIES)
        shortage = rng.random() < 0.1
        catalog.append(partial(plan_vials, dose, catalog_stock(sizes), policy, shortage=shortage))
        stocked.append(partial(plan_vials, dose, shelf(rng, sizes), policy, shortage=shortage))
        baseline.append(partial(old_round_to_vials, dose, sizes, 10))
    for warm in (catalog, stocked, baseline):  # import, caches, branch predictors
        timed(warm[:200])
    figures = {
        "baseline  old round_to_vials (10 %)": timed(baseline),
        "planner   catalog (as many as needed)": timed(catalog),
        "planner   stock (lots, counts, expiry)": timed(stocked),
    }
    base = figures["baseline  old round_to_vials (10 %)"]
    print(
        f"Chairside vial planner benchmark: {args.doses:,} doses (0.4-2 g/kg x 10-120 kg), "
        f"seed {args.seed}; ms a dose, one after another in this process; "
        f"x base = mean / the baseline's mean, measured in the same run"
    )
    head = (
        f"{'measure':<40}{'mean':>8}{'p50':>8}{'p95':>8}{'p99':>8}{'max':>8}{'x base':>8}  target"
    )
    print(head)
    print("-" * len(head))
    for label, ms in figures.items():
        mean = sum(ms) / len(ms)
        goal = ""
        if label.startswith("planner"):
            p99 = percentile(ms, 0.99)
            goal = f"p99 <= {TARGET_MS:.0f} ms: {'PASS' if p99 <= TARGET_MS else 'MISS'}"
        print(
            f"{label:<40}{mean:>8.3f}{percentile(ms, 0.5):>8.3f}{percentile(ms, 0.95):>8.3f}"
            f"{percentile(ms, 0.99):>8.3f}{max(ms):>8.3f}{mean / (sum(base) / len(base)):>8.2f}"
            f"  {goal}"
        )


if __name__ == "__main__":
    main()
