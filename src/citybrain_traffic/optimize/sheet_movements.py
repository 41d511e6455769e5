"""The movement table of a timing sheet: flow, v/c, modelled delay and LOS per movement."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..network import Intersection, Network
from ..network.movements import SignalMovements, name_movements
from ..network.nema import NemaFit, fit_network
from ..plans import TimingPlan
from ..sim.metrics import level_of_service
from .delay import DEFAULT_ANALYSIS_PERIOD_H, phase_delay
from .demand import DEFAULT_SATURATION_VEH_H_LANE, IntersectionDemand, intersection_demand
from .result import SignalTiming

if TYPE_CHECKING:
    from rich.table import Table

#: Columns of the movement table (veh/h, s/veh; v/c is a ratio). ``phases`` lists the SUMO
#: program indices of the greens that serve the movement.
MOVEMENT_COLUMNS = [
    "intersection",
    "nema",
    "movement",
    "lanes",
    "flow_veh_h",
    "v_c",
    "delay_s_veh",
    "los",
    "phases",
]


def movement_table(
    plans: Sequence[TimingPlan],
    network: Network,
    *,
    timings: Mapping[str, SignalTiming] | None = None,
    demands: Mapping[str, IntersectionDemand] | None = None,
) -> pd.DataFrame:
    """Tabulate every vehicle movement of every plan: its flow, v/c, modelled delay and LOS.

    Each movement's flow is spread over its lanes as the optimizer spreads it (lane groups of
    ``intersection_demand``). A lane group's capacity is saturation flow x lanes x its effective
    green over the cycle, its effective green the plan's greens that serve it, each counted at the
    group's share of saturation flow there (a permitted turn's gap-acceptance share). A movement's
    v/c is the highest of the groups it uses, taking for each the group's flow over all its
    greens or the movement's flow over its own greens, whichever is higher (a through on a lane
    shared with an always-green right turn leaves only in its phase). Its delay is the HCM control
    delay of those groups (``phase_delay``; a group served in two greens is taken as one green of
    their sum, an upper bound on its uniform delay), weighted by the movement's flow on each.

    A movement without flow has v/c 0 and no delay or LOS: there is no vehicle to delay.

    Parameters
    ----------
    plans
        The plans as exported, one per signal.
    network
        The network they are for.
    timings, demands
        Where the flows come from: the demand per signal when given, else rebuilt from each
        timing's ``inputs`` (``flows_veh_h``, ``saturation_veh_h_lane``), else from each plan's
        provenance ``inputs``. A signal with none of these gets empty figures.

    Returns
    -------
    pandas.DataFrame
        Columns ``MOVEMENT_COLUMNS``, per signal in NEMA order where its program fits (else in
        order of the first green serving each movement).
    """
    named = name_movements(network)
    fits = fit_network(network)
    rows = []
    for plan in plans:
        intersection = network.intersections[plan.tls_id]
        demand, period = _demand(plan, intersection, network, timings, demands)
        figures = _figures(plan, demand, period) if demand is not None else {}
        rows += _rows(plan, named[plan.tls_id], fits[plan.tls_id], figures)
    return pd.DataFrame(rows, columns=MOVEMENT_COLUMNS)


def _demand(
    plan: TimingPlan,
    intersection: Intersection,
    network: Network,
    timings: Mapping[str, SignalTiming] | None,
    demands: Mapping[str, IntersectionDemand] | None,
) -> tuple[IntersectionDemand | None, float]:
    inputs: Mapping[str, Any] = (
        timings[plan.tls_id].inputs
        if timings is not None and plan.tls_id in timings
        else plan.provenance.get("inputs") or {}
    )
    period = float(inputs.get("analysis_period_h", DEFAULT_ANALYSIS_PERIOD_H))
    if demands is not None and plan.tls_id in demands:
        return demands[plan.tls_id], period
    if "flows_veh_h" not in inputs:
        return None, period
    saturation = float(inputs.get("saturation_veh_h_lane", DEFAULT_SATURATION_VEH_H_LANE))
    demand = intersection_demand(
        intersection, network.lanes, inputs["flows_veh_h"], saturation_veh_h_lane=saturation
    )
    return demand, period


def _figures(
    plan: TimingPlan, demand: IntersectionDemand, period_h: float
) -> dict[str, tuple[float, float, float]]:
    """(flow veh/h, v/c, delay s/veh) per movement key under the plan's greens."""
    cycle = plan.cycle_s
    green = {i: phase.duration for i, phase in plan.greens}
    saturation = demand.saturation_veh_h_lane
    parts: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
    for group in demand.lane_groups:
        lanes = len(group.lanes)
        g_group = sum(group.share(p) * green.get(p, 0.0) for p in group.phases)
        for movement, flow, phases in group.movement_flows:
            if not group.phases:  # no green serves it (turns on red): nothing the plan sets
                parts[movement].append((flow, math.nan, math.nan))
                continue
            g_own = sum(group.share(p) * green.get(p, 0.0) for p in phases or group.phases)
            options = [(g_group, group.flow_veh_h), (g_own, flow)]
            g, v = max(options, key=lambda o: o[1] / o[0] if o[0] > 0 else math.inf)
            with np.errstate(divide="ignore", invalid="ignore"):
                x, d = phase_delay(
                    cycle,
                    g,
                    v / (saturation * lanes),
                    lanes,
                    saturation,
                    analysis_period_h=period_h,
                )
            parts[movement].append((flow, float(x), float(d)))
    out = {}
    for movement, pieces in parts.items():
        flow = sum(f for f, _, _ in pieces)
        carried = [(f, x, d) for f, x, d in pieces if f > 0]
        v_c = max((x for _, x, _ in carried), default=0.0)
        delay = sum(f * d for f, _, d in carried) / flow if flow > 0 else math.nan
        out[movement] = (flow, v_c, delay)
    return out


