"""Queue storage: the 95th-percentile back of queue per lane group against the lanes' storage."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import InputError
from ..network import Intersection, Network
from ..plans import TimingPlan
from .delay import DEFAULT_ANALYSIS_PERIOD_H
from .demand import (
    DEFAULT_SATURATION_VEH_H_LANE,
    IntersectionDemand,
    LaneGroup,
    flows_by_signal,
    intersection_demand,
)
from .frame import TimingFrame
from .result import SignalTiming

#: Length of road a stopped vehicle takes up in a queue (m): the HCM's average vehicle spacing
#: in a stationary queue, 25 ft (HCM 6th ed., ch. 31, queue storage ratio). SUMO's default car
#: (5 m long, 2.5 m minGap) takes 7.5 m.
VEHICLE_SPACING_M = 7.62

#: HCM back-of-queue second-term factor k_B of a pretimed signal is 0.12 I (s g / 3600)^0.7,
#: with upstream filtering I = 1 for random arrivals (HCM 2000 ch. 16 app. G, carried into
#: HCM 6th ed. ch. 31).
_K_B_PRETIMED = 0.12
#: The 95th-percentile back-of-queue factor f_B95 = p1 + p2 exp(-Q / p3) of a pretimed signal
#: (HCM 2000 ch. 16 app. G, percentile back-of-queue parameters).
_P95 = (1.6, 1.0, 5.0)

#: Columns of ``storage_check``.
STORAGE_COLUMNS = [
    "intersection",
    "edge",
    "lanes",
    "movements",
    "phases",
    "flow_veh_h",
    "green_s",
    "cycle_s",
    "v_c",
    "storage_m",
    "queue_veh",
    "queue95_veh",
    "queue95_m",
    "ratio",
    "spillback_risk",
]


def back_of_queue(
    cycle_s, green_s, flow_veh_h_lane, saturation_veh_h_lane, *, analysis_period_h: float
) -> tuple[np.ndarray, np.ndarray]:
    """Return the mean and 95th-percentile back of queue (veh per lane) of a lane group.

    HCM 2000 ch. 16 appendix G (the back-of-queue model HCM 6th ed. ch. 31 keeps), pretimed,
    random arrivals (PF2 = 1, I = 1), no initial queue. With g/C = λ, capacity per lane
    c = s λ and X = v / c:

    - first term Q1 = (v C / 3600)(1 − λ) / (1 − min(1, X) λ);
    - second term Q2 = 0.25 c T [(X − 1) + √((X − 1)² + 8 k_B X / (c T))], with
      k_B = 0.12 (s g / 3600)^0.7 and the analysis period T in h;
    - Q95 = f_B95 (Q1 + Q2), f_B95 = 1.6 + exp(−Q / 5).

    Arguments broadcast as numpy arrays: cycle and effective green (s), flow and saturation flow
    per lane (veh/h). No green gives an infinite queue, no flow none.
    """
    cycle = np.asarray(cycle_s, dtype=float)
    green = np.asarray(green_s, dtype=float)
    flow = np.asarray(flow_veh_h_lane, dtype=float)
    saturation = np.asarray(saturation_veh_h_lane, dtype=float)
    ratio = green / cycle
    capacity = saturation * ratio
    t = analysis_period_h
    with np.errstate(divide="ignore", invalid="ignore"):
        x = np.where(flow > 0, flow / capacity, 0.0)
        q1 = flow * cycle / 3600.0 * (1.0 - ratio) / (1.0 - np.minimum(1.0, x) * ratio)
        k_b = _K_B_PRETIMED * (saturation * green / 3600.0) ** 0.7
        q2 = (
            0.25
            * capacity
            * t
            * ((x - 1.0) + np.sqrt((x - 1.0) ** 2 + 8 * k_b * x / (capacity * t)))
        )
    mean = np.where(flow <= 0, 0.0, np.where(green > 0, q1 + q2, np.inf))
    p1, p2, p3 = _P95
    return mean, mean * (p1 + p2 * np.exp(-mean / p3))


def lane_storage_m(network: Network) -> dict[str, float]:
    """Return the queue storage (m) of every incoming lane of the network's signals.

    From the stop line upstream, lane by lane, while the lane has exactly one feeding lane (U-turns
    aside) over a connection no signal controls, and that feeder continues this lane rather than
    opening a turn bay beside it (``_continued_lane``; a lane shorter than ``VEHICLE_SPACING_M``
    is no bay). So storage ends at the upstream signal, at a junction where lanes merge, or at
    the start of a turn bay. A static fact of the file: computed once per
    process for a file and its modification time.
    """
    key = (str(network.path), network.path.stat().st_mtime_ns)
    if key not in _STORAGE:
        if len(_STORAGE) >= _STORAGE_MAX:
            _STORAGE.pop(next(iter(_STORAGE)))
        _STORAGE[key] = _lane_storage(network)
    return _STORAGE[key]


#: Storage already computed in this process: (net file, its mtime) -> metres per lane.
_STORAGE: dict[tuple[str, int], dict[str, float]] = {}
_STORAGE_MAX = 16


def _lane_storage(network: Network) -> dict[str, float]:
    import sumolib

    net = sumolib.net.readNet(str(network.path))
    lanes = dict.fromkeys(lane for i in network.intersections.values() for lane in i.in_lanes)
    return {lane_id: _storage_of(net.getLane(lane_id)) for lane_id in lanes}


def _storage_of(lane) -> float:
    total, seen, current = lane.getLength(), {lane.getID()}, lane
    while True:
        feeds = [
            conn
            for conns in current.getEdge().getIncoming().values()
            for conn in conns
            if conn.getToLane().getID() == current.getID() and conn.getDirection() != "t"
        ]
        if len(feeds) != 1 or feeds[0].getTLSID():
            return total
        feeder = feeds[0].getFromLane()
        # A "bay" shorter than a queued vehicle is drawing, not a bay: its queue waits upstream.
        bay = total >= VEHICLE_SPACING_M and _continued_lane(feeder, current.getEdge()) not in (
            None,
            current.getID(),
        )
        if feeder.getID() in seen or bay:
            return total
        seen.add(feeder.getID())
        total += feeder.getLength()
        current = feeder


def _continued_lane(feeder, edge) -> str | None:
    """Return the lane of ``edge`` that ``feeder`` continues into (None: every one it feeds).

    Where a lane feeds several lanes of the next edge, the others open a turn bay. The one it
    continues is its only target with a through movement beyond, else the one at the lane-index
    offset of the edges' one-to-one connections (0 without any).
    """
    targets = [c.getToLane() for c in feeder.getOutgoing() if c.getToLane().getEdge() is edge]
    if len(targets) < 2:
        return None
    through = [t for t in targets if any(c.getDirection() == "s" for c in t.getOutgoing())]
    if len(through) == 1:
        return through[0].getID()
    offsets = [
        conns[0].getToLane().getIndex() - lane.getIndex()
        for lane in feeder.getEdge().getLanes()
        if len(conns := [c for c in lane.getOutgoing() if c.getToLane().getEdge() is edge]) == 1
    ]
    index = feeder.getIndex() + (max(set(offsets), key=offsets.count) if offsets else 0)
    return next((t.getID() for t in targets if t.getIndex() == index), None)


@dataclass(frozen=True)
class _Part:
    """A lane group's penalty as it falls to one of its green phases (``SpillbackPenalty``)."""

    position: int
    weight: float
    flow_veh_h_lane: float
    lanes: int
    capacity_share: float
    other_green_ratio: float
    storage_veh: float


