"""The day optimiser's plan keeps every booking rule (issue 16); pure, no server."""

from __future__ import annotations

import itertools
from collections.abc import Hashable
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.optimiser import instance as bench_instance
from scheduling import optimiser
from scheduling.optimiser import (
    Chair,
    DayGrid,
    Placement,
    Plan,
    Problem,
    Session,
    _relaxation,
    census,
    first_fit,
    optimise,
    start_cap,
    starts,
)


def assert_rules(problem: Problem, plan: Plan) -> None:
    placed = plan.placements
    turn = problem.turnover
    kinds = {c.id: c.kind for c in problem.chairs}
    assert set(placed) == {s.id for s in problem.sessions}
    for s in problem.sessions:
        p = placed[s.id]
        day = problem.days[p.day]
        assert day.opens <= p.start and p.start + s.duration <= day.closes, s
        if s.movable:
            assert p.day in s.days, s
            assert kinds[p.chair] in s.kinds, s
        else:
            assert p == s.current, s
    ss = list(problem.sessions)
    for i, a in enumerate(ss):
        for b in ss[i + 1 :]:
            pa, pb = placed[a.id], placed[b.id]
            if pa.day != pb.day:
                continue
            if pa.chair == pb.chair:
                assert (
                    pa.start + a.duration + turn <= pb.start
                    or pb.start + b.duration + turn <= pa.start
                ), (a, b)
            if a.patient == b.patient:
                assert pa.start + a.duration <= pb.start or pb.start + b.duration <= pa.start
    for (d, t), n in census(problem, placed).items():
        assert n <= problem.days[d].nurses_in(t) * problem.patients_per_nurse, (d, t)
    begun = starts(problem, placed)
    for d, day in enumerate(problem.days):
        for t in range(96):
            cap = start_cap(day, t)
            if cap is not None:
                assert begun.get((d, t), 0) + begun.get((d, t + 1), 0) <= cap, (d, t)
    assert plan.peak_census == max(census(problem, placed).values(), default=0)


@st.composite
def problems(draw: st.DrawFn) -> Problem:
    n_days = draw(st.integers(1, 2))
    days = []
    for _ in range(n_days):
        opens = draw(st.integers(28, 32))
        closes = opens + draw(st.integers(16, 24))
        nurses = tuple(draw(st.lists(st.integers(1, 3), min_size=1, max_size=1))) * (closes - opens)
        days.append(DayGrid(opens, closes, nurses))
    chairs = [Chair(f"c{i}", draw(st.sampled_from(["bed", "recliner"]))) for i in range(4)]
    chairs[0] = Chair("c0", "recliner")
    sessions = []
    for i in range(draw(st.integers(1, 7))):
        dur = draw(st.integers(2, 6))
        allowed = frozenset(draw(st.sets(st.integers(0, n_days - 1), min_size=1)))
        target = draw(st.sampled_from(sorted(allowed)))
        day = days[target]
        current = Placement(target, day.opens + 4 * i % (day.closes - day.opens - dur), "c0")
        sessions.append(
            Session(
                id=f"s{i}",
                patient=f"p{draw(st.integers(0, 4))}",
                duration=dur,
                kinds=frozenset({"recliner", *draw(st.sets(st.sampled_from(["bed"])))}),
                days=allowed,
                target_day=target,
                preferred_start=draw(st.integers(day.opens, day.closes - dur)),
                current=current,
                movable=i > 0 or draw(st.booleans()),
            )
        )
    return Problem(days, chairs, sessions, patients_per_nurse=2, turnover_minutes=15)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_plan_keeps_every_rule(problem: Problem) -> None:
    ff = first_fit(problem)
    plan = optimise(problem, time_limit=1.0)
    if not plan.feasible:  # e.g. a fixed session that leaves no room: first-fit fails too
        assert ff.unplaced
        return
    assert_rules(problem, plan)
    assert plan.peak_bound <= plan.peak_census
    if not ff.unplaced:
        assert_rules(problem, ff)
        assert plan.peak_census <= ff.peak_census


