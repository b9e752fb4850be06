"""Level-loading a center's days (issue 16): re-place movable sessions with CP-SAT.

Pure: plain dataclasses in, a `Plan` out; no session, no clock, no I/O. Times are 15-minute
slots counted from local midnight; a day is open over slots [opens, closes) and
`nurses[k]` nurses are on duty in slot `opens + k`.

The rules are those of scheduling.centers.rules, on the grid:
- a session lies within its day's opening hours, on a chair of a kind it allows;
- a chair holds a session and the turnover after it (which may run past closing, as in
  `holding_chairs`); no two overlap on one chair;
- one patient's sessions never overlap;
- census: in every slot, active sessions <= nurses on duty x patients per nurse;
- starts: sessions starting in slots {s, s + 1} <= the nurses on duty in slot s and in the slot
  before it (those that are on duty; slots with nobody on duty are left to the census rule).
  That is rules.start_conflicts exactly when starts and shifts lie on the 15-minute grid: a
  30-minute window opening at a slot boundary, or up to 14 minutes after the previous one,
  holds exactly the starts of slots s and s + 1.

The model. Chairs of one kind are interchangeable, so instead of a boolean per (session,
chair) (40 x 120 optional intervals with 40-fold symmetry) a session picks a *pool*: the
chairs of one kind that carry no fixed session, modelled as one cumulative whose capacity is
the number of chairs in it; chairs that do carry a fixed session are modelled one by one
(optional intervals and a no-overlap with the fixed ones). Chair intervals last duration +
turnover, half-open, so a pool whose cumulative stays <= k can be given chairs afterwards by
greedy colouring in start order (interval graphs are perfect: at most k overlapping means k
chairs suffice), keeping a session on its current chair when that chair is free.

Each session has one start variable on a global timeline (day i occupies [i*W, i*W + W)),
whose domain is the union of its feasible starts on its allowed days, and a day variable tied
to it. Census is a cumulative of the sessions' intervals (fixed ones included): once against
the nurse capacity (varying capacity by fixed "blocking" intervals) and once against the
`peak` variable. Starts are cumulatives of 2-slot "setup" intervals [start, start + 2): at slot
x they count the starts in {x - 1, x}, so the same two tricks give the start rule and the
`max_starts` variable. No per-slot booleans anywhere.

The relaxation, first. Sessions alike in duration, kinds and allowed days are interchangeable
to the census, start and chair rules, so a small time-indexed integer model counts how many of
each class start in each slot of each day: census per slot <= nurse capacity and <= `peak`,
starts per window {s, s + 1} <= the start cap, and, for each set of kinds a session allows,
the sessions (and turnovers) that need a chair of those kinds <= the chairs of those kinds;
fixed sessions count as constants. It leaves out only which patient a session is and which
chair it gets, so every plan is a solution of it: its proved optimum (or CP-SAT's bound on it
in its time) is a lower bound on the peak. Its linear relaxation is far stronger than that of
the cumulatives (it sees, e.g., that the start cap keeps the census low in the first slots of
a day). Its solution, with sessions of a class given its starts in order of preferred start,
swapped within a class until no patient's sessions overlap and seated greedily, is the hint
for stage 1, which then often only has to check it. When it is too large
(`RELAXATION_MAX_STARTS`) it is skipped and the hint is the current placements.

Objectives, lexicographic, solved in stages (each stage's optimum, or the best found in its
time, is fixed as a bound for the next, and its solution is the next stage's hint):
1. the peak census over all slots of all days, from at least the relaxation's bound; the
   reported lower bound (`Plan.peak_bound`) is the larger of that and the stage's
   `BestObjectiveBound`, both proved;
2. the most starts in any 30 minutes;
3. off-target-day sessions x (1 + the largest possible total time deviation) + the total
   deviation in slots from the preferred start: provably lexicographic, since a single
   off-day session costs more than every deviation together;
4. moves: sessions whose (day, start) differs from their current placement (chairs are then
   kept by the colouring where they can be).
The relaxation takes at most `RELAXATION_SHARE` of the time limit; each stage then gets its
`STAGE_SHARE` of what is left (over the stages there are), inheriting what earlier ones left.

Where sessions are now is itself a plan when it keeps the rules (`valid`), as a schedule read
from the database does. The relaxation's starts may leave no chair free for them on chairs
modelled one by one, so stage 1 then tries them for half its time and, failing, starts again
from where the sessions are; with no solution at all in the time, the plan is where they are
(nothing moves). "No plan" is only ever said of a problem with no valid current placement.
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

from ortools.sat.python import cp_model

SLOT_MINUTES = 15
SLOTS_A_DAY = 24 * 60 // SLOT_MINUTES
STAGE_SHARE = (0.7, 0.1, 0.12, 0.08)  # of the time limit, each stage also inheriting leftovers
RESERVE = 0.02  # of the time limit, kept for what follows the solves (CP-SAT runs over a bit)
RELAXATION_SHARE = 0.3  # at most, of the time limit: stage 1 starts once it is proved
RELAXATION_MAX_STARTS = 60_000  # (class, day, start) variables; past that, no relaxation


@dataclass(frozen=True)
class DayGrid:
    opens: int  # first open slot (from local midnight)
    closes: int  # first slot after closing
    nurses: tuple[int, ...]  # nurses on duty in slot opens + k

    def nurses_in(self, slot: int) -> int:
        k = slot - self.opens
        return self.nurses[k] if 0 <= k < len(self.nurses) else 0


@dataclass(frozen=True)
class Chair:
    id: Hashable
    kind: str


@dataclass(frozen=True)
class Placement:
    day: int  # index into the days
    start: int  # slot from local midnight
    chair: Hashable


@dataclass(frozen=True)
class Session:
    id: Hashable
    patient: Hashable
    duration: int  # slots
    kinds: frozenset[str]
    days: frozenset[int]  # allowed day indexes: the clinical window and the cover, by the caller
    target_day: int
    preferred_start: int
    current: Placement | None = None
    movable: bool = True  # fixed sessions stay at `current` and still count


@dataclass(frozen=True)
class Problem:
    days: Sequence[DayGrid]
    chairs: Sequence[Chair]
    sessions: Sequence[Session]
    patients_per_nurse: int
    turnover_minutes: int = 0

    @property
    def turnover(self) -> int:
        return math.ceil(self.turnover_minutes / SLOT_MINUTES)


@dataclass(frozen=True)
class Plan:
    placements: dict[Hashable, Placement]
    peak_census: int
    peak_bound: int  # proved lower bound on the peak census
    max_starts: int  # most starts in any 30 minutes
    off_target_day: int
    moves: int
    seconds: float
    optimal: bool  # every stage proved optimal
    feasible: bool = True
    unplaced: tuple[Hashable, ...] = ()  # first-fit only: sessions it found no place for


# Figures of a plan, shared by the optimiser, first-fit and the tests.


def census(problem: Problem, placements: dict[Hashable, Placement]) -> dict[tuple[int, int], int]:
    """Active sessions per (day, slot)."""
    counts: dict[tuple[int, int], int] = {}
    for s in problem.sessions:
        if (p := placements.get(s.id)) is None:
            continue
        for t in range(p.start, p.start + s.duration):
            counts[p.day, t] = counts.get((p.day, t), 0) + 1
    return counts


def starts(problem: Problem, placements: dict[Hashable, Placement]) -> dict[tuple[int, int], int]:
    counts: dict[tuple[int, int], int] = {}
    for s in problem.sessions:
        if (p := placements.get(s.id)) is not None:
            counts[p.day, p.start] = counts.get((p.day, p.start), 0) + 1
    return counts


def max_starts_in_30(problem: Problem, placements: dict[Hashable, Placement]) -> int:
    c = starts(problem, placements)
    return max((n + c.get((d, t + 1), 0) for (d, t), n in c.items()), default=0)


def start_cap(day: DayGrid, slot: int) -> int | None:
    """How many may start in slots {slot, slot + 1}, or None when nobody is on duty around."""
    on_duty = [n for n in (day.nurses_in(slot - 1), day.nurses_in(slot)) if n > 0]
    return min(on_duty) if on_duty else None


def figures(problem: Problem, placements: dict[Hashable, Placement]) -> tuple[int, int, int, int]:
    """(peak census, max starts in 30 minutes, off-target-day sessions, moves)."""
    peak = max(census(problem, placements).values(), default=0)
    placed = [(s, placements[s.id]) for s in problem.sessions if s.id in placements]
    off = sum(1 for s, p in placed if p.day != s.target_day)
    moves = sum(1 for s, p in placed if s.current is not None and p != s.current)
    return peak, max_starts_in_30(problem, placements), off, moves


# The optimiser.


def optimise(problem: Problem, time_limit: float = 10.0, num_workers: int = 2) -> Plan:
    began = time.perf_counter()
    days, chairs, turn = problem.days, problem.chairs, problem.turnover
    width = 2 * SLOTS_A_DAY  # room for a turnover running past closing
    ppn = problem.patients_per_nurse
    fixed = [s for s in problem.sessions if not s.movable]
    movable = [s for s in problem.sessions if s.movable]
    chair_by_id = {c.id: c for c in chairs}
    pinned = sorted({s.current.chair for s in fixed if s.current is not None}, key=lambda c: str(c))
    pools: dict[str, list[Chair]] = {}
    for c in chairs:
        if c.id not in pinned:
            pools.setdefault(c.kind, []).append(c)

    m = cp_model.CpModel()

    def at(p: Placement) -> int:
        return p.day * width + p.start

    # Census and start intervals, per session.
    census_iv: list[cp_model.IntervalVar] = []
    setup_iv: list[cp_model.IntervalVar] = []
    by_patient: dict[Hashable, list[cp_model.IntervalVar]] = {}
    start_of: dict[Hashable, cp_model.IntVar] = {}
    day_of: dict[Hashable, cp_model.IntVar] = {}
    pool_ivs: dict[str, list[cp_model.IntervalVar]] = {k: [] for k in pools}
    chair_ivs: dict[Hashable, list[cp_model.IntervalVar]] = {c: [] for c in pinned}
    choice: dict[Hashable, list[tuple[Hashable, cp_model.IntVar, bool]]] = {}
    for s in fixed:
        assert s.current is not None, f"fixed session {s.id!r} has no placement"
        g = at(s.current)
        census_iv.append(m.new_fixed_size_interval_var(g, s.duration, f"c{s.id}"))
        setup_iv.append(m.new_fixed_size_interval_var(g, 2, f"u{s.id}"))
        by_patient.setdefault(s.patient, []).append(census_iv[-1])
        chair_ivs[s.current.chair].append(
            m.new_fixed_size_interval_var(g, s.duration + turn, f"h{s.id}")
        )
    for s in movable:
        ranges = [
            [d * width + days[d].opens, d * width + days[d].closes - s.duration]
            for d in sorted(s.days)
            if 0 <= d < len(days) and days[d].closes - days[d].opens >= s.duration
        ]
        if not ranges:
            return _infeasible(began)
        start = m.new_int_var_from_domain(cp_model.Domain.from_intervals(ranges), f"s{s.id}")
        day = m.new_int_var_from_domain(
            cp_model.Domain.from_values([r[0] // width for r in ranges]), f"d{s.id}"
        )
        m.add(start >= width * day)
        m.add(start < width * day + width)
        start_of[s.id], day_of[s.id] = start, day
        census_iv.append(m.new_interval_var(start, s.duration, start + s.duration, f"c{s.id}"))
        setup_iv.append(m.new_interval_var(start, 2, start + 2, f"u{s.id}"))
        by_patient.setdefault(s.patient, []).append(census_iv[-1])
        options: list[tuple[Hashable, bool]] = []
        for kind in sorted(s.kinds):
            if kind in pools:
                options.append((kind, True))
            options.extend((c, False) for c in pinned if chair_by_id[c].kind == kind)
        if not options:
            return _infeasible(began)
        choice[s.id] = []
        for key, is_pool in options:
            lit = m.new_bool_var(f"x{s.id}/{key}")
            iv = m.new_optional_interval_var(
                start, s.duration + turn, start + s.duration + turn, lit, f"h{s.id}/{key}"
            )
            if is_pool:
                pool_ivs[str(key)].append(iv)  # a pool's key is its kind
            else:
                chair_ivs[key].append(iv)
            choice[s.id].append((key, lit, is_pool))
        m.add_exactly_one(lit for _, lit, _ in choice[s.id])

    for kind, ivs in pool_ivs.items():
        if ivs:
            m.add_cumulative(ivs, [1] * len(ivs), len(pools[kind]))
    for ivs in chair_ivs.values():
        m.add_no_overlap(ivs)
    for ivs in by_patient.values():
        if len(ivs) > 1:
            m.add_no_overlap(ivs)

    # Nurse capacity: varying capacities by fixed blocking intervals under a constant ceiling.
    cap = {(d, t): g.nurses_in(t) * ppn for d, g in enumerate(days) for t in range(SLOTS_A_DAY)}
    top = max(max(cap.values(), default=0), 1)
    caps_start: dict[tuple[int, int], int] = {}
    for d, grid in enumerate(days):
        for t in range(SLOTS_A_DAY):
            # the window {t, t + 1}, seen by the setup cumulative at t + 1
            if (most_here := start_cap(grid, t)) is not None:
                caps_start[d, t + 1] = most_here
    start_top = max(max(caps_start.values(), default=0), 1)
    block_c: list[cp_model.IntervalVar] = []
    demand_c: list[int] = []
    block_u: list[cp_model.IntervalVar] = []
    demand_u: list[int] = []
    for d in range(len(days)):
        for t in range(width):
            at_g = d * width + t
            lack = top - cap.get((d, t), 0)
            if lack > 0:
                block_c.append(m.new_fixed_size_interval_var(at_g, 1, f"bc{at_g}"))
                demand_c.append(lack)
            ulack = start_top - caps_start.get((d, t), start_top)
            if ulack > 0:
                block_u.append(m.new_fixed_size_interval_var(at_g, 1, f"bu{at_g}"))
                demand_u.append(ulack)
    ones = [1] * len(census_iv)
    m.add_cumulative(census_iv + block_c, ones + demand_c, top)
    m.add_cumulative(setup_iv + block_u, ones + demand_u, start_top)

    open_slots = sum(g.closes - g.opens for g in days)
    energy = sum(s.duration for s in problem.sessions)
    relaxed_bound, relaxed = _relaxation(
        problem, fixed, movable, time_limit * RELAXATION_SHARE, num_workers
    )
    floor = max(1, math.ceil(energy / max(open_slots, 1)), relaxed_bound)
    # Where the search starts from: the relaxation's placement, else where sessions are now.
    first = relaxed or {
        s.id: (s.current.day, s.current.start)
        for s in movable
        if s.current is not None and _domain(start_of[s.id]).contains(at(s.current))
    }
    # Where every movable session is now is itself a plan, if it keeps the rules: the search
    # can always fall back on it (nothing moves), and never reports no plan where one exists.
    now_valid = all(s.current is not None for s in movable) and valid(
        problem, {s.id: s.current for s in problem.sessions if s.current is not None}
    )
    peak = m.new_int_var(min(floor, top), top, "peak")
    m.add_cumulative(census_iv, ones, peak)
    most = m.new_int_var(1, max(start_top, len(setup_iv)), "max_starts")
    m.add_cumulative(setup_iv, ones, most)

    # Stage 3 and 4 terms.
    deviation_terms = []
    off_terms = []
    move_terms = []
    for s in movable:
        st, dy = start_of[s.id], day_of[s.id]
        dev = m.new_int_var(0, SLOTS_A_DAY, f"dev{s.id}")
        m.add_abs_equality(dev, st - width * dy - s.preferred_start)
        deviation_terms.append(dev)
        off = m.new_bool_var(f"off{s.id}")
        m.add(dy == s.target_day).only_enforce_if(~off)
        off_terms.append(off)
        if s.current is not None:
            mv = m.new_bool_var(f"mv{s.id}")
            m.add(st == at(s.current)).only_enforce_if(~mv)
            move_terms.append(mv)
        if (spot := first.get(s.id)) is not None:
            g = width * spot[0] + spot[1]
            m.add_hint(st, g)
            m.add_hint(dy, spot[0])
            m.add_hint(dev, abs(spot[1] - s.preferred_start))
            m.add_hint(off, spot[0] != s.target_day)
            if s.current is not None:
                m.add_hint(mv, g != at(s.current))
    if first:
        _hint_seats(m, problem, first, choice, pools, turn, width)
        laid = {s.id: s.current for s in problem.sessions if s.current is not None}
        laid.update((k, Placement(d, t, None)) for k, (d, t) in first.items())
        m.add_hint(peak, max(census(problem, laid).values(), default=0))
        m.add_hint(most, max_starts_in_30(problem, laid))
    weight = 1 + SLOTS_A_DAY * len(movable)
    stages: list[cp_model.LinearExprT] = [
        peak,
        most,
        weight * cp_model.LinearExpr.sum(off_terms) + cp_model.LinearExpr.sum(deviation_terms),
        cp_model.LinearExpr.sum(move_terms),
    ]
    if not move_terms:
        stages.pop()
    if not movable:
        stages = stages[:1]

    solver = cp_model.CpSolver()
    solver.parameters.num_workers = num_workers
    optimal = True
    bound = 0
    solved = False
    for i, objective in enumerate(stages):
        left = time_limit - RESERVE * time_limit - (time.perf_counter() - began)
        share = STAGE_SHARE[i] / sum(STAGE_SHARE[i : len(stages)])
        solver.parameters.max_time_in_seconds = max(0.05, left * share)
        m.minimize(objective)
        if i == 0 and relaxed and now_valid:
            # The relaxation's starts may leave no chair free where sessions sit on chairs of
            # their own (every chair carrying a fixed visit): half the time from them, then
            # from where the sessions are now, which is a plan.
            solver.parameters.max_time_in_seconds = max(0.05, left * share / 2)
        status = solver.solve(m)
        if i == 0 and status not in (cp_model.OPTIMAL, cp_model.FEASIBLE) and now_valid:
            m.clear_hints()  # type: ignore[no-untyped-call]  # untyped in ortools 9.15
            _hint_current(m, movable, start_of, day_of, choice, pools, chair_by_id, at)
            left = time_limit - RESERVE * time_limit - (time.perf_counter() - began)
            solver.parameters.max_time_in_seconds = max(0.05, left * share)
            status = solver.solve(m)
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            if not solved:
                if now_valid:
                    return _as_it_is(problem, floor, began)
                return _infeasible(began)
            optimal = False
            break  # keep the previous stage's solution (already hinted and bounded)
        solved = True
        optimal = optimal and status == cp_model.OPTIMAL
        if i == 0:
            bound = max(floor, math.ceil(solver.best_objective_bound - 1e-6))
        value = int(solver.objective_value)
        m.add(objective <= value)
        m.clear_hints()  # type: ignore[no-untyped-call]  # untyped in ortools 9.15
        for v in start_of.values():
            m.add_hint(v, solver.value(v))
        for v in day_of.values():
            m.add_hint(v, solver.value(v))
        for opts in choice.values():
            for _, lit, _ in opts:
                m.add_hint(lit, solver.boolean_value(lit))
        best_start = {k: solver.value(v) for k, v in start_of.items()}
        best_choice = {
            k: next((key, is_pool) for key, lit, is_pool in opts if solver.boolean_value(lit))
            for k, opts in choice.items()
        }

    placements = {s.id: s.current for s in fixed if s.current is not None}
    # Pinned chairs are chosen by the model; pools are coloured in start order.
    pooled: dict[str, list[tuple[int, Session]]] = {}
    for s in movable:
        g, (key, is_pool) = best_start[s.id], best_choice[s.id]
        p_day, p_start = divmod(g, width)
        if is_pool:
            pooled.setdefault(str(key), []).append((g, s))
        else:
            placements[s.id] = Placement(p_day, p_start, key)
    for pool_kind, items in pooled.items():
        placements.update(_colour(items, pools[pool_kind], turn, width))
    peak_v, most_v, off_v, moves_v = figures(problem, placements)
    return Plan(
        placements=placements,
        peak_census=peak_v,
        peak_bound=bound,
        max_starts=most_v,
        off_target_day=off_v,
        moves=moves_v,
        seconds=time.perf_counter() - began,
        optimal=optimal,
    )


# The relaxation: a proved lower bound on the peak, and placements to start the search from.


def _relaxation(
    problem: Problem,
    fixed: list[Session],
    movable: list[Session],
    time_limit: float,
    num_workers: int,
) -> tuple[int, dict[Hashable, tuple[int, int]] | None]:
    """(lower bound on the peak, (day, start) per movable session or None), from a
    time-indexed model of how many sessions of each class start in each slot."""
    days, turn, ppn = problem.days, problem.turnover, problem.patients_per_nurse
    kind_of = {c.id: c.kind for c in problem.chairs}
    # Sessions alike in duration, kinds and days are interchangeable here: patients are left
    # out (keeping a patient's sessions apart made it four times slower on the bench, for
    # the same bound), and `_untangle` deals with them afterwards.
    classes: dict[tuple[int, frozenset[str], tuple[int, ...]], list[Session]] = {}
    for s in movable:
        allowed = tuple(d for d in sorted(s.days) if 0 <= d < len(days))
        classes.setdefault((s.duration, s.kinds, allowed), []).append(s)
    keys = list(classes)
    size = sum(
        max(0, days[d].closes - days[d].opens - dur + 1)
        for dur, _, allowed in keys
        for d in allowed
    )
    if size > RELAXATION_MAX_STARTS:
        return 0, None
    m = cp_model.CpModel()
    x: dict[tuple[int, int, int], cp_model.IntVar] = {}  # (class, day, start) -> how many
    for c, (dur, _, allowed) in enumerate(keys):
        n = len(classes[keys[c]])
        here = []
        for d in allowed:
            for t in range(days[d].opens, days[d].closes - dur + 1):
                x[c, d, t] = m.new_int_var(0, n, f"x{c}/{d}/{t}")
                here.append(x[c, d, t])
        if not here:
            return 0, None
        m.add(sum(here) == n)
    load: dict[tuple[int, int], list[cp_model.IntVar]] = {}
    begun: dict[tuple[int, int], list[cp_model.IntVar]] = {}
    holding: dict[tuple[frozenset[str], int, int], list[cp_model.IntVar]] = {}
    kind_sets = {k for _, k, _ in keys}
    for (c, d, t), v in x.items():
        dur, kinds, _ = keys[c]
        for u in range(t, t + dur):
            load.setdefault((d, u), []).append(v)
        begun.setdefault((d, t), []).append(v)
        for ks in kind_sets:
            if kinds <= ks:
                for u in range(t, t + dur + turn):
                    holding.setdefault((ks, d, u), []).append(v)
    fixed_load: dict[tuple[int, int], int] = {}
    fixed_begun: dict[tuple[int, int], int] = {}
    fixed_holding: dict[tuple[frozenset[str], int, int], int] = {}
    for s in fixed:
        assert s.current is not None
        p = s.current
        for u in range(p.start, p.start + s.duration):
            fixed_load[p.day, u] = fixed_load.get((p.day, u), 0) + 1
        fixed_begun[p.day, p.start] = fixed_begun.get((p.day, p.start), 0) + 1
        for ks in kind_sets:
            if kind_of.get(p.chair) in ks:
                for u in range(p.start, p.start + s.duration + turn):
                    fixed_holding[ks, p.day, u] = fixed_holding.get((ks, p.day, u), 0) + 1
    top = max((g.nurses_in(t) * ppn for g in days for t in range(g.opens, g.closes)), default=0)
    peak = m.new_int_var(max(fixed_load.values(), default=0), max(top, 1), "peak")
    for (d, u), vs in sorted(load.items()):
        extra = fixed_load.get((d, u), 0)
        m.add(sum(vs) + extra <= peak)
        m.add(sum(vs) + extra <= days[d].nurses_in(u) * ppn)
    for d, w in sorted({(d, w) for d, t in begun for w in (t - 1, t)}):  # windows {w, w + 1}
        if (cap := start_cap(days[d], w)) is not None:
            both = begun.get((d, w), []) + begun.get((d, w + 1), [])
            extra = fixed_begun.get((d, w), 0) + fixed_begun.get((d, w + 1), 0)
            m.add(sum(both) + extra <= cap)
    seats = {ks: sum(1 for c in problem.chairs if c.kind in ks) for ks in kind_sets}
    for (ks, d, u), vs in holding.items():
        m.add(sum(vs) + fixed_holding.get((ks, d, u), 0) <= seats[ks])
    now: dict[tuple[int, int, int], int] = {}
    for c, key in enumerate(keys):
        for s in classes[key]:
            if s.current is not None and (c, s.current.day, s.current.start) in x:
                spot = (c, s.current.day, s.current.start)
                now[spot] = now.get(spot, 0) + 1
    if sum(now.values()) == len(movable):  # from where sessions are now, to stay near it
        for k, v in x.items():
            m.add_hint(v, now.get(k, 0))
    m.minimize(peak)
    solver = cp_model.CpSolver()
    solver.parameters.num_workers = num_workers
    solver.parameters.max_time_in_seconds = max(0.05, time_limit)
    status = solver.solve(m)
    if status == cp_model.INFEASIBLE:
        return 0, None
    bound = max(0, math.ceil(solver.best_objective_bound - 1e-6))
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return bound, None
    counts = {k: solver.value(v) for k, v in x.items()}
    spots: dict[int, list[tuple[int, int]]] = {}
    for (c, d, t), n in counts.items():
        spots.setdefault(c, []).extend([(d, t)] * n)
    placed: dict[Hashable, tuple[int, int]] = {}
    for c, key in enumerate(keys):
        # Those whose current place is among the class's starts keep it (fewer moves to undo
        # later); the rest take the others in order of preferred start.
        left = sorted(spots[c])
        group = []
        for s in sorted(classes[key], key=lambda s: (s.target_day, s.preferred_start, str(s.id))):
            was = (s.current.day, s.current.start) if s.current is not None else None
            if was is not None and was in left:
                left.remove(was)
                placed[s.id] = was
            else:
                group.append(s)
        placed.update((s.id, spot) for s, spot in zip(group, left, strict=True))
    _untangle(problem, placed, [classes[k] for k in keys])
    return bound, placed


def _untangle(
    problem: Problem, placed: dict[Hashable, tuple[int, int]], classes: list[list[Session]]
) -> None:
    """Swap the (day, start) of sessions of one class, which the relaxation does not tell
    apart, until no patient's sessions overlap (as far as swaps within classes can)."""
    own: dict[Hashable, list[Session]] = {}
    for s in problem.sessions:
        own.setdefault(s.patient, []).append(s)

    def where(s: Session) -> tuple[int, int]:
        if s.id in placed:
            return placed[s.id]
        assert s.current is not None
        return s.current.day, s.current.start

    def clashes(s: Session) -> int:
        d, t = where(s)
        return sum(
            1
            for o in own[s.patient]
            if o is not s
            and where(o)[0] == d
            and where(o)[1] < t + s.duration
            and t < where(o)[1] + o.duration
        )

    for group in classes:
        if len(group) < 2:
            continue
        for s in group:
            if len(own[s.patient]) < 2 or not clashes(s):
                continue
            for o in group:
                if o is s or o.patient == s.patient:
                    continue
                before = clashes(s) + clashes(o)
                placed[s.id], placed[o.id] = placed[o.id], placed[s.id]
                if clashes(s) + clashes(o) < before:
                    break
                placed[s.id], placed[o.id] = placed[o.id], placed[s.id]


