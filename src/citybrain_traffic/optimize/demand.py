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
from .lane_groups import (
    PERMITTED_CRITICAL_HEADWAY_S,
    PERMITTED_FOLLOW_UP_HEADWAY_S,
    PERMITTED_MIN_SHARE,
    LaneGroup,
    balanced_lane_flows,
    lane_groups,
    permitted_share,
)
from .saturation import SaturationModel

__all__ = [
    "DEFAULT_SATURATION_VEH_H_LANE",
    "LANE_GROUP_COLUMNS",
    "PERMITTED_CRITICAL_HEADWAY_S",
    "PERMITTED_FOLLOW_UP_HEADWAY_S",
    "PERMITTED_MIN_SHARE",
    "IntersectionDemand",
    "LaneGroup",
    "PhaseDemand",
    "flows_by_signal",
    "intersection_demand",
    "lane_group_table",
    "permitted_share",
]

#: Saturation flow of one lane (veh/h) when no measurement is given: s0, that of a through lane
#: of passenger cars of standard width. The HCM's base is 1,900 pc/h/ln in large metropolitan
#: areas and 1,750 elsewhere; 1,800 lies between, and is what SUMO's tlsCycleAdaptation.py
#: assumes. It holds no adjustment: ``saturation.SaturationModel`` applies those the network and
#: the demand show (width, heavy vehicles, turns), once.
DEFAULT_SATURATION_VEH_H_LANE = 1800.0


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
    saturation_veh_h_lane: float | SaturationModel = DEFAULT_SATURATION_VEH_H_LANE,
) -> IntersectionDemand:
    """Compute the critical flow ratio and served flow (veh/h) of every green phase of a signal.

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
        Saturation flow per lane (veh/h/lane), the same for every lane and every green with a
        priority link; or a ``saturation.SaturationModel``: each lane group's own saturation
        flow (HCM-adjusted or measured) and, per green, the share its vehicle mix discharges
        (turns, permitted turns on shared lanes). Then ``saturation_veh_h_lane`` of the result
        is the model's base and each ``PhaseDemand`` has its critical group's effective value.

    Raises
    ------
    InputError
        For an unknown movement, a negative, infinite or NaN flow, a non-positive saturation
        flow, or lanes from another network.
    InfeasibleError
        When the signal's program has no green phase.
    """
    tls = intersection.tls_id
    model = saturation_veh_h_lane if isinstance(saturation_veh_h_lane, SaturationModel) else None
    saturation = _positive(
        model.base_veh_h_lane if model else saturation_veh_h_lane,
        f"signal {tls}: saturation flow",
        "veh/h/lane",
    )
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
    lane_flow, lane_shares = balanced_lane_flows(movement_lanes, flows)

    groups = lane_groups(intersection, greens, lane_flow, lane_shares, saturation, model)
    served = [g for g in groups if g.phases]
    unserved = sum(g.flow_veh_h for g in groups if not g.phases)
    ratios = _phase_ratios(tls, greens, served, saturation)
    phases = _phase_demands(greens, served, ratios, saturation, effective=model is not None)
    return IntersectionDemand(
        tls_id=tls,
        phases=phases,
        lane_groups=tuple(groups),
        flows_veh_h=flows,
        saturation_veh_h_lane=saturation,
        unserved_veh_h=unserved,
    )