def morning_rush(n: int = 12) -> Problem:
    """Twelve 2-hour sessions all wanting 08:00 on an 8-hour day with 6 chairs and plenty of
    nurses: first-fit stacks six at 08:00 (then six at 10:15); spread, the peak is 3."""
    day = DayGrid(32, 64, (6,) * 32)  # 08:00-16:00
    chairs: list[Chair] = [Chair(f"c{i}", "recliner") for i in range(6)]
    sessions = [
        Session(f"s{i}", f"p{i}", 8, frozenset({"recliner"}), frozenset({0}), 0, 32)
        for i in range(n)
    ]
    return Problem([day], chairs, sessions, patients_per_nurse=4, turnover_minutes=15)


def test_level_loading_lowers_the_peak() -> None:
    problem = morning_rush()
    ff = first_fit(problem)
    plan = optimise(problem, time_limit=5.0)
    assert_rules(problem, plan)
    assert_rules(problem, ff)
    assert ff.peak_census == 6
    # 12 sessions x 8 slots over 32 slots: at least 3 at once somewhere, and 3 is reached.
    assert plan.peak_census == plan.peak_bound == 3
    assert plan.max_starts <= ff.max_starts
    assert plan.off_target_day == 0


def test_fixed_sessions_stay_and_count() -> None:
    day = DayGrid(32, 48, (1,) * 16)
    chairs = [Chair("a", "recliner"), Chair("b", "recliner")]
    fixed = Session(
        "f", "p1", 8, frozenset({"recliner"}), frozenset({0}), 0, 32, Placement(0, 32, "a"), False
    )
    mover = Session(
        "m", "p2", 8, frozenset({"recliner"}), frozenset({0}), 0, 32, Placement(0, 32, "b")
    )
    problem = Problem([day], chairs, [fixed, mover], patients_per_nurse=2)
    plan = optimise(problem, time_limit=2.0)
    assert_rules(problem, plan)
    placed: dict[Hashable, Placement] = plan.placements
    assert placed["f"] == fixed.current
    # one nurse: the two cannot start within 30 minutes of each other, so the mover moves.
    assert placed["m"].start >= 34 and plan.moves == 1
    # 16 slots of work in 16 open slots: one at a time fits, and one at a time is optimal.
    assert plan.peak_census == 1 == plan.peak_bound


# The proved bound: never above any plan's peak, checked against every plan of tiny problems.


def keeps_rules(problem: Problem, placed: dict[Hashable, Placement]) -> bool:
    peak = max(census(problem, placed).values())
    try:
        assert_rules(problem, Plan(placed, peak, 0, 0, 0, 0, 0, True))
    except AssertionError:
        return False
    return True


def lowest_peak(problem: Problem) -> int | None:
    """The lowest peak census of any plan keeping every rule, by trying every (day, start) of
    every session and, where that would lower the best peak so far, every chair."""
    times: list[list[tuple[int, int]]] = []
    seats: list[list[Hashable]] = []
    for s in problem.sessions:
        if not s.movable:
            assert s.current is not None
            times.append([(s.current.day, s.current.start)])
            seats.append([s.current.chair])
            continue
        times.append(
            [
                (d, t)
                for d in sorted(s.days)
                for t in range(problem.days[d].opens, problem.days[d].closes - s.duration + 1)
            ]
        )
        seats.append([c.id for c in problem.chairs if c.kind in s.kinds])
    best: int | None = None
    for when in itertools.product(*times):
        at = {s.id: Placement(d, t, None) for s, (d, t) in zip(problem.sessions, when, strict=True)}
        peak = max(census(problem, at).values())
        if best is not None and peak >= best:
            continue
        for where in itertools.product(*seats):
            placed: dict[Hashable, Placement] = {
                s.id: Placement(d, t, c)
                for s, (d, t), c in zip(problem.sessions, when, where, strict=True)
            }
            if keeps_rules(problem, placed):
                best = peak
                break
    return best


