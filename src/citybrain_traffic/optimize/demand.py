"""Turn movement flows at a signal into lane-group flows and per-phase critical flow ratios."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import linprog

from ..errors import InfeasibleError, InputError
from ..network import Intersection, Lane

#: Saturation flow of one lane (veh/h) when no measurement is given (the HCM base value rounded
#: down for mixed urban traffic, and what SUMO's tlsCycleAdaptation.py assumes).
DEFAULT_SATURATION_VEH_H_LANE = 1800.0

#: Critical headway and follow-up headway (s) of a turn that yields to opposing traffic: the
#: HCM's values for a permitted left turn at a signal, used in
#: :func:`permitted_share`.
PERMITTED_CRITICAL_HEADWAY_S = 4.5
PERMITTED_FOLLOW_UP_HEADWAY_S = 2.5
#: Least share a permitted green keeps however heavy the opposing flow: the turns that
#: complete at the end of the green ("sneakers", one or two a cycle in the HCM).
PERMITTED_MIN_SHARE = 0.05


def permitted_share(opposing_veh_h: float, saturation_veh_h_lane: float) -> float:
    """Share of the saturation flow a yielding lane discharges through an opposing flow.

    Gap acceptance with random (exponential) opposing headways: a lane filters through at
    ``v_o exp(-v_o t_c) / (1 - exp(-v_o t_f))`` veh/h (``3600 / t_f`` with no opposing flow),
    the HCM's permitted left-turn saturation flow, divided by the lane's saturation flow and
    capped at 1. The opposing flow is that of the other approaches' lanes with priority green in
    the same phase (the network model has no conflict matrix, so every such stream counts as
    opposing: a conservative estimate).
    """
    if (
        opposing_veh_h * PERMITTED_FOLLOW_UP_HEADWAY_S / 3600.0 < 1e-9
    ):  # no opposing flow to speak of
        through_gaps = 3600.0 / PERMITTED_FOLLOW_UP_HEADWAY_S
    else:
        rate = opposing_veh_h / 3600.0
        through_gaps = (
            opposing_veh_h
            * math.exp(-rate * PERMITTED_CRITICAL_HEADWAY_S)
            / -math.expm1(-rate * PERMITTED_FOLLOW_UP_HEADWAY_S)
        )
    return min(1.0, max(PERMITTED_MIN_SHARE, through_gaps / saturation_veh_h_lane))


#: Lane flows are balanced until no lane changes by more than this share of the approach flow.
_BALANCE_TOLERANCE = 1e-9
_BALANCE_MAX_ROUNDS = 200


@dataclass(frozen=True)
class LaneGroup:
    """Lanes of one approach that serve the same movements in the same phases.

    ``phases`` are the program indices of the green phases that serve the group: those where one
    of its links has priority green ``G``, and those where it only has permitted green ``g``
    (yielding). ``capacity_shares`` gives, per phase, the share of the group's saturation flow it
    discharges there: 1 with priority, and for a permitted green the gap-acceptance share
    (:func:`permitted_share`) under the phase's opposing flow. ``flow_veh_h`` is the demand
    assigned to its lanes and ``flow_ratio`` that flow over the group's saturation flow.
    """

    edge: str
    lanes: tuple[str, ...]
    movements: tuple[str, ...]
    phases: tuple[int, ...]
    flow_veh_h: float
    flow_ratio: float
    capacity_shares: tuple[float, ...] = ()
    #: Per movement: its flow on the group's lanes (veh/h) and the phases where its links are
    #: green. On a lane shared by a right turn green in every phase and a through movement green
    #: in one, the through flow can leave only in that one.
    movement_flows: tuple[tuple[str, float, tuple[int, ...]], ...] = ()

    def share(self, phase: int) -> float:
        """Share of the saturation flow the group discharges in ``phase`` (1 if not recorded)."""
        return self.capacity_shares[self.phases.index(phase)] if self.capacity_shares else 1.0

    def needs(self, saturation_veh_h_lane: float) -> list[tuple[tuple[int, ...], float]]:
        """What the phase ratios must cover: (phases, flow ratio) for the whole group, and for each
        movement with flow that only some of the group's phases serve.
        """
        out = [(self.phases, self.flow_ratio)]
        capacity = saturation_veh_h_lane * len(self.lanes)
        for _, flow, phases in self.movement_flows:
            if flow > 0 and phases and set(phases) < set(self.phases):
                out.append((phases, flow / capacity))
        return out

    def flows_by_phases(self) -> list[tuple[tuple[int, ...], float]]:
        """The group's flow as (serving phases, veh/h) parts: per movement where recorded."""
        if not self.movement_flows:
            return [(self.phases, self.flow_veh_h)]
        return [(phases or self.phases, flow) for _, flow, phases in self.movement_flows]


