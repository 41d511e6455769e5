"""Coordinate a group of signals: one common cycle, splits re-solved at it, offsets by CP-SAT."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from ..errors import InfeasibleError, InputError
from ..network import Network
from ..plans import TimingPlan
from .delay import DEFAULT_ANALYSIS_PERIOD_H
from .demand import IntersectionDemand
from .frame import DEFAULT_CYCLE_MAX_S, DEFAULT_CYCLE_MIN_S
from .links import DEFAULT_MAX_LINK_LENGTH_M, SignalLink, signal_links
from .offsets import DEFAULT_OFFSET_SEARCH_BUDGET, solve_offsets
from .platoons import pair_costs
from .result import SignalTiming, to_plans
from .pedestrians import pedestrian_minimums
from .splits import DEFAULT_MAX_SATURATION, SplitProblem
from .storage import lane_storage_m

__all__ = [
    "DEFAULT_MAX_LINK_LENGTH_M",
    "DEFAULT_OFFSET_SEARCH_BUDGET",
    "Coordination",
    "SignalLink",
    "coordinate",
    "signal_links",
]

#: Relative tolerance when comparing summed modelled delays (floating-point noise).
_RELATIVE_TOLERANCE = 1e-9


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
        """Return every timing as a validated static program (see ``SignalTiming.plan``)."""
        return to_plans(self.timings, network, program_id=program_id)


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
    spillback_weight: float = 0.0,
) -> Coordination:
    """Give a group of signals one common cycle, least-delay splits, and offsets (s).

    The offsets keep platoons out of red. The common cycle minimises the summed modelled delay
    of the group (each signal's splits re-solved at that cycle, exactly, by branch and bound
    over the cycles all signals allow), each signal within its v/c cap (``SplitProblem``); only
    if no common cycle lets every signal meet its cap is each signal's cap raised, cycle by
    cycle, to the least it attains there.

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
    spillback_weight
        Weight of the queue-storage penalty, as for ``optimize_network`` (0, the default, turns
        it off);
        greens serving crossings keep their pedestrian time either way.

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
    walks = pedestrian_minimums(network)
    storage = lane_storage_m(network) if spillback_weight > 0 else None
    problems = {
        tls: SplitProblem(
            network.intersections[tls],
            demand,
            cycle_min_s=cycle_min_s,
            cycle_max_s=cycle_max_s,
            max_saturation=max_saturation,
            analysis_period_h=analysis_period_h,
            pedestrian_s=walks.get(tls),
            storage_m=storage,
            spillback_weight=spillback_weight,
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
    pairs = pair_costs(network, demands, timings, links, cycle)
    offset_of, status = solve_offsets(list(demands), pairs, int(round(cycle)), search_budget)
    red = sum(
        float(cost[(offset_of[b] - offset_of[a]) % len(cost)])
        for (a, b), (cost, _) in pairs.items()
    )
    still = sum(float(cost[0]) for cost, _ in pairs.values())
    timings = {
        tls: replace(
            timing,
            offset_s=float(offset_of[tls]),
            notes=(*timing.notes, f"offset {offset_of[tls]} s ({status})"),
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
    """Choose the common cycle of least summed delay (branch and bound), and each v/c cap there.

    Returns the cycle (s), each signal's v/c cap at it, and notes on the choice.
    """
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


def _summed_bounds(
    problems: Mapping[str, SplitProblem],
    rows: Mapping[str, np.ndarray],
    caps: Mapping[str, np.ndarray],
) -> np.ndarray:
    """Add up the signals' lower bounds on their least delay (veh·s/h) at each common cycle."""
    bounds = [problem.lower_bounds(caps[tls], rows=rows[tls]) for tls, problem in problems.items()]
    return np.asarray(sum(bounds))