@st.composite
def tiny_problems(draw: st.DrawFn) -> Problem:
    n_sessions = draw(st.integers(2, 4))
    n_days = draw(st.integers(1, 2 if n_sessions < 4 else 1))
    days = []
    for _ in range(n_days):
        opens = draw(st.integers(30, 32))
        closes = opens + draw(st.integers(6, 9))
        nurses = draw(st.lists(st.integers(1, 2), min_size=closes - opens, max_size=closes - opens))
        days.append(DayGrid(opens, closes, tuple(nurses)))
    chairs = [Chair("c0", "recliner"), Chair("c1", draw(st.sampled_from(["bed", "recliner"])))]
    chairs.append(Chair("c2", draw(st.sampled_from(["bed", "recliner"]))))
    sessions = []
    for i in range(n_sessions):
        dur = draw(st.integers(2, 5))
        allowed = frozenset(draw(st.sets(st.integers(0, n_days - 1), min_size=1)))
        target = draw(st.sampled_from(sorted(allowed)))
        day = days[target]
        movable = i > 0 or draw(st.booleans())
        start = draw(st.integers(day.opens, day.closes - dur))
        kinds = draw(st.sampled_from([{"recliner"}, {"bed"}, {"bed", "recliner"}]))
        sessions.append(
            Session(
                id=f"s{i}",
                patient=f"p{draw(st.integers(0, 3))}",
                duration=dur,
                kinds=frozenset(kinds | ({"recliner"} if not movable else set())),
                days=allowed,
                target_day=target,
                preferred_start=draw(st.integers(day.opens, day.closes - dur)),
                current=Placement(target, start, "c0") if movable or i == 0 else None,
                movable=movable,
            )
        )
    return Problem(days, chairs, sessions, patients_per_nurse=2, turnover_minutes=15)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tiny_problems())
def test_bound_is_never_above_the_lowest_peak(problem: Problem) -> None:
    fixed = [s for s in problem.sessions if not s.movable]
    movable = [s for s in problem.sessions if s.movable]
    relaxed, _ = _relaxation(problem, fixed, movable, 1.0, 2)
    plan = optimise(problem, time_limit=1.0)
    best = lowest_peak(problem)
    if best is None:
        assert not plan.feasible
        return
    assert relaxed <= best
    assert plan.feasible
    assert_rules(problem, plan)
    assert plan.peak_bound <= best <= plan.peak_census
    if plan.optimal:
        assert plan.peak_census == best


def test_bound_holds_without_the_relaxation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past its size limit the relaxation is skipped: the search starts from the current
    placements and the bound is CP-SAT's own."""
    monkeypatch.setattr(optimiser, "RELAXATION_MAX_STARTS", 0)
    problem = morning_rush()
    moved = [
        replace(s, current=Placement(0, 32 + 8 * (i % 4), f"c{i // 4}"))
        for i, s in enumerate(problem.sessions)
    ]
    problem = replace(problem, sessions=moved)
    plan = optimise(problem, time_limit=5.0)
    assert_rules(problem, plan)
    assert plan.peak_census == plan.peak_bound == 3


def test_where_sessions_are_is_the_plan_when_nothing_better_is_found_in_time() -> None:
    """Out of time before any solution (a bench-sized day, a moment to solve it), the
    optimiser keeps every session where it is (a plan that keeps the rules) rather than
    report that no plan exists."""
    day = bench_instance(40, 120, 10, seed=1)
    ff = first_fit(day)
    now = Problem(
        day.days,
        day.chairs,
        [replace(s, current=ff.placements[s.id]) for s in day.sessions if s.id in ff.placements],
        day.patients_per_nurse,
        day.turnover_minutes,
    )
    assert optimiser.valid(now, {s.id: s.current for s in now.sessions if s.current})
    plan = optimise(now, time_limit=0.0, num_workers=1)
    assert plan.feasible
    assert_rules(now, plan)
    assert plan.peak_bound <= plan.peak_census <= ff.peak_census


def test_valid_knows_a_broken_plan() -> None:
    problem = morning_rush(2)
    together = {s.id: Placement(0, 32, "c0") for s in problem.sessions}  # one chair, twice
    apart = {s.id: Placement(0, 32, f"c{i}") for i, s in enumerate(problem.sessions)}
    assert not optimiser.valid(problem, together)
    assert optimiser.valid(problem, apart)