class SpillbackPenalty:
    """A delay penalty (veh·s/h) on greens whose 95th-percentile queue overflows its storage.

    Vehicles beyond a lane group's storage (``queue95 - storage`` per lane, every cycle) block
    the road behind them, the upstream junction or the lanes beside a turn bay, through the red:
    the penalty is those vehicles per hour times the group's red (C − g), added to the modelled
    delay, times ``weight`` (0 turns it off). It falls as the group gets more green, so the
    optimizer moves green toward short-storage groups, and is zero where every queue fits.

    The optimizer needs it phase by phase. A group served by one phase is exact. A group served
    by several is shared over them in proportion to their critical ratios (as
    ``intersection_demand`` weights delays), each share computed with the other phases' green
    held at its share of the cycle in ``reference`` (a ``SignalTiming``, e.g. Webster's plan),
    so at the reference's split the shares add up to the group's exact penalty.
    """

    def __init__(
        self,
        demand: IntersectionDemand,
        storage_m: Mapping[str, float],
        analysis_period_h: float = DEFAULT_ANALYSIS_PERIOD_H,
        weight: float = 1.0,
        *,
        reference: SignalTiming | None = None,
        vehicle_spacing_m: float = VEHICLE_SPACING_M,
    ):
        if not (math.isfinite(weight) and weight >= 0):
            raise InputError(f"spillback penalty weight {weight!r}, expected a number >= 0")
        self.weight = float(weight)
        self.saturation = demand.saturation_veh_h_lane
        self.analysis_period_h = analysis_period_h
        position = {p.index: k for k, p in enumerate(demand.phases)}
        ratios = {p.index: p.critical_ratio for p in demand.phases}
        greens = reference.greens_s if reference is not None else {}
        cycle = reference.cycle_s if reference is not None else math.inf
        self.parts = []
        for group in demand.lane_groups:
            storage = _group_storage(group, storage_m)
            if not (group.flow_veh_h > 0 and group.phases and math.isfinite(storage) and weight):
                continue
            weights = np.array([ratios[p] for p in group.phases])
            if weights.sum() <= 0:
                weights = np.ones(len(weights))
            for p, w in zip(group.phases, weights / weights.sum()):
                other = sum(greens.get(q, 0.0) * group.share(q) for q in group.phases if q != p)
                self.parts.append(
                    _Part(
                        position=position[p],
                        weight=float(w),
                        flow_veh_h_lane=group.flow_veh_h / len(group.lanes),
                        lanes=len(group.lanes),
                        capacity_share=group.share(p),
                        other_green_ratio=other / cycle,
                        storage_veh=storage / vehicle_spacing_m,
                    )
                )

    def __call__(self, positions: np.ndarray, cycle_s: np.ndarray, green_s: np.ndarray):
        """Return the penalty (veh·s/h) of the phases at ``positions`` (in demand order).

        ``cycle_s`` and ``green_s`` (s) are arrays of the same shape as ``positions``.
        """
        out = np.zeros(np.shape(green_s))
        for part in self.parts:
            mask = positions == part.position
            if not mask.any():
                continue
            cycle = cycle_s[mask]
            green = np.minimum(
                green_s[mask] * part.capacity_share + part.other_green_ratio * cycle, cycle
            )
            _, q95 = back_of_queue(
                cycle,
                green,
                part.flow_veh_h_lane,
                self.saturation,
                analysis_period_h=self.analysis_period_h,
            )
            spilled = np.maximum(q95 - part.storage_veh, 0.0) * part.lanes * 3600.0 / cycle
            out[mask] += self.weight * part.weight * spilled * (cycle - green)
        return out

    def notes(self, frame: TimingFrame, greens_s: Sequence[int]) -> list[str]:
        """Say which green phases of ``frame`` overflow at these greens (s)."""
        phases = frame.greens
        cycle = np.full(len(greens_s), frame.fixed_s + sum(greens_s))
        spill = self(np.arange(len(greens_s)), cycle, np.asarray(greens_s, dtype=float))
        if not self.parts or spill.sum() <= 0:
            return []
        return [
            "95th-percentile queue exceeds storage in phase(s) "
            f"{[phases[int(k)] for k in np.flatnonzero(spill)]}: spillback penalty "
            f"{spill.sum():.0f} veh·s/h"
        ]