def _domain(v: cp_model.IntVar) -> cp_model.Domain:
    return cp_model.Domain.from_flat_intervals(list(v.proto.domain))


def _hint_seats(
    m: cp_model.CpModel,
    problem: Problem,
    first: dict[Hashable, tuple[int, int]],
    choice: dict[Hashable, list[tuple[Hashable, cp_model.IntVar, bool]]],
    pools: dict[str, list[Chair]],
    turn: int,
    width: int,
) -> None:
    """Hint a seat for every hinted session, greedily in start order: the pool with the most
    free chairs, else a free pinned chair, else (over capacity) the first option."""
    held: dict[Hashable, list[int]] = {k: [] for k in pools}  # heaps of end slots
    taken: dict[Hashable, list[tuple[int, int]]] = {}
    for s in problem.sessions:
        if not s.movable and s.current is not None:
            g = s.current.day * width + s.current.start
            taken.setdefault(s.current.chair, []).append((g, g + s.duration + turn))
    by_id = {s.id: s for s in problem.sessions}
    for sid in sorted(first, key=lambda k: (first[k], str(k))):
        s, g = by_id[sid], first[sid][0] * width + first[sid][1]
        end = g + s.duration + turn
        for ends in held.values():
            while ends and ends[0] <= g:
                heapq.heappop(ends)
        free: list[tuple[int, int]] = []
        for i, (key, _, is_pool) in enumerate(choice[sid]):
            if is_pool:
                room = len(pools[str(key)]) - len(held[key])
                if room > 0:
                    free.append((-room, i))
            elif not any(a < end and g < b for a, b in taken.get(key, [])):
                free.append((0, i))
        pick = min(free)[1] if free else 0
        key, _, is_pool = choice[sid][pick]
        if is_pool:
            heapq.heappush(held[key], end)
        else:
            taken.setdefault(key, []).append((g, end))
        for i, (_, lit, _) in enumerate(choice[sid]):
            m.add_hint(lit, i == pick)


