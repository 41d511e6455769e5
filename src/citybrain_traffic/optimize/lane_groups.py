"""Lane groups of a signal: movement flows spread over lanes, lanes grouped by what they serve."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from ..network import Intersection, Link
from .saturation import SaturationModel

#: Critical headway and follow-up headway (s) of a turn that yields to opposing traffic: the
#: HCM's values for a permitted left turn at a signal, used in
#: :func:`permitted_share`.
PERMITTED_CRITICAL_HEADWAY_S = 4.5
PERMITTED_FOLLOW_UP_HEADWAY_S = 2.5
#: Least share a permitted green keeps however heavy the opposing flow: the turns that
#: complete at the end of the green ("sneakers", one or two a cycle in the HCM).
PERMITTED_MIN_SHARE = 0.05


def permitted_share(opposing_veh_h: float, saturation_veh_h_lane: float) -> float:
    """Return the share of the saturation flow a yielding lane discharges through opposing flow.

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
    assigned to its lanes and ``flow_ratio`` that flow over the group's saturation flow
    ``saturation_veh_h_lane`` (per lane; with a ``SaturationModel``, adjusted or measured, and
    ``adjustments`` names its factors: ``f_w``, ``f_HV``, ``measured`` lanes).
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
    saturation_veh_h_lane: float = 0.0
    adjustments: tuple[tuple[str, float], ...] = ()

    def share(self, phase: int) -> float:
        """Return the saturation-flow share the group discharges in ``phase`` (1 if not set)."""
        return self.capacity_shares[self.phases.index(phase)] if self.capacity_shares else 1.0

    def needs(self, saturation_veh_h_lane: float) -> list[tuple[tuple[int, ...], float]]:
        """List what the phase ratios must cover, as (phases, flow ratio) pairs.

        One for the whole group, and one for each movement with flow that only some of the
        group's phases serve (``saturation_veh_h_lane`` in veh/h/lane, unless the group has its
        own).
        """
        out = [(self.phases, self.flow_ratio)]
        capacity = (self.saturation_veh_h_lane or saturation_veh_h_lane) * len(self.lanes)
        for _, flow, phases in self.movement_flows:
            if flow > 0 and phases and set(phases) < set(self.phases):
                out.append((phases, flow / capacity))
        return out

    def flows_by_phases(self) -> list[tuple[tuple[int, ...], float]]:
        """Split the group's flow into (serving phases, veh/h) parts, per movement if recorded."""
        if not self.movement_flows:
            return [(self.phases, self.flow_veh_h)]
        return [(phases or self.phases, flow) for _, flow, phases in self.movement_flows]


def balanced_lane_flows(
    movement_lanes: Mapping[str, list[str]], flows: Mapping[str, float]
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Spread each movement over its lanes so that lane flows are as equal as lane use allows.

    Returns each lane's flow and each movement's flow per lane (veh/h).

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


def lane_groups(
    intersection: Intersection,
    greens: list[int],
    lane_flow: Mapping[str, float],
    lane_shares: Mapping[str, Mapping[str, float]],
    saturation: float,
    model: SaturationModel | None = None,
) -> list[LaneGroup]:
    """Group the signal's incoming lanes that serve the same movements in the same phases.

    Parameters
    ----------
    intersection
        The signal.
    greens
        Program indices of its green phases.
    lane_flow, lane_shares
        Flow per lane, and per movement its flow on each lane (veh/h), from
        ``balanced_lane_flows``.
    saturation
        Saturation flow per lane (veh/h/lane).
    model
        Per-lane saturation flows and turns (``saturation.SaturationModel``); without it every
        lane has ``saturation`` and a green with a priority link has share 1.

    Returns
    -------
    list of LaneGroup
        In the order their first lane appears among the signal's links. A permitted green's
        share of the saturation flow is ``permitted_share`` of the priority flow of the other
        approaches green with it. With a ``model``, a green's share is that of the vehicles on
        the group's lanes: 1 / sum of (movement's share of the flow x its through-car
        equivalent), protected turns at the HCM's equivalents and permitted ones at the
        inverse of their ``permitted_share``; so a shared lane with a permitted left is derated
        by its left turners, and an exclusive left lane by the permitted rate alone.
    """
    links_of: dict[str, list[Link]] = defaultdict(list)
    for link in intersection.links:
        links_of[link.in_lane].append(link)
    states = [intersection.phases[i].state for i in greens]
    members: dict[tuple, list[str]] = {}
    # (phase, edge) -> flow of lanes with priority green
    priority_flow: defaultdict[tuple[int, str], float] = defaultdict(float)
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

    def serving(links: list[Link]) -> tuple[int, ...]:
        return tuple(
            i for i, s in zip(greens, states) if any(s[link.index] in "Gg" for link in links)
        )

    groups = []
    for (edge, movements, protected, permitted), group_lanes in members.items():
        flow = float(sum(lane_flow[lane] for lane in group_lanes))
        group_links = {
            movement: [
                link for lane in group_lanes for link in links_of[lane] if link.movement == movement
            ]
            for movement in movements
        }
        movement_flows = tuple(
            (
                movement,
                float(sum(lane_shares[movement].get(lane, 0.0) for lane in group_lanes)),
                serving(group_links[movement]),
            )
            for movement in movements
        )
        own = saturation
        adjustments: tuple[tuple[str, float], ...] = ()
        if model is not None:
            own, adjustments = model.group_saturation(
                group_lanes, {m: v for m, v, _ in movement_flows}
            )
        # A yielding lane waits for the priority streams of the other approaches green with it.
        rate = {
            i: permitted_share(
                sum(
                    v for (phase, other), v in priority_flow.items() if phase == i and other != edge
                ),
                own,
            )
            for i in (*protected, *permitted)
        }
        if model is None:
            shares = {i: 1.0 for i in protected} | {i: rate[i] for i in permitted}
        else:
            shares = {
                i: _mixed_share(
                    intersection.phases[i].state,
                    group_lanes,
                    group_links,
                    movement_flows,
                    model,
                    rate[i],
                )
                for i in (*protected, *permitted)
            }
        phases = tuple(sorted(shares))
        groups.append(
            LaneGroup(
                edge=edge,
                lanes=tuple(group_lanes),
                movements=movements,
                phases=phases,
                flow_veh_h=flow,
                flow_ratio=flow / (own * len(group_lanes)),
                capacity_shares=tuple(shares[i] for i in phases),
                movement_flows=movement_flows,
                saturation_veh_h_lane=own,
                adjustments=adjustments,
            )
        )
    return groups


def _mixed_share(
    state: str,
    lanes: list[str],
    links: Mapping[str, list[Link]],
    movement_flows: tuple[tuple[str, float, tuple[int, ...]], ...],
    model: SaturationModel,
    permitted_rate: float,
) -> float:
    """Share of the group's saturation flow it discharges in a green ``state``, from its mix.

    The time a lane needs per vehicle is the flow-weighted mean of its movements' through-car
    equivalents (HCM: s = s_th / (1 + sum P_i (E_i - 1))), over the movements green in the
    phase (equally weighted when none has flow).
    """
    green = []
    for movement, flow, _ in movement_flows:
        chars = {state[link.index] for link in links[movement]}
        if "G" in chars:
            green.append((flow, model.equivalent(movement, lanes)))
        elif "g" in chars:
            green.append((flow, 1.0 / permitted_rate))
    total = sum(flow for flow, _ in green)
    weights = [flow / total if total > 0 else 1.0 / len(green) for flow, _ in green]
    return 1.0 / sum(w * e for w, (_, e) in zip(weights, green))