@dataclass(frozen=True)
class PhaseDemand:
    """What one green phase must serve.

    ``critical_ratio`` (y) is the share of the cycle the phase must be green to serve its
    critical lane group at saturation; ``flow_veh_h`` the flow it serves (each vehicle counted in
    one phase, the weight of its delay); ``lanes`` the number of lanes of its critical lane group
    (its capacity is ``saturation × lanes × green / cycle``).
    """

    index: int
    critical_ratio: float
    flow_veh_h: float
    lanes: int
    saturation_veh_h_lane: float


@dataclass(frozen=True)
class IntersectionDemand:
    """The demand of one signal: per-phase ratios, lane groups and the flows they came from.

    ``unserved_veh_h`` is flow on lanes that no green phase serves (for example right turns on
    red, ``s``): the plan cannot change their capacity, so they do not enter the ratios.
    """

    tls_id: str
    phases: tuple[PhaseDemand, ...]
    lane_groups: tuple[LaneGroup, ...]
    flows_veh_h: dict[str, float]
    saturation_veh_h_lane: float
    unserved_veh_h: float

    @property
    def total_ratio(self) -> float:
        """Sum of the critical flow ratios (Y); 1 or more means no cycle can serve the demand."""
        return sum(p.critical_ratio for p in self.phases)

    @property
    def flow_veh_h(self) -> float:
        """Flow served by the green phases (veh/h)."""
        return sum(p.flow_veh_h for p in self.phases)


