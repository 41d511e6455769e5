"""Coordinate a group of signals: one common cycle, splits re-solved at it, offsets by CP-SAT."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
from ortools.sat.python import cp_model

from ..errors import InfeasibleError, InputError
from ..network import GREEN_CHARS, Intersection, Network
from ..plans import TimingPlan
from .delay import DEFAULT_ANALYSIS_PERIOD_H
from .demand import IntersectionDemand
from .frame import DEFAULT_CYCLE_MAX_S, DEFAULT_CYCLE_MIN_S
from .result import SignalTiming, to_plans
from .splits import DEFAULT_MAX_SATURATION, SplitProblem

#: Signals further apart than this (m) are not linked: platoons have dispersed by then (the
#: MUTCD/HCM rule of thumb leaves signals beyond about half a mile uncoordinated).
DEFAULT_MAX_LINK_LENGTH_M = 1000.0

#: CP-SAT's search budget for the offsets, in its deterministic time units (roughly seconds of
#: one core; results are reproducible). The warm start is a complete plan, so the search only
#: improves on it.
DEFAULT_OFFSET_SEARCH_BUDGET = 0.5
#: Wall-clock stop, as a multiple of the budget, for a heavily loaded machine.
_WALL_CLOCK_FACTOR = 3.0

_RELATIVE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class SignalLink:
    """A road from one signal of the group to another, over non-signal edges in between.

    ``edges`` runs from the upstream signal's outgoing edge to the downstream signal's
    incoming (approach) edge; ``travel_time_s`` is their length over their speed limit.
    """

    upstream: str
    downstream: str
    edges: tuple[str, ...]
    length_m: float
    travel_time_s: float


@dataclass(frozen=True)
class Coordination:
    """Coordinated timings for a group of signals.

    ``timings`` share ``cycle_s`` and carry their offsets (s). ``red_arrival_delay_veh_s_h`` is
    the modelled wait of platoons arriving on red over all links (veh·s/h) at these offsets, and
    ``uncoordinated_red_arrival_delay_veh_s_h`` the same with every offset 0, for comparison.
    ``status`` is CP-SAT's (``"OPTIMAL"``, or ``"FEASIBLE"`` when its budget ran out first),
    ``"no links"``, or says that the warm start was kept.
    """

    cycle_s: float
    timings: dict[str, SignalTiming]
    links: tuple[SignalLink, ...]
    status: str
    red_arrival_delay_veh_s_h: float
    uncoordinated_red_arrival_delay_veh_s_h: float
    notes: tuple[str, ...] = ()

    def plans(self, network: Network, *, program_id: str | None = None) -> list[TimingPlan]:
        """Every timing as a validated static program (see ``SignalTiming.plan``)."""
        return to_plans(self.timings, network, program_id=program_id)


def signal_links(
    network: Network,
    tls_ids: Sequence[str],
    *,
    max_length_m: float = DEFAULT_MAX_LINK_LENGTH_M,
) -> list[SignalLink]:
    """The roads linking signals of the group, read from the network file.

    From every outgoing edge of a signal the road is followed downstream through junctions
    without a signal, along every branch, until it reaches an approach of another signal of the
    group (a link), a signal outside the group, or ``max_length_m``. The shortest road is kept
    for each (upstream signal, approach) pair.
    """
    import sumolib

    net = sumolib.net.readNet(str(network.path))
    approach_of = {
        link.in_edge: tls for tls in tls_ids for link in network.intersections[tls].links
    }
    found: dict[tuple[str, str], SignalLink] = {}
    for tls in tls_ids:
        for out_edge in dict.fromkeys(link.out_edge for link in network.intersections[tls].links):
            stack = [(net.getEdge(out_edge), (out_edge,), 0.0, 0.0)]
            while stack:
                edge, path, length, travel = stack.pop()
                length += edge.getLength()
                travel += edge.getLength() / edge.getSpeed()
                if length > max_length_m:
                    continue
                target = approach_of.get(edge.getID())
                if target is not None and target != tls:
                    key = (tls, edge.getID())
                    if key not in found or found[key].length_m > length:
                        found[key] = SignalLink(tls, target, path, length, travel)
                    continue
                if edge.getToNode().getType().startswith("traffic_light"):
                    continue
                for successor in edge.getOutgoing():
                    if successor.getID() not in path:
                        stack.append((successor, path + (successor.getID(),), length, travel))
    return sorted(found.values(), key=lambda link: (link.upstream, link.downstream, link.edges))


def coordinate(
    network: Network,
    demands: Mapping[str, IntersectionDemand],
    *,
    cycle_min_s: float = DEFAULT_CYCLE_MIN_S,
    cycle_max_s: float = DEFAULT_CYCLE_MAX_S,
    max_saturation: float = DEFAULT_MAX_SATURATION,
    analysis_period_h: float = DEFAULT_ANALYSIS_PERIOD_H,
    cycle_s: float | None = None,
    max_link_length_m: float = DEFAULT_MAX_LINK_LENGTH_M,
    search_budget: float = DEFAULT_OFFSET_SEARCH_BUDGET,
    offsets: bool = True,
) -> Coordination:
    """One common cycle, least-delay splits at it, and offsets that keep platoons out of red.

    The common cycle minimises the summed modelled delay of the group (each signal's splits
    re-solved at that cycle, exactly, by branch and bound over the cycles all signals allow),
    each signal within its v/c cap (``SplitProblem``); only if no common cycle lets every signal
    meet its cap is each signal's cap raised, cycle by cycle, to the least it attains there.

    Offsets (whole seconds in [0, C)) come from CP-SAT. For every link (``signal_links``), each
    upstream movement onto it releases its flow evenly over its green; the vehicles reach the
    downstream stop line one travel time later and split over the approach's movements by their
    flows; a vehicle arriving while its movement is red waits for the next green. The objective
    is that wait over all links and both directions (veh·s/h), flow-weighted by the smaller of the
    flow leaving onto the link and the flow on the approach; ties go to plans where the main
    platoon's head arrives closest after its green starts.

    Parameters
    ----------
    network
        The network the signals belong to (its file is read again for the roads between them).
    demands
        Demand per signal of the group (``intersection_demand``), keyed by signal id.
    cycle_min_s, cycle_max_s, max_saturation, analysis_period_h
        As for ``optimize_splits``.
    cycle_s
        Impose the common cycle (s) instead of choosing it.
    max_link_length_m
        Longest road (m) along which two signals are coordinated.
    search_budget
        CP-SAT's deterministic time budget for the offsets (roughly seconds of one core).
    offsets
        Solve the offsets; with False every offset is 0 and only the common cycle and its splits
        are computed (for plans that run free of their offsets, e.g. gap-actuated ones).

    Raises
    ------
    InputError
        For a signal not in ``network`` or an empty group.
    InfeasibleError
        When the signals have no cycle in common (bounds, or change intervals with different
        fractions of a second), or a signal's minimum greens do not fit the cycle bounds.
    """
    if not demands:
        raise InputError("no signals to coordinate: the group is empty")
    unknown = [tls for tls in demands if tls not in network.intersections]
    if unknown:
        raise InputError(f"signals {unknown[:5]} are not in network {network.path.name}")
    problems = {
        tls: SplitProblem(
            network.intersections[tls],
            demand,
            cycle_min_s=cycle_min_s,
            cycle_max_s=cycle_max_s,
            max_saturation=max_saturation,
            analysis_period_h=analysis_period_h,
        )
        for tls, demand in demands.items()
    }
    cycle, caps, notes = _common_cycle(problems, cycle_s)
    timings = {tls: problem.at_cycle(cycle, cap=caps[tls]) for tls, problem in problems.items()}
    if not offsets:
        return Coordination(
            cycle_s=cycle,
            timings=timings,
            links=(),
            status="offsets not solved",
            red_arrival_delay_veh_s_h=math.nan,
            uncoordinated_red_arrival_delay_veh_s_h=math.nan,
            notes=tuple(notes),
        )
    links = signal_links(network, list(demands), max_length_m=max_link_length_m)
    pairs = _pair_costs(network, demands, timings, links, cycle)
    offsets, status = _solve_offsets(list(demands), pairs, int(round(cycle)), search_budget)
    red = sum(
        float(cost[(offsets[b] - offsets[a]) % len(cost)]) for (a, b), (cost, _) in pairs.items()
    )
    still = sum(float(cost[0]) for cost, _ in pairs.values())
    timings = {
        tls: replace(
            timing,
            offset_s=float(offsets[tls]),
            notes=(*timing.notes, f"offset {offsets[tls]} s ({status})"),
        )
        for tls, timing in timings.items()
    }
    return Coordination(
        cycle_s=cycle,
        timings=timings,
        links=tuple(links),
        status=status,
        red_arrival_delay_veh_s_h=red,
        uncoordinated_red_arrival_delay_veh_s_h=still,
        notes=tuple(notes),
    )


def _common_cycle(
    problems: Mapping[str, SplitProblem], cycle_s: float | None
) -> tuple[float, dict[str, float], list[str]]:
    """The common cycle of least summed delay (branch and bound), with each signal's v/c cap there."""
    common = set.intersection(*(set(np.round(p.cycles_s, 6)) for p in problems.values()))
    if not common:
        ranges = ", ".join(
            f"{tls} {p.cycles_s[0]:g}-{p.cycles_s[-1]:g} s" for tls, p in problems.items()
        )
        raise InfeasibleError(f"the signals have no whole-second cycle in common: {ranges}")
    cycles = np.array(sorted(common))
    if cycle_s is not None:
        if not np.isclose(cycles, cycle_s).any():
            raise InfeasibleError(
                f"cycle {cycle_s:g} s is not available to every signal; common cycles are "
                f"{cycles[0]:g}-{cycles[-1]:g} s"
            )
        cycles = cycles[np.isclose(cycles, cycle_s)]
    rows = {tls: np.array([p.cycle_index(c) for c in cycles]) for tls, p in problems.items()}
    strict = {tls: np.full(len(cycles), p.cap) for tls, p in problems.items()}
    bounds = _summed_bounds(problems, rows, strict)
    caps, notes = strict, []
    if not np.isfinite(bounds).any():
        caps = {
            tls: np.maximum(p.cap, p.least_saturation(rows[tls])) for tls, p in problems.items()
        }
        bounds = _summed_bounds(problems, rows, caps)
        notes.append("no common cycle lets every signal meet its v/c cap; caps raised per cycle")
    best, best_k = math.inf, 0
    for k in np.lexsort((cycles, bounds)):
        if bounds[k] >= best * (1 - _RELATIVE_TOLERANCE):
            break
        total = sum(
            p.solve_at(int(rows[tls][k]), float(caps[tls][k]))[0] for tls, p in problems.items()
        )
        if total < best * (1 - _RELATIVE_TOLERANCE):
            best, best_k = total, int(k)
    chosen = float(cycles[best_k])
    own = {tls: p.best().cycle_s for tls, p in problems.items()} if cycle_s is None else {}
    if own:
        notes.append(
            f"common cycle {chosen:g} s (least summed delay); the signals alone would run "
            f"{min(own.values()):g}-{max(own.values()):g} s"
        )
    return chosen, {tls: float(caps[tls][best_k]) for tls in problems}, notes