def _rows(
    plan: TimingPlan,
    named: SignalMovements,
    fit: NemaFit,
    figures: Mapping[str, tuple[float, float, float]],
) -> list[dict]:
    states = {i: phase.state for i, phase in plan.greens}
    rows: list[dict[str, Any]] = []
    order: list[tuple] = []
    for m in named.movements:
        if m.is_crossing:
            continue
        serving = [i for i, s in states.items() if any(s[k] in "Gg" for k in m.links)]
        flow, v_c, delay = figures.get(m.key, (math.nan, math.nan, math.nan))
        nema = fit.movement_numbers.get(m.name)
        rows.append(
            {
                "intersection": plan.tls_id,
                "nema": "" if nema is None else str(nema),
                "movement": m.name,
                "lanes": len(m.in_lanes),
                "flow_veh_h": flow,
                "v_c": v_c,
                "delay_s_veh": delay,
                "los": level_of_service(delay) if flow > 0 and math.isfinite(delay) else "",
                "phases": " ".join(map(str, serving)),
            }
        )
        order.append((nema or 99, serving[0] if serving else 99, m.links))
    return [row for _, row in sorted(zip(order, rows), key=lambda pair: pair[0])]


def movements_rich(table: pd.DataFrame, *, title: str) -> Table:
    """Lay the movement table out as a rich Table (flow veh/h, delay s/veh, as its caption says)."""
    from rich.table import Table

    out = Table(
        title=title,
        title_justify="left",
        caption="Flow in veh/h, modelled delay in s/veh, HCM level of service; a movement "
        "without flow has none. SUMO: program indices of the greens that serve it.",
        caption_justify="left",
    )
    for heading in ("Signal", "NEMA", "Movement", "Lanes", "Flow", "v/c", "Delay", "LOS", "SUMO"):
        out.add_column(heading, justify="left" if heading in ("Signal", "Movement") else "right")
    previous = None
    for r in table.to_dict("records"):
        out.add_row(
            str(r["intersection"]) if r["intersection"] != previous else "",
            str(r["nema"]),
            str(r["movement"]),
            str(r["lanes"]),
            _cell(r["flow_veh_h"], ",.0f"),
            _cell(r["v_c"], ".2f"),
            _cell(r["delay_s_veh"], ".1f"),
            str(r["los"]),
            str(r["phases"]),
        )
        previous = r["intersection"]
    return out


def _cell(value: Any, spec: str) -> str:
    return "" if not math.isfinite(value) else format(value, spec)