def _colour(
    items: list[tuple[int, Session]], pool: list[Chair], turn: int, width: int
) -> dict[Hashable, Placement]:
    """Chairs for a pool's sessions, in start order: the current chair when free, else any."""
    free_at = {c.id: -1 for c in pool}  # global slot from which the chair is free
    idle: list[tuple[int, int]] = []  # heap of (free from, pool index)
    order = {c.id: i for i, c in enumerate(pool)}
    out: dict[Hashable, Placement] = {}
    for i in range(len(pool)):
        heapq.heappush(idle, (-1, i))
    for g, s in sorted(items, key=lambda x: (x[0], str(x[1].id))):
        day, slot = divmod(g, width)
        want = s.current.chair if s.current is not None else None
        if want in free_at and free_at[want] <= g:
            chosen = want
        else:
            # the chair that has been free the longest; stale heap entries are skipped
            while True:
                f, i = heapq.heappop(idle)
                cid = pool[i].id
                if free_at[cid] == f:
                    break
            assert f <= g, "pool over capacity"  # the cumulative guarantees this
            chosen = cid
        free_at[chosen] = g + s.duration + turn
        heapq.heappush(idle, (free_at[chosen], order[chosen]))
        out[s.id] = Placement(day, slot, chosen)
    return out


def _hint_current(
    m: cp_model.CpModel,
    movable: Sequence[Session],
    start_of: dict[Hashable, cp_model.IntVar],
    day_of: dict[Hashable, cp_model.IntVar],
    choice: dict[Hashable, list[tuple[Hashable, cp_model.IntVar, bool]]],
    pools: dict[str, list[Chair]],
    chair_by_id: dict[Hashable, Chair],
    at: Callable[[Placement], int],
) -> None:
    """Hint every movable session where it is now, on its own chair (or its chair's pool)."""
    for s in movable:
        assert s.current is not None
        m.add_hint(start_of[s.id], at(s.current))
        m.add_hint(day_of[s.id], s.current.day)
        chair = chair_by_id.get(s.current.chair)
        in_pool = chair is not None and any(c.id == chair.id for c in pools.get(chair.kind, []))
        for key, lit, is_pool in choice[s.id]:
            mine = (is_pool and in_pool and chair is not None and key == chair.kind) or (
                not is_pool and key == s.current.chair
            )
            m.add_hint(lit, mine)