def _summed_bounds(problems, rows, caps) -> np.ndarray:
    return sum(problem.lower_bounds(caps[tls], rows=rows[tls]) for tls, problem in problems.items())


def _green_masks(
    intersection: Intersection, timing: SignalTiming, cycle: int
) -> dict[str, np.ndarray]:
    """For each movement, which whole seconds of the cycle (from phase 0's start) show it green."""
    durations = [
        timing.greens_s.get(i, phase.duration) for i, phase in enumerate(intersection.phases)
    ]
    ends = np.cumsum(durations)
    phase_at = np.minimum(
        np.searchsorted(ends, np.arange(cycle) + 0.5, side="right"), len(durations) - 1
    )
    green = np.array([[c in GREEN_CHARS for c in phase.state] for phase in intersection.phases])
    masks: dict[str, np.ndarray] = {}
    for link in intersection.links:
        mask = green[phase_at, link.index]
        masks[link.movement] = masks[link.movement] | mask if link.movement in masks else mask
    return masks


def _red_wait(mask: np.ndarray) -> np.ndarray:
    """Seconds from each second of the cycle to the next green second (0 when green)."""
    cycle = len(mask)
    wait = np.zeros(cycle)
    if not mask.any():
        return wait
    countdown = 0
    for t in reversed(range(2 * cycle)):
        countdown = 0 if mask[t % cycle] else countdown + 1
        if t < cycle:
            wait[t] = countdown
    return wait


