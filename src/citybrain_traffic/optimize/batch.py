"""Time many signals at once from a flows table, each on its own or as one coordinated group."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from ..errors import InputError
from ..network import Network
from .coordination import DEFAULT_MAX_LINK_LENGTH_M, DEFAULT_OFFSET_SEARCH_BUDGET, coordinate
from .delay import DEFAULT_ANALYSIS_PERIOD_H
from .demand import (
    DEFAULT_SATURATION_VEH_H_LANE,
    IntersectionDemand,
    flows_by_signal,
    intersection_demand,
)
from .frame import DEFAULT_CYCLE_MAX_S, DEFAULT_CYCLE_MIN_S
from .pedestrians import pedestrian_minimums
from .result import SignalTiming
from .saturation import SaturationModel
from .splits import DEFAULT_MAX_SATURATION, optimize_splits
from .storage import lane_storage_m


#: The queue-storage penalty's weight in plans deployed as they are (``ctraffic optimize``,
#: ``--tod``): one vehicle-second of overflow weighs one of delay (``storage.SpillbackPenalty``).
DEPLOYED_SPILLBACK_WEIGHT = 1.0


def optimize_network(
    network: Network,
    flows: pd.DataFrame | Mapping[str, Mapping[str, float]],
    *,
    tls_ids: Sequence[str] | None = None,
    coordinated: bool = False,
    saturation_veh_h_lane: float | SaturationModel | Mapping[str, float] = (
        DEFAULT_SATURATION_VEH_H_LANE
    ),
    cycle_min_s: float = DEFAULT_CYCLE_MIN_S,
    cycle_max_s: float = DEFAULT_CYCLE_MAX_S,
    max_saturation: float = DEFAULT_MAX_SATURATION,
    analysis_period_h: float = DEFAULT_ANALYSIS_PERIOD_H,
    max_link_length_m: float = DEFAULT_MAX_LINK_LENGTH_M,
    search_budget: float = DEFAULT_OFFSET_SEARCH_BUDGET,
    offsets: bool = True,
    spillback_weight: float = 0.0,
) -> dict[str, SignalTiming]:
    """Optimize the timings of a network's signals from per-movement flows (veh/h).

    Parameters
    ----------
    network
        The network (``network.read_network``).
    flows
        A flows table with columns ``intersection``, ``movement``, ``flow_veh_h`` (as
        ``flows.flows_from_routes`` and ``flows.flows_from_counts`` return), or
        ``{signal id: {movement: veh/h}}``. Movements left out carry no flow.
    tls_ids
        The signals to time; by default those that appear in ``flows``.
    coordinated
        Give the signals one common cycle and offsets (``coordination.coordinate``) instead of
        timing each alone (``splits.optimize_splits``, offset 0).
    saturation_veh_h_lane
        Saturation flow per lane (veh/h/lane): one value, one per signal id (the default for
        signals not listed), or a ``saturation.SaturationModel`` (per lane group, HCM-adjusted
        or measured).
    cycle_min_s, cycle_max_s, max_saturation, analysis_period_h
        As for ``optimize_splits``.
    max_link_length_m, search_budget, offsets
        As for ``coordinate`` (used when ``coordinated``).
    spillback_weight
        Weight of the penalty on greens whose 95th-percentile queue overflows its storage
        (``storage.SpillbackPenalty``). 0, the default, turns it off: the controllers' plans
        (``adaptive``, ``optimized``) are bounds for a real-time layer or checked in SUMO;
        ``ctraffic optimize`` turns it on for plans deployed as they are. Greens serving
        crossings always keep their pedestrian time (``pedestrians.pedestrian_minimums``).

    Returns
    -------
    dict
        ``SignalTiming`` per signal id; ``to_plans`` turns them into validated programs.

    Raises
    ------
    InputError
        For signals or movements not in the network, bad flows or options.
    InfeasibleError
        When a signal's minimum greens and change intervals exceed ``cycle_max_s``, or the group
        has no common cycle.

    Examples
    --------
    >>> network = read_network("scenarios/sumo/corridor/corridor.net.xml")  # doctest: +SKIP
    >>> flows = flows_from_routes(routes, network, begin=3600, end=7200)     # doctest: +SKIP
    >>> timings = optimize_network(network, flows, coordinated=True)          # doctest: +SKIP
    >>> plans = to_plans(timings, network)                                    # doctest: +SKIP
    """
    by_signal = (
        flows_by_signal(flows)
        if isinstance(flows, pd.DataFrame)
        else {k: dict(v) for k, v in flows.items()}
    )
    unknown = [tls for tls in [*by_signal, *(tls_ids or [])] if tls not in network.intersections]
    if unknown:
        raise InputError(
            f"signal(s) {sorted(set(unknown))[:5]} not in network {network.path.name}; "
            f"its signals are {list(network.intersections)[:8]}"
        )
    chosen = list(tls_ids) if tls_ids is not None else list(by_signal)
    demands: dict[str, IntersectionDemand] = {
        tls: intersection_demand(
            network.intersections[tls],
            network.lanes,
            by_signal.get(tls, {}),
            saturation_veh_h_lane=(
                saturation_veh_h_lane.get(tls, DEFAULT_SATURATION_VEH_H_LANE)
                if isinstance(saturation_veh_h_lane, Mapping)
                else saturation_veh_h_lane
            ),
        )
        for tls in chosen
    }
    options = dict(
        cycle_min_s=cycle_min_s,
        cycle_max_s=cycle_max_s,
        max_saturation=max_saturation,
        analysis_period_h=analysis_period_h,
    )
    if coordinated:
        return coordinate(
            network,
            demands,
            max_link_length_m=max_link_length_m,
            search_budget=search_budget,
            offsets=offsets,
            spillback_weight=spillback_weight,
            **options,
        ).timings
    walks = pedestrian_minimums(network)
    storage = lane_storage_m(network) if spillback_weight > 0 else None
    return {
        tls: optimize_splits(
            network.intersections[tls],
            demand,
            pedestrian_s=walks.get(tls),
            storage_m=storage,
            spillback_weight=spillback_weight,
            **options,
        )
        for tls, demand in demands.items()
    }