def intersection_demand(
    intersection: Intersection,
    lanes: Mapping[str, Lane],
    flows_veh_h: Mapping[str, float],
    *,
    saturation_veh_h_lane: float = DEFAULT_SATURATION_VEH_H_LANE,
) -> IntersectionDemand:
    """Critical flow ratio and served flow of every green phase of a signal.

    Each movement's flow is spread over the incoming lanes its links leave from so that lane
    flows are as equal as the lane use allows (drivers pick the shorter queue): a right turn
    sharing lane 0 with through traffic pushes through vehicles to lane 1. Lanes of one approach
    with the same movements and serving phases form a lane group, whose flow ratio is its flow
    over ``saturation × lanes``.

    A lane group green in several phases (an overlap: a right turn green with the through phase
    and again with the cross street's left) must get its ratio from those phases together, not
    from each of them. The rule: the phase ratios y are the least total Y such that for every
    lane group, the ratios of the phases serving it add up to at least the group's ratio (a small
    covering LP). Without overlaps this is the textbook y = max over the phase's lane groups. A
    permitted green (``g``, yielding) does not count for a group that also gets priority green,
    because its capacity depends on gaps in the opposing flow; that green is a bonus the model
    does not rely on. A group's flow is split over its phases in proportion to their ratios, so
    every vehicle is weighted once.

    Parameters
    ----------
    intersection
        The signal, from ``network.read_network``.
    lanes
        The network's lanes (``Network.lanes``); every incoming lane of the signal must be in it.
    flows_veh_h
        Flow per movement (veh/h), keyed by ``Link.movement`` (``"<in edge>><out edge>"``).
        Movements not given carry no flow.
    saturation_veh_h_lane
        Saturation flow per lane (veh/h/lane).

    Raises
    ------
    InputError
        For an unknown movement, a negative, infinite or NaN flow, a non-positive saturation
        flow, or lanes from another network.
    InfeasibleError
        When the signal's program has no green phase.
    """
    tls = intersection.tls_id
    saturation = _positive(saturation_veh_h_lane, f"signal {tls}: saturation flow", "veh/h/lane")
    greens = [i for i, phase in enumerate(intersection.phases) if phase.is_green]
    if not greens:
        raise InfeasibleError(
            f"signal {tls}: its program has no green phase, so there is nothing to time"
        )
    missing = [lane for lane in intersection.in_lanes if lane not in lanes]
    if missing:
        raise InputError(
            f"signal {tls}: incoming lane {missing[0]!r} is not among the given lanes; "
            "pass the lanes of the network the signal was read from"
        )
    flows = _checked_flows(intersection, flows_veh_h)

    movement_lanes: dict[str, list[str]] = defaultdict(list)
    for link in intersection.links:
        if link.in_lane not in movement_lanes[link.movement]:
            movement_lanes[link.movement].append(link.in_lane)
    lane_flow, lane_shares = _balanced_lane_flows(movement_lanes, flows)

    groups = _lane_groups(intersection, greens, lane_flow, lane_shares, saturation)
    served = [g for g in groups if g.phases]
    unserved = sum(g.flow_veh_h for g in groups if not g.phases)
    ratios = _phase_ratios(tls, greens, served, saturation)
    phases = _phase_demands(greens, served, ratios, saturation)
    return IntersectionDemand(
        tls_id=tls,
        phases=phases,
        lane_groups=tuple(groups),
        flows_veh_h=flows,
        saturation_veh_h_lane=saturation,
        unserved_veh_h=unserved,
    )


def flows_by_signal(table: pd.DataFrame) -> dict[str, dict[str, float]]:
    """A flows table (``intersection``, ``movement``, ``flow_veh_h``) as ``{tls: {movement: veh/h}}``.

    This is the shape ``flows.flows_from_routes`` and ``flows.flows_from_counts`` return.

    Raises
    ------
    InputError
        When a column is missing or a (intersection, movement) pair appears twice.
    """
    needed = ["intersection", "movement", "flow_veh_h"]
    absent = [c for c in needed if c not in table.columns]
    if absent:
        raise InputError(f"flows table lacks column(s) {absent}; expected columns {needed}")
    twice = table[table.duplicated(["intersection", "movement"], keep=False)]
    if not twice.empty:
        first = twice.iloc[0]
        raise InputError(
            f"flows table lists movement {first['movement']!r} of signal {first['intersection']!r} more than "
            "once; expected one row per (intersection, movement)"
        )
    out: dict[str, dict[str, float]] = {}
    for tls, movement, flow in table[needed].itertuples(index=False):
        out.setdefault(str(tls), {})[str(movement)] = flow
    return out