def _first_green(mask: np.ndarray) -> int:
    """Start of the longest green run of a cyclic mask (s)."""
    cycle = len(mask)
    starts = [t for t in range(cycle) if mask[t] and not mask[t - 1]]
    if not starts:
        return 0

    def run(start: int) -> int:
        n = 0
        while n < cycle and mask[(start + n) % cycle]:
            n += 1
        return n

    return max(starts, key=lambda s: (run(s), -s))


def _pair_costs(
    network: Network,
    demands: Mapping[str, IntersectionDemand],
    timings: Mapping[str, SignalTiming],
    links: Sequence[SignalLink],
    cycle_s: float,
) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
    """Per signal pair (a, b), red-arrival wait (veh·s/h) and tie-break lateness (s) by δ = o_b − o_a."""
    cycle = int(round(cycle_s))
    masks = {tls: _green_masks(network.intersections[tls], timings[tls], cycle) for tls in timings}
    ends = {
        tls: {
            link.movement: (link.in_edge, link.out_edge)
            for link in network.intersections[tls].links
        }
        for tls in timings
    }
    waits: dict[tuple[str, str], np.ndarray] = {}
    order = {tls: k for k, tls in enumerate(demands)}
    shift = np.arange(cycle)
    pairs: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}
    for link in links:
        up, down = link.upstream, link.downstream
        leaving = {
            m: f
            for m, f in demands[up].flows_veh_h.items()
            if ends[up][m][1] == link.edges[0] and f > 0 and masks[up][m].any()
        }
        arriving = {
            m: f
            for m, f in demands[down].flows_veh_h.items()
            if ends[down][m][0] == link.edges[-1] and f > 0 and masks[down][m].any()
        }
        if not leaving or not arriving:
            continue
        weight = min(sum(leaving.values()), sum(arriving.values()))
        cost = np.zeros(cycle)
        travel = link.travel_time_s
        for m_up, f_up in leaving.items():
            released = masks[up][m_up].astype(float)
            released *= weight * f_up / sum(leaving.values()) / released.sum()
            seconds = np.flatnonzero(released)
            for m_down, f_down in arriving.items():
                if (down, m_down) not in waits:
                    waits[down, m_down] = _red_wait(masks[down][m_down])
                wait = waits[down, m_down] * f_down / sum(arriving.values())
                # Arrival at the downstream signal's local time s + travel − δ, for every δ at once.
                local = np.rint(seconds[None, :] + travel - shift[:, None]).astype(int) % cycle
                cost += (wait[local] * released[seconds][None, :]).sum(axis=1)
        head_up = _first_green(masks[up][max(leaving, key=leaving.get)])
        head_down = _first_green(masks[down][max(arriving, key=arriving.get)])
        late = (np.rint(head_up + travel - head_down - shift).astype(int)) % cycle
        if order[up] < order[down]:
            key, cost_by_delta, late_by_delta = (up, down), cost, late
        else:
            # This link's δ is o_up − o_down, the pair's is its negative.
            key, cost_by_delta, late_by_delta = (
                (down, up),
                cost[(-shift) % cycle],
                late[(-shift) % cycle],
            )
        old_cost, old_late = pairs.get(key, (np.zeros(cycle), np.zeros(cycle, dtype=int)))
        pairs[key] = (old_cost + cost_by_delta, old_late + late_by_delta)
    return pairs


