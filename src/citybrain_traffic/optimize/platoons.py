"""Red-arrival cost of the platoons between linked signals, for every difference of offsets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..network import GREEN_CHARS, Intersection, Network
from .demand import IntersectionDemand
from .links import SignalLink
from .result import SignalTiming

#: Per signal pair (a, b): red-arrival wait (veh·s/h) and tie-break lateness (s), each indexed by
#: the offset difference o_b − o_a in whole seconds.
PairCosts = Mapping[tuple[str, str], tuple[np.ndarray, np.ndarray]]


def _green_masks(
    intersection: Intersection, timing: SignalTiming, cycle: int
) -> dict[str, np.ndarray]:
    """Mark, per movement, the whole seconds of the cycle (from phase 0's start) it is green."""
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
    """Count the seconds from each second of the cycle to the next green second (0 when green)."""
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
    """Find the start (s) of the longest green run of a cyclic mask."""
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


def pair_costs(
    network: Network,
    demands: Mapping[str, IntersectionDemand],
    timings: Mapping[str, SignalTiming],
    links: Sequence[SignalLink],
    cycle_s: float,
) -> dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]:
    """Tabulate each linked signal pair's red-arrival wait for every difference of their offsets.

    Each upstream movement onto a link releases its flow evenly over its green; the vehicles
    reach the downstream stop line one travel time later and split over the approach's
    movements by their flows; a vehicle arriving while its movement is red waits for the next
    green. The links between two signals add up in one pair, keyed in the order of ``demands``.

    Parameters
    ----------
    network
        The network of the signals.
    demands
        Demand per signal (flows in veh/h), keyed by signal id; its order orders each pair.
    timings
        The signals' timings at the common cycle (greens in s).
    links
        The roads between the signals (``signal_links``).
    cycle_s
        The common cycle (s), rounded to whole seconds.

    Returns
    -------
    dict
        Per signal pair (a, b): the red-arrival wait (veh·s/h) and a tie-break lateness (s, how
        late the main platoon's head arrives after its green starts), each indexed by the offset
        difference δ = o_b − o_a in whole seconds.
    """
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
        head_up = _first_green(masks[up][max(leaving, key=leaving.__getitem__)])
        head_down = _first_green(masks[down][max(arriving, key=arriving.__getitem__)])
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