def _positive(value, what: str, unit: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not (math.isfinite(number) and number > 0):
        raise InputError(f"{what} is {value!r} {unit}, expected a positive finite number")
    return number


def _checked_flows(
    intersection: Intersection, flows_veh_h: Mapping[str, float]
) -> dict[str, float]:
    tls = intersection.tls_id
    known = dict.fromkeys(link.movement for link in intersection.links)
    unknown = [m for m in flows_veh_h if m not in known]
    if unknown:
        raise InputError(
            f"signal {tls}: unknown movement(s) {sorted(map(str, unknown))[:5]}; "
            f"its movements are {list(known)[:6]}{' ...' if len(known) > 6 else ''}"
        )
    flows = {}
    for movement in known:
        value = flows_veh_h.get(movement, 0.0)
        try:
            flow = float(value)
        except (TypeError, ValueError):
            raise InputError(
                f"signal {tls}: flow of {movement!r} is {value!r}, expected a number of veh/h"
            ) from None
        if not math.isfinite(flow) or flow < 0:
            raise InputError(
                f"signal {tls}: flow of {movement!r} is {flow!r} veh/h, expected a finite value >= 0"
            )
        flows[movement] = flow
    return flows


def _balanced_lane_flows(
    movement_lanes: Mapping[str, list[str]], flows: Mapping[str, float]
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Spread each movement over its lanes so that lane flows are as equal as lane use allows;
    return each lane's flow and each movement's flow per lane (veh/h).

    Block coordinate descent on the sum of squared lane flows: each movement in turn is
    water-filled over its lanes given the others; the problem is convex and the blocks separate,
    so this converges to the balanced assignment.
    """
    load = {lane: 0.0 for lanes in movement_lanes.values() for lane in lanes}
    share: dict[str, dict[str, float]] = {}
    for movement, lanes in movement_lanes.items():
        share[movement] = {lane: flows[movement] / len(lanes) for lane in lanes}
        for lane in lanes:
            load[lane] += share[movement][lane]
    shared = [m for m, lanes in movement_lanes.items() if len(lanes) > 1 and flows[m] > 0]
    scale = max(sum(flows.values()), 1.0)
    for _ in range(_BALANCE_MAX_ROUNDS):
        moved = 0.0
        for movement in shared:
            lanes = movement_lanes[movement]
            for lane in lanes:
                load[lane] -= share[movement][lane]
            new = _water_fill(flows[movement], [load[lane] for lane in lanes])
            for lane, amount in zip(lanes, new):
                moved = max(moved, abs(amount - share[movement][lane]))
                share[movement][lane] = amount
                load[lane] += amount
        if moved <= _BALANCE_TOLERANCE * scale:
            break
    return load, share


def _water_fill(amount: float, base: list[float]) -> list[float]:
    """Split ``amount`` over bins with loads ``base`` raising the lowest first (to one level)."""
    order = sorted(range(len(base)), key=base.__getitem__)
    filled = 0.0
    for k, i in enumerate(order):
        filled += base[i]
        level = (amount + filled) / (k + 1)
        if k + 1 == len(order) or level <= base[order[k + 1]]:
            break
    return [max(0.0, level - b) for b in base]


def _lane_groups(
    intersection: Intersection,
    greens: list[int],
    lane_flow: Mapping[str, float],
    lane_shares: Mapping[str, Mapping[str, float]],
    saturation: float,
) -> list[LaneGroup]:
    links_of: dict[str, list] = defaultdict(list)
    for link in intersection.links:
        links_of[link.in_lane].append(link)
    states = [intersection.phases[i].state for i in greens]
    members: dict[tuple, list[str]] = {}
    priority_flow = defaultdict(float)  # (phase, edge) -> flow of lanes with priority green
    for lane, links in links_of.items():
        protected = tuple(
            i for i, s in zip(greens, states) if any(s[link.index] == "G" for link in links)
        )
        permitted = tuple(
            i
            for i, s in zip(greens, states)
            if i not in protected and any(s[link.index] == "g" for link in links)
        )
        movements = tuple(sorted({link.movement for link in links}))
        key = (links[0].in_edge, movements, protected, permitted)
        members.setdefault(key, []).append(lane)
        for i in protected:
            priority_flow[i, links[0].in_edge] += lane_flow[lane]

    def serving(links) -> tuple[int, ...]:
        return tuple(
            i for i, s in zip(greens, states) if any(s[link.index] in "Gg" for link in links)
        )

    groups = []
    for (edge, movements, protected, permitted), group_lanes in members.items():
        flow = float(sum(lane_flow[lane] for lane in group_lanes))
        movement_flows = tuple(
            (
                movement,
                float(sum(lane_shares[movement].get(lane, 0.0) for lane in group_lanes)),
                serving(
                    [
                        link
                        for lane in group_lanes
                        for link in links_of[lane]
                        if link.movement == movement
                    ]
                ),
            )
            for movement in movements
        )
        # A yielding lane waits for the priority streams of the other approaches green with it.
        shares = {i: 1.0 for i in protected}
        for i in permitted:
            opposing = sum(
                v for (phase, other), v in priority_flow.items() if phase == i and other != edge
            )
            shares[i] = permitted_share(opposing, saturation)
        phases = tuple(sorted(shares))
        groups.append(
            LaneGroup(
                edge=edge,
                lanes=tuple(group_lanes),
                movements=movements,
                phases=phases,
                flow_veh_h=flow,
                flow_ratio=flow / (saturation * len(group_lanes)),
                capacity_shares=tuple(shares[i] for i in phases),
                movement_flows=movement_flows,
            )
        )
    return groups


def _phase_ratios(
    tls: str, greens: list[int], groups: list[LaneGroup], saturation: float
) -> dict[int, float]:
    """Least ratios per green phase such that the phases of every lane group cover its ratio, and
    the phases of each movement in it cover the movement's ratio.
    """
    needs = [(g, phases, ratio) for g in groups for phases, ratio in g.needs(saturation)]
    floor = dict.fromkeys(greens, 0.0)
    for group, phases, ratio in needs:
        if len(phases) == 1:
            p = phases[0]
            floor[p] = max(floor[p], ratio / group.share(p))
    uncovered = [
        (g, phases, ratio)
        for g, phases, ratio in needs
        if sum(floor[p] * g.share(p) for p in phases) < ratio * (1 - 1e-12)
    ]
    if not uncovered:
        return floor
    column = {p: k for k, p in enumerate(greens)}
    rows = np.zeros((len(uncovered), len(greens)))
    for r, (group, phases, _) in enumerate(uncovered):
        for p in phases:
            rows[r, column[p]] = -group.share(p)
    result = linprog(
        c=np.ones(len(greens)),
        A_ub=rows,
        b_ub=[-ratio for _, _, ratio in uncovered],
        bounds=[(floor[p], None) for p in greens],
        method="highs",
    )
    if not result.success:  # the LP always has a solution; this guards against a solver failure
        raise InfeasibleError(
            f"signal {tls}: critical flow ratios could not be computed: {result.message}"
        )
    # HiGHS may return -0.0 or a hair below a bound; a ratio is never negative.
    return {p: max(floor[p], float(result.x[column[p]])) for p in greens}


def _phase_demands(
    greens: list[int], groups: list[LaneGroup], ratios: Mapping[int, float], saturation: float
) -> tuple[PhaseDemand, ...]:
    flow = dict.fromkeys(greens, 0.0)
    critical: dict[int, tuple[float, int]] = {}
    for group in groups:
        for phases, part_veh_h in group.flows_by_phases():
            for p, w in zip(phases, _weights(phases, ratios)):
                flow[p] += part_veh_h * w
        for p, w in zip(group.phases, _weights(group.phases, ratios)):
            share = group.flow_ratio * w
            if share > critical.get(p, (-1.0, 0))[0]:
                critical[p] = (share, len(group.lanes))
    return tuple(
        PhaseDemand(
            index=p,
            critical_ratio=ratios[p],
            flow_veh_h=float(flow[p]),
            lanes=critical.get(p, (0.0, 1))[1],
            saturation_veh_h_lane=saturation,
        )
        for p in greens
    )


def _weights(phases: tuple[int, ...], ratios: Mapping[int, float]) -> np.ndarray:
    """Shares of a flow served by ``phases``, in proportion to their ratios (equal when all are 0)."""
    weights = np.array([ratios[p] for p in phases])
    if weights.sum() <= 0:
        weights = np.ones(len(phases))
    return weights / weights.sum()