def _solve_offsets(
    signals: Sequence[str],
    pairs: Mapping[tuple[str, str], tuple[np.ndarray, np.ndarray]],
    cycle: int,
    search_budget: float,
) -> tuple[dict[str, int], str]:
    """Whole-second offsets minimising the summed pair costs; one signal per linked component fixed at 0."""
    if not pairs:
        return dict.fromkeys(signals, 0), "no links"
    model = cp_model.CpModel()
    offset = {tls: model.NewIntVar(0, cycle - 1, f"offset_{tls}") for tls in signals}
    for root in _component_roots(signals, pairs):
        model.Add(offset[root] == 0)
    starts = (_greedy_offsets(signals, pairs, cycle), dict.fromkeys(signals, 0))
    start = min(
        (_descend(signals, pairs, cycle, s) for s in starts), key=lambda o: _total(pairs, cycle, o)
    )
    terms = []
    for (a, b), combined in _combined(pairs, cycle).items():
        delta = model.NewIntVar(0, cycle - 1, f"delta_{a}_{b}")
        wrap = model.NewBoolVar(f"wrap_{a}_{b}")
        model.Add(delta == offset[b] - offset[a] + cycle * wrap)
        table = combined.tolist()
        term = model.NewIntVar(min(table), max(table), f"cost_{a}_{b}")
        model.AddElement(delta, table, term)
        terms.append(term)
        # A complete hint is a first solution the search starts from.
        hinted = (start[b] - start[a]) % cycle
        model.AddHint(delta, hinted)
        model.AddHint(wrap, int(start[b] < start[a]))
        model.AddHint(term, table[hinted])
    for tls, value in start.items():
        model.AddHint(offset[tls], value)
    model.Minimize(sum(terms))
    solver = cp_model.CpSolver()
    solver.parameters.max_deterministic_time = search_budget
    solver.parameters.max_time_in_seconds = _WALL_CLOCK_FACTOR * search_budget
    solver.parameters.num_workers = 1
    status = solver.Solve(model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return start, "warm start (CP-SAT found no solution within its budget)"
    found = {tls: int(solver.Value(var)) for tls, var in offset.items()}
    if _total(pairs, cycle, found) > _total(pairs, cycle, start):
        return start, "warm start (CP-SAT found nothing better within its budget)"
    return found, solver.StatusName(status)


def _total(pairs, cycle: int, offsets: Mapping[str, int]) -> int:
    return int(
        sum(
            table[(offsets[b] - offsets[a]) % cycle]
            for (a, b), table in _combined(pairs, cycle).items()
        )
    )


def _descend(
    signals: Sequence[str], pairs, cycle: int, offsets: Mapping[str, int]
) -> dict[str, int]:
    """Coordinate descent: move one signal at a time to its best offset given the others, until
    no move helps (a local optimum, found in milliseconds, that CP-SAT then improves on).
    """
    offsets = dict(offsets)
    combined = _combined(pairs, cycle)
    roots = set(_component_roots(signals, pairs))
    shift = np.arange(cycle)
    moved = True
    while moved:
        moved = False
        for tls in signals:
            if tls in roots:
                continue
            score = np.zeros(cycle)
            for (a, b), table in combined.items():
                if a == tls:
                    score += table[(offsets[b] - shift) % cycle]
                elif b == tls:
                    score += table[(shift - offsets[a]) % cycle]
            best = int(np.argmin(score))
            if score[best] < score[offsets[tls]]:
                offsets[tls] = best
                moved = True
    return offsets


def _combined(pairs, cycle: int) -> dict[tuple[str, str], np.ndarray]:
    """Pair costs as CP-SAT sees them: whole veh·s/h of wait, scaled above all lateness together."""
    scale = 2 * cycle * len(pairs) + 1
    return {
        key: np.rint(cost).astype(np.int64) * scale + late for key, (cost, late) in pairs.items()
    }


def _component_roots(signals: Sequence[str], pairs) -> list[str]:
    parent = {tls: tls for tls in signals}

    def find(tls: str) -> str:
        while parent[tls] != tls:
            parent[tls] = parent[parent[tls]]
            tls = parent[tls]
        return tls

    for a, b in pairs:
        parent[find(b)] = find(a)
    return list(dict.fromkeys(find(tls) for tls in signals))


def _greedy_offsets(signals: Sequence[str], pairs, cycle: int) -> dict[str, int]:
    """A warm start: walk outward from each component's first signal, each new signal taking the
    offset that best fits the links to the signals already placed.
    """
    combined = _combined(pairs, cycle)
    placed: dict[str, int] = {}
    for root in _component_roots(signals, pairs):
        placed[root] = 0
        grown = True
        while grown:
            grown = False
            for tls in signals:
                if tls in placed:
                    continue
                score = np.zeros(cycle)
                touching = False
                for (a, b), table in combined.items():
                    if a == tls and b in placed:
                        touching = True
                        score += table[(placed[b] - np.arange(cycle)) % cycle]
                    elif b == tls and a in placed:
                        touching = True
                        score += table[(np.arange(cycle) - placed[a]) % cycle]
                if touching:
                    placed[tls] = int(np.argmin(score))
                    grown = True
    return placed