def valid(problem: Problem, placements: dict[Hashable, Placement]) -> bool:
    """Whether the placements keep every rule of the model (on the grid)."""
    turn, ppn = problem.turnover, problem.patients_per_nurse
    by_id = {s.id: s for s in problem.sessions}
    kinds = {c.id: c.kind for c in problem.chairs}
    seen: dict[tuple[Hashable, int], list[tuple[int, int]]] = {}
    mine: dict[tuple[Hashable, int], list[tuple[int, int]]] = {}
    for sid, p in placements.items():
        s = by_id[sid]
        grid = problem.days[p.day] if 0 <= p.day < len(problem.days) else None
        if grid is None or p.start < grid.opens or p.start + s.duration > grid.closes:
            return False
        if s.movable and (p.day not in s.days or kinds.get(p.chair) not in s.kinds):
            return False
        for a, b in seen.get((p.chair, p.day), []):
            if a < p.start + s.duration + turn and p.start < b:
                return False
        seen.setdefault((p.chair, p.day), []).append((p.start, p.start + s.duration + turn))
        for a, b in mine.get((s.patient, p.day), []):
            if a < p.start + s.duration and p.start < b:
                return False
        mine.setdefault((s.patient, p.day), []).append((p.start, p.start + s.duration))
    for (d, t), n in census(problem, placements).items():
        if n > problem.days[d].nurses_in(t) * ppn:
            return False
    begun = starts(problem, placements)
    for d, t in begun:
        for w in (t - 1, t):
            cap = start_cap(problem.days[d], w)
            if cap is not None and begun.get((d, w), 0) + begun.get((d, w + 1), 0) > cap:
                return False
    return True


