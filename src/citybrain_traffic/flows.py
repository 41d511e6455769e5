"""Per-movement flows (veh/h) at every signal: from a scenario's routes or from a counts table.

Flows are counted in 15-minute bins and turned into design flows: the window's mean, its peak
15-minute flow rate (HCM's peak-hour factor logic), or a percentile of its bins.
"""

from __future__ import annotations

import gzip
import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import InputError
from .network import Network
from .scenario import Scenario
from .sim.session import run_sumo_tool, sumo_binary

#: Columns of a flows table.
FLOW_COLUMNS = ["intersection", "movement", "flow_veh_h"]
#: Columns of a binned flows table: bin start (s of simulation time, or a timestamp for counts),
#: bin length (s), signal, movement, vehicles counted and the rate they make (veh/h).
BIN_COLUMNS = ["bin_start", "bin_s", "intersection", "movement", "count", "flow_veh_h"]
#: The HCM analysis period: design flows are the flow rates of 15-minute intervals.
DESIGN_BIN_S = 900.0
#: A heavy vehicle in the HCM has more than four tires on the pavement: SUMO's vClasses of that
#: kind (``delivery`` is a van).
HEAVY_VCLASSES = frozenset({"truck", "trailer", "bus", "coach"})
#: A vType of no heavy vClass counts as heavy from this length (m) on: between SUMO's default
#: delivery van (6.5 m) and its default truck (7.1 m).
HEAVY_LENGTH_M = 7.0
_DESIGNS = ("mean", "peak15", "percentile:P")


@dataclass(frozen=True)
class Design:
    """What the design flows are: the window's ``mean``, ``peak15`` or a ``percentile``.

    ``peak15``: per signal, the 15-minute bin with the most vehicles at that signal, every
    movement's flow of that bin as an hourly rate (x4). The peak is taken per signal, not per
    movement, so the movements timed together come from the same 15 minutes (the sum of each
    movement's own peak is a demand that never happens). ``percentile``: per movement, the
    ``percentile``-th percentile of its bins' rates.
    """

    kind: str
    percentile: float | None = None

    def __str__(self) -> str:
        return f"percentile:{self.percentile:g}" if self.kind == "percentile" else self.kind

    def describe(self) -> str:
        """Say in words what the flows are (for the sheet and the terminal)."""
        if self.kind == "mean":
            return "the window's mean flow"
        if self.kind == "peak15":
            return "the peak 15-min flow rate of each signal"
        return f"the {self.percentile:g}th percentile of each movement's 15-min flow rates"


def parse_design(text: str) -> Design:
    """Read ``mean``, ``peak15`` or ``percentile:P`` (0 <= P <= 100); else ``InputError``."""
    value = text.strip().lower()
    if value in ("mean", "peak15"):
        return Design(value)
    match = re.fullmatch(r"percentile:([0-9.eE+-]+)", value)
    if match:
        try:
            p = float(match.group(1))
        except ValueError:
            p = math.nan
        if 0 <= p <= 100:
            return Design("percentile", p)
        raise InputError(f"--design {text}: the percentile must be from 0 to 100")
    raise InputError(f"--design {text!r}: expected one of {', '.join(_DESIGNS)}")


@dataclass(frozen=True)
class DesignFlows:
    """Design flows and where they come from.

    ``flows`` has ``FLOW_COLUMNS``; ``peak_starts`` the start of each signal's peak bin
    (``peak15`` only: s of simulation time, or a timestamp); ``heavy_share`` per movement the
    share of heavy vehicles among those counted in the window (routes only, else empty).
    """

    flows: pd.DataFrame
    design: Design
    peak_starts: dict[str, object] = field(default_factory=dict)
    heavy_share: dict[str, float] = field(default_factory=dict)