def flows_by_signal(table: pd.DataFrame) -> dict[str, dict[str, float]]:
    """Turn a flows table into ``{tls: {movement: veh/h}}``.

    The table has columns ``intersection``, ``movement`` and ``flow_veh_h``: the shape
    ``flows.flows_from_routes`` and ``flows.flows_from_counts`` return.

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
            f"flows table lists movement {first['movement']!r} "
            f"of signal {first['intersection']!r} more than "
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
                f"signal {tls}: flow of {movement!r} is {flow!r} veh/h, "
                "expected a finite value >= 0"
            )
        flows[movement] = flow
    return flows


def _phase_ratios(
    tls: str, greens: list[int], groups: list[LaneGroup], saturation: float
) -> dict[int, float]:
    """Find the least ratio per green phase that covers every lane group's needs.

    The phases of every lane group cover its ratio, and the phases of each movement in it cover
    the movement's ratio.
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
    greens: list[int],
    groups: list[LaneGroup],
    ratios: Mapping[int, float],
    saturation: float,
    *,
    effective: bool,
) -> tuple[PhaseDemand, ...]:
    """Each green's served flow and its critical lane group's lanes and saturation flow.

    ``effective``: the critical group's saturation flow in the phase (its own x its share
    there), the rate its flow ratio was computed against; otherwise ``saturation``.
    """
    flow = dict.fromkeys(greens, 0.0)
    critical: dict[int, tuple[float, int, float]] = {}
    for group in groups:
        for phases, part_veh_h in group.flows_by_phases():
            for p, w in zip(phases, _weights(phases, ratios)):
                flow[p] += part_veh_h * w
        for p, w in zip(group.phases, _weights(group.phases, ratios)):
            # With the model, the group that binds is the one of highest need: ratio / share.
            share = group.flow_ratio * w / (group.share(p) if effective else 1.0)
            if share > critical.get(p, (-1.0, 0, 0.0))[0]:
                own = group.saturation_veh_h_lane * group.share(p) if effective else saturation
                critical[p] = (share, len(group.lanes), own)
    return tuple(
        PhaseDemand(
            index=p,
            critical_ratio=ratios[p],
            flow_veh_h=float(flow[p]),
            lanes=critical.get(p, (0.0, 1, saturation))[1],
            saturation_veh_h_lane=critical.get(p, (0.0, 1, saturation))[2],
        )
        for p in greens
    )


def _weights(phases: tuple[int, ...], ratios: Mapping[int, float]) -> np.ndarray:
    """Share a flow over ``phases`` in proportion to their ratios (equally when all are 0)."""
    weights = np.array([ratios[p] for p in phases])
    if weights.sum() <= 0:
        weights = np.ones(len(phases))
    return weights / weights.sum()


#: Columns of ``lane_group_table``.
LANE_GROUP_COLUMNS = [
    "intersection",
    "edge",
    "lanes",
    "movements",
    "flow_veh_h",
    "base_veh_h_lane",
    "f_w",
    "f_HV",
    "measured_lanes",
    "saturation_veh_h_lane",
    "share",
    "effective_veh_h_lane",
]


def lane_group_table(demands: Mapping[str, IntersectionDemand]) -> pd.DataFrame:
    """Tabulate every served lane group's saturation flow: base, factors, own and effective.

    One row per lane group with a green: ``lanes`` (count), ``movements`` (``;``-joined),
    ``flow_veh_h``, ``base_veh_h_lane`` (the signal's s0), ``f_w`` and ``f_HV`` (1 when not
    adjusted), ``measured_lanes``, ``saturation_veh_h_lane`` (the group's own, per lane),
    ``share`` (the largest share of it a green discharges: turns and permitted movements) and
    ``effective_veh_h_lane`` (own x share), all veh/h.
    """
    rows = []
    for tls, demand in demands.items():
        for group in demand.lane_groups:
            if not group.phases:
                continue
            factors = dict(group.adjustments)
            own = group.saturation_veh_h_lane or demand.saturation_veh_h_lane
            share = max(group.share(p) for p in group.phases)
            rows.append(
                (
                    tls,
                    group.edge,
                    len(group.lanes),
                    ";".join(group.movements),
                    group.flow_veh_h,
                    demand.saturation_veh_h_lane,
                    factors.get("f_w", 1.0),
                    factors.get("f_HV", 1.0),
                    int(factors.get("measured", 0)),
                    own,
                    share,
                    own * share,
                )
            )
    return pd.DataFrame(rows, columns=LANE_GROUP_COLUMNS)