def _group_storage(group: LaneGroup, storage_m: Mapping[str, float]) -> float:
    """Return the storage of a lane group (m): its shortest lane's (queues balance over lanes)."""
    return min((storage_m.get(lane, math.inf) for lane in group.lanes), default=math.inf)


def storage_check(
    network: Network,
    timings: Mapping[str, SignalTiming | TimingPlan],
    flows: pd.DataFrame | Mapping[str, Mapping[str, float]],
    *,
    saturation_veh_h_lane: float | Mapping[str, float] = DEFAULT_SATURATION_VEH_H_LANE,
    analysis_period_h: float = DEFAULT_ANALYSIS_PERIOD_H,
    vehicle_spacing_m: float = VEHICLE_SPACING_M,
) -> pd.DataFrame:
    """Check the 95th-percentile queue of every lane group against its storage.

    Parameters
    ----------
    network
        The network.
    timings
        Per signal id, a ``SignalTiming`` (``optimize_network``) or a ``TimingPlan``.
    flows
        Flows per movement (veh/h), as for ``optimize_network``.
    saturation_veh_h_lane
        Saturation flow per lane (veh/h/lane): one value or one per signal id.
    analysis_period_h
        Analysis period T of the queue's second term (h).
    vehicle_spacing_m
        Road length a queued vehicle takes (m), ``VEHICLE_SPACING_M`` by default.

    Returns
    -------
    DataFrame
        One row per lane group with flow (``STORAGE_COLUMNS``): ``intersection``, ``edge``,
        ``lanes`` and ``movements`` (space-separated), ``phases`` (program indices serving it),
        ``flow_veh_h``, ``green_s`` (effective green: each serving phase's green times the share
        of saturation flow the group discharges in it), ``cycle_s``, ``v_c``, ``storage_m``
        (``lane_storage_m``, the group's shortest lane), ``queue_veh`` and ``queue95_veh`` (mean
        and 95th-percentile back of queue per lane, ``back_of_queue``), ``queue95_m`` (times
        ``vehicle_spacing_m``), ``ratio`` (queue95_m / storage_m, the HCM queue storage ratio) and
        ``spillback_risk`` (ratio > 1).

    Raises
    ------
    InputError
        For a signal not in the network, or a spacing that is not a positive number.
    """
    if not (math.isfinite(vehicle_spacing_m) and vehicle_spacing_m > 0):
        raise InputError(f"vehicle spacing {vehicle_spacing_m!r} m, expected a positive number")
    unknown = [tls for tls in timings if tls not in network.intersections]
    if unknown:
        raise InputError(f"signal(s) {unknown[:5]} not in network {network.path.name}")
    by_signal = flows_by_signal(flows) if isinstance(flows, pd.DataFrame) else flows
    storage = lane_storage_m(network)
    rows = []
    for tls, timing in timings.items():
        intersection = network.intersections[tls]
        saturation = (
            saturation_veh_h_lane.get(tls, DEFAULT_SATURATION_VEH_H_LANE)
            if isinstance(saturation_veh_h_lane, Mapping)
            else saturation_veh_h_lane
        )
        demand = intersection_demand(
            intersection,
            network.lanes,
            by_signal.get(tls, {}),
            saturation_veh_h_lane=saturation,
        )
        greens, cycle = _greens(intersection, timing)
        for group in demand.lane_groups:
            if group.flow_veh_h <= 0 or not group.phases:
                continue
            green = sum(greens[p] * group.share(p) for p in group.phases)
            lanes = len(group.lanes)
            mean, q95 = back_of_queue(
                cycle,
                green,
                group.flow_veh_h / lanes,
                saturation,
                analysis_period_h=analysis_period_h,
            )
            room = _group_storage(group, storage)
            rows.append(
                {
                    "intersection": tls,
                    "edge": group.edge,
                    "lanes": " ".join(group.lanes),
                    "movements": " ".join(group.movements),
                    "phases": " ".join(map(str, group.phases)),
                    "flow_veh_h": group.flow_veh_h,
                    "green_s": green,
                    "cycle_s": cycle,
                    "v_c": group.flow_veh_h / (saturation * lanes * green / cycle)
                    if green > 0
                    else math.inf,
                    "storage_m": room,
                    "queue_veh": float(mean),
                    "queue95_veh": float(q95),
                    "queue95_m": float(q95) * vehicle_spacing_m,
                    "ratio": float(q95) * vehicle_spacing_m / room,
                    "spillback_risk": bool(float(q95) * vehicle_spacing_m > room),
                }
            )
    return pd.DataFrame(rows, columns=STORAGE_COLUMNS)


def _greens(intersection: Intersection, timing: SignalTiming | TimingPlan):
    if isinstance(timing, SignalTiming):
        return timing.greens_s, timing.cycle_s
    if len(timing.phases) != len(intersection.phases):
        raise InputError(
            f"{timing.tls_id}: plan has {len(timing.phases)} phases, "
            f"the network's program has {len(intersection.phases)}"
        )
    greens = {i: timing.phases[i].duration for i, p in enumerate(intersection.phases) if p.is_green}
    return greens, timing.cycle_s