def route_demand(scenario: Scenario, workdir: Path, *, demand_scale: float = 1.0) -> Path:
    """Route the scenario's demand in its window with duarouter, scaled like a run.

    Trips and flows become vehicles with explicit routes, so tools that read only routed
    vehicles (SUMO's tlsCycleAdaptation.py, ``flows_from_routes``) see the whole demand.
    Returns the routed file, ``routed.rou.xml`` in ``workdir``.
    """
    routed = workdir / "routed.rou.xml"
    run_sumo_tool(
        [
            sumo_binary("duarouter"),
            "--net-file",
            str(scenario.net_file.resolve()),
            "--route-files",
            ",".join(str(p.resolve()) for p in scenario.route_files),
            "--output-file",
            str(routed),
            "--begin",
            f"{scenario.begin:g}",
            "--end",
            f"{scenario.end:g}",
            "--scale",
            f"{demand_scale:g}",
            "--seed",
            "1",
            "--ignore-errors",
            "--no-warnings",
            "--no-step-log",
        ],
        cwd=workdir,
        what="routing the demand (duarouter)",
    )
    return routed


def flows_from_routes(routed: Path, network: Network, *, begin: float, end: float) -> pd.DataFrame:
    """Return the flow (veh/h) of each signalized movement from vehicles reaching it in a window.

    The window ``[begin, end)`` is in simulation seconds. A vehicle contributes to each movement
    its route takes (consecutive edges that a signal's link joins), at the time it reaches that
    signal's stop line driving at the speed limits from its departure (free-flow travel time:
    length / speed of every edge before). A vehicle departing at the edge of a long network
    reaches a signal minutes later, so counting it at its departure would plan each 15 minutes
    for traffic that is not there yet.
    Columns: ``intersection``, ``movement``, ``flow_veh_h``.
    """
    bins, _ = route_flow_bins(routed, network, begin=begin, end=end)
    return _mean_of_route_bins(bins, begin, end)