def _as_it_is(problem: Problem, bound: int, began: float) -> Plan:
    """No better plan found in time: every session stays where it is."""
    placements = {s.id: s.current for s in problem.sessions if s.current is not None}
    peak_v, most_v, off_v, _ = figures(problem, placements)
    seconds = time.perf_counter() - began
    return Plan(placements, peak_v, min(bound, peak_v), most_v, off_v, 0, seconds, False)


def _infeasible(began: float) -> Plan:
    return Plan({}, 0, 0, 0, 0, 0, time.perf_counter() - began, False, feasible=False)


# The baseline: first fit, one session after another.


def first_fit(problem: Problem) -> Plan:
    """Place movable sessions in the given order (fixed ones first, where they are): on the
    target day from the preferred start on, then earlier that day, then the other allowed days
    nearest first; at each start the first chair in the list that fits. A session that fits
    nowhere is left out and listed in `unplaced` (the figures are those of the rest)."""
    began = time.perf_counter()
    turn, ppn = problem.turnover, problem.patients_per_nurse
    placements: dict[Hashable, Placement] = {}
    chair_busy: dict[tuple[Hashable, int], list[tuple[int, int]]] = {}
    patient_busy: dict[tuple[Hashable, int], list[tuple[int, int]]] = {}
    load: dict[tuple[int, int], int] = {}
    begun: dict[tuple[int, int], int] = {}

    def put(s: Session, p: Placement) -> None:
        placements[s.id] = p
        chair_busy.setdefault((p.chair, p.day), []).append((p.start, p.start + s.duration + turn))
        patient_busy.setdefault((s.patient, p.day), []).append((p.start, p.start + s.duration))
        for t in range(p.start, p.start + s.duration):
            load[p.day, t] = load.get((p.day, t), 0) + 1
        begun[p.day, p.start] = begun.get((p.day, p.start), 0) + 1

    def fits_time(s: Session, d: int, t: int) -> bool:
        g = problem.days[d]
        if t < g.opens or t + s.duration > g.closes:
            return False
        if any(a < t + s.duration and b > t for a, b in patient_busy.get((s.patient, d), [])):
            return False
        if any(load.get((d, x), 0) + 1 > g.nurses_in(x) * ppn for x in range(t, t + s.duration)):
            return False
        for w in (t - 1, t):  # the windows {w, w + 1} holding t
            c = start_cap(g, w)
            if c is not None and begun.get((d, w), 0) + begun.get((d, w + 1), 0) + 1 > c:
                return False
        return True

    for s in problem.sessions:
        if not s.movable and s.current is not None:
            put(s, s.current)
    unplaced: list[Hashable] = []
    for s in problem.sessions:
        if not s.movable:
            continue
        days = sorted(
            (d for d in s.days if 0 <= d < len(problem.days)),
            key=lambda d: (d != s.target_day, abs(d - s.target_day), d),
        )
        done = False
        for d in days:
            g = problem.days[d]
            pref = min(max(s.preferred_start, g.opens), g.closes)
            for t in [*range(pref, g.closes), *range(pref - 1, g.opens - 1, -1)]:
                if not fits_time(s, d, t):
                    continue
                for c in problem.chairs:
                    if c.kind not in s.kinds:
                        continue
                    if any(
                        a < t + s.duration + turn and b > t
                        for a, b in chair_busy.get((c.id, d), [])
                    ):
                        continue
                    put(s, Placement(d, t, c.id))
                    done = True
                    break
                if done:
                    break
            if done:
                break
        if not done:
            unplaced.append(s.id)
    peak_v, most_v, off_v, moves_v = figures(problem, placements)
    seconds = time.perf_counter() - began
    return Plan(
        placements, peak_v, 0, most_v, off_v, moves_v, seconds, False, unplaced=tuple(unplaced)
    )