def route_flow_bins(
    routed: Path, network: Network, *, begin: float, end: float, bin_s: float = DESIGN_BIN_S
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Count the vehicles reaching each signalized movement in bins of ``bin_s`` from ``begin``.

    Vehicles are counted as ``flows_from_routes`` counts them. Returns the ``BIN_COLUMNS``
    table (every movement in every bin, zeros included; the last bin is shorter when the window
    is not a multiple of ``bin_s``) and, per movement, the share of heavy vehicles
    (``HEAVY_VCLASSES`` or ``HEAVY_LENGTH_M``; 0 for a movement nobody used).
    """
    if not end > begin:
        raise InputError(f"empty flow window: begin {begin:g} s is not before end {end:g} s")
    movement_of: dict[tuple[str, str], tuple[str, str]] = {}
    for intersection in network.intersections.values():
        for link in intersection.links:
            movement_of[(link.in_edge, link.out_edge)] = (intersection.tls_id, link.movement)
    travel_s: dict[str, float] = {}
    for lane in network.lanes.values():
        if lane.speed_m_s > 0:
            travel_s[lane.edge] = max(travel_s.get(lane.edge, 0.0), lane.length_m / lane.speed_m_s)
    n_bins = math.ceil((end - begin) / bin_s)
    keys = list(dict.fromkeys(movement_of.values()))
    column = {key: k for k, key in enumerate(keys)}
    counts = np.zeros((n_bins, len(keys)), dtype=np.int64)
    heavy = np.zeros(len(keys))
    for edges, depart, weight in _routed_vehicles(routed):
        if not depart == depart or depart >= end:  # NaN or after the window: never counted
            continue
        reach = depart
        for pair in zip(edges, edges[1:]):
            reach += travel_s.get(pair[0], 0.0)
            if reach >= end:
                break
            key = movement_of.get(pair)
            if key is not None and reach >= begin:
                counts[int((reach - begin) // bin_s), column[key]] += 1
                heavy[column[key]] += weight
    starts = begin + bin_s * np.arange(n_bins)
    lengths = np.minimum(bin_s, end - starts)
    table = pd.DataFrame(
        {
            "bin_start": np.repeat(starts, len(keys)),
            "bin_s": np.repeat(lengths, len(keys)),
            "intersection": [tls for tls, _ in keys] * n_bins,
            "movement": [movement for _, movement in keys] * n_bins,
            "count": counts.ravel(),
        }
    )
    table["flow_veh_h"] = table["count"] * 3600.0 / table["bin_s"]
    totals = counts.sum(axis=0)
    shares = {m: float(heavy[k] / totals[k]) if totals[k] else 0.0 for (_, m), k in column.items()}
    return table, shares


def design_flows_from_routes(
    routed: Path, network: Network, *, begin: float, end: float, design: Design
) -> DesignFlows:
    """Return the design flows (veh/h) of the vehicles reaching each movement in the window.

    ``mean`` is ``flows_from_routes``. ``peak15`` and ``percentile`` use the window's whole
    15-minute bins from ``begin`` (a shorter last bin is left out; a window shorter than 15
    minutes is its one bin).
    """
    bins, heavy = route_flow_bins(routed, network, begin=begin, end=end)
    return design_flows_from_bins(bins, heavy, begin=begin, end=end, design=design)


def design_flows_from_bins(
    bins: pd.DataFrame, heavy: dict[str, float], *, begin: float, end: float, design: Design
) -> DesignFlows:
    """Return the design flows of ``route_flow_bins``' table (``design_flows_from_routes``).

    Several designs of one window bin its routes once.
    """
    if design.kind == "mean":
        return DesignFlows(_mean_of_route_bins(bins, begin, end), design, heavy_share=heavy)
    whole = bins[bins["bin_s"] == bins["bin_s"].max()]
    flows, peaks = _design_of_bins(whole, design)
    return DesignFlows(flows, design, peaks, heavy)


def design_flows_from_counts(
    counts: pd.DataFrame, *, at: pd.Timestamp, minutes: int, design: Design
) -> DesignFlows:
    """Return the design flows (veh/h) of the count bins in ``[at, at + minutes)``.

    ``mean`` is ``flows_from_counts``. For ``peak15`` and ``percentile`` a movement's gap (a bin
    it lacks, ``counts.find_gaps``) is not a bin without traffic: a percentile is taken over the
    bins counted, and a signal's peak bin is chosen, and its gaps filled, with the movement's
    mean of the bins counted. Bins longer than 15 minutes are what there is: their rate is used.
    """
    if design.kind == "mean":
        return DesignFlows(flows_from_counts(counts, at=at, minutes=minutes), design)
    window = counts[
        (counts["timestamp"] >= at) & (counts["timestamp"] < at + pd.Timedelta(minutes=minutes))
    ]
    if window.empty:
        flows_from_counts(counts, at=at, minutes=minutes)  # raises the InputError that says why
    step_s = _bin_minutes(counts) * 60.0
    bins = window.rename(columns={"timestamp": "bin_start"}).assign(bin_s=step_s)
    bins["flow_veh_h"] = bins["count"] * 3600.0 / step_s
    flows, peaks = _design_of_bins(bins, design)
    return DesignFlows(flows, design, peaks)


def _design_of_bins(bins: pd.DataFrame, design: Design) -> tuple[pd.DataFrame, dict[str, object]]:
    """Design flows from bin rates: per signal its peak bin, or per movement a percentile."""
    frames, peaks = [], {}
    for tls, own in bins.groupby("intersection", sort=False):
        rates = own.pivot_table(
            index="bin_start", columns="movement", values="flow_veh_h", aggfunc="sum", sort=True
        )
        if design.kind == "peak15":
            filled = rates.fillna(rates.mean())
            peak = filled.sum(axis=1).idxmax()  # the earliest of equal totals
            peaks[str(tls)] = float(peak) if isinstance(peak, (int, float, np.number)) else peak
            chosen = filled.loc[[peak]].iloc[0]
        else:
            level = float(design.percentile or 0.0)
            chosen = rates.apply(lambda col: np.percentile(col.dropna(), level))
        frames.append(
            pd.DataFrame(
                {"intersection": tls, "movement": chosen.index, "flow_veh_h": chosen.to_numpy()}
            )
        )
    flows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=FLOW_COLUMNS)
    return flows[FLOW_COLUMNS].sort_values(FLOW_COLUMNS[:2], ignore_index=True), peaks


def _mean_of_route_bins(bins: pd.DataFrame, begin: float, end: float) -> pd.DataFrame:
    hours = (end - begin) / 3600.0
    total = pd.DataFrame(
        bins.groupby(["intersection", "movement"], as_index=False, sort=False)["count"].sum()
    )
    total["flow_veh_h"] = total["count"] / hours
    return total[FLOW_COLUMNS].sort_values(FLOW_COLUMNS[:2], ignore_index=True)


def _routed_vehicles(routed: Path):
    """Yield (edges, depart s, heavy share of its type) of every vehicle in a routes file."""
    routes: dict[str, list[str]] = {}
    heavy_of: dict[str, float] = {}
    opener = gzip.open if routed.suffix == ".gz" else open
    with opener(routed, "rb") as fh:
        vehicle: tuple[float, float] | None = None
        distribution: list[tuple[str, float]] | None = None
        for event, elem in ET.iterparse(fh, events=("start", "end")):
            if event == "start":
                if elem.tag == "vehicle":
                    depart = float(elem.get("depart", "nan"))
                    vehicle = (depart, heavy_of.get(elem.get("type", ""), 0.0))
                elif elem.tag == "vTypeDistribution":
                    distribution = []
                continue
            if elem.tag == "vType":
                heavy_of[elem.get("id", "")] = float(_is_heavy(elem))
                if distribution is not None:
                    distribution.append((elem.get("id", ""), float(elem.get("probability", 1))))
            elif elem.tag == "vTypeDistribution":
                heavy_of[elem.get("id", "")] = _distribution_share(elem, distribution, heavy_of)
                distribution = None
            elif elem.tag == "route":
                edges = elem.get("edges", "").split()
                if elem.get("id") and vehicle is None:
                    routes[elem.get("id", "")] = edges
                elif vehicle is not None:
                    yield edges, vehicle[0], vehicle[1]
            elif elem.tag == "vehicle":
                if vehicle is not None and elem.find("route") is None:
                    if elem.get("route") in routes:
                        yield routes[elem.get("route", "")], vehicle[0], vehicle[1]
                vehicle = None
                elem.clear()


def _is_heavy(vtype: ET.Element) -> bool:
    if vtype.get("vClass", "passenger") in HEAVY_VCLASSES:
        return True
    return float(vtype.get("length", 0.0)) >= HEAVY_LENGTH_M


def _distribution_share(
    elem: ET.Element, members: list[tuple[str, float]] | None, heavy_of: dict[str, float]
) -> float:
    """Heavy share of a vTypeDistribution: of its inner vTypes, or of ``vTypes`` it names."""
    if not members:
        names = elem.get("vTypes", "").split()
        weights = [float(p) for p in elem.get("probabilities", "").split()] or [1.0] * len(names)
        members = list(zip(names, weights))
    total = sum(w for _, w in members)
    return sum(heavy_of.get(n, 0.0) * w for n, w in members) / total if total > 0 else 0.0


def flows_from_counts(counts: pd.DataFrame, *, at: pd.Timestamp, minutes: int = 60) -> pd.DataFrame:
    """Return flows (veh/h) from the counts in ``[at, at + minutes)``: vehicles / hours counted.

    Each movement's hours are those of its own bins in the window: a bin it lacks is a gap
    (``counts.find_gaps`` lists them), not a bin without traffic, so its flow is the mean of the
    bins counted. A movement without any count in the window has no row.
    Raises ``InputError`` when the counts hold no bin in that window.
    """
    window = counts[
        (counts["timestamp"] >= at) & (counts["timestamp"] < at + pd.Timedelta(minutes=minutes))
    ]
    if window.empty:
        first, last = counts["timestamp"].min(), counts["timestamp"].max()
        raise InputError(
            f"no counts between {at} and {minutes} minutes later (the counts cover {first} to "
            f"{last})"
        )
    step = _bin_minutes(counts)
    flows = window.groupby(["intersection", "movement"], as_index=False)["count"].agg(
        ["sum", "size"]
    )
    flows["flow_veh_h"] = flows["sum"] * 60.0 / (flows["size"] * step)
    return flows[FLOW_COLUMNS]


def _bin_minutes(counts: pd.DataFrame) -> float:
    steps = counts["timestamp"].drop_duplicates().sort_values().diff().dropna()
    return steps.min().total_seconds() / 60.0 if len(steps) else 15.0
