"""Per-movement flows (veh/h) at every signal: from a scenario's routes or from a counts table."""

from __future__ import annotations

import gzip
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd

from .errors import InputError
from .network import Network
from .scenario import Scenario
from .sim.session import run_sumo_tool, sumo_binary

#: Columns of a flows table.
FLOW_COLUMNS = ["intersection", "movement", "flow_veh_h"]


def route_demand(scenario: Scenario, workdir: Path, *, demand_scale: float = 1.0) -> Path:
    """The scenario's demand in its window as routed vehicles (duarouter), scaled like a run.

    Trips and flows become vehicles with explicit routes, so tools that read only routed
    vehicles (SUMO's tlsCycleAdaptation.py, ``flows_from_routes``) see the whole demand.
    """
    routed = workdir / "routed.rou.xml"
    run_sumo_tool(
        [
            sumo_binary("duarouter"),
            "--net-file", str(scenario.net_file.resolve()),
            "--route-files", ",".join(str(p.resolve()) for p in scenario.route_files),
            "--output-file", str(routed),
            "--begin", f"{scenario.begin:g}",
            "--end", f"{scenario.end:g}",
            "--scale", f"{demand_scale:g}",
            "--seed", "1",
            "--ignore-errors",
            "--no-warnings",
            "--no-step-log",
        ],
        cwd=workdir,
        what="routing the demand (duarouter)",
    )
    return routed


def flows_from_routes(routed: Path, network: Network, *, begin: float, end: float) -> pd.DataFrame:
    """Hourly flow of every signalized movement from vehicles departing in ``[begin, end)`` (s).

    A vehicle contributes to each movement its route takes (consecutive edges that a signal's
    link joins). Columns: ``intersection``, ``movement``, ``flow_veh_h``.
    """
    if not end > begin:
        raise InputError(f"empty flow window: begin {begin:g} s is not before end {end:g} s")
    movement_of = {}
    for intersection in network.intersections.values():
        for link in intersection.links:
            movement_of[(link.in_edge, link.out_edge)] = (intersection.tls_id, link.movement)
    counts: dict[tuple[str, str], int] = {key: 0 for key in movement_of.values()}
    routes: dict[str, list[str]] = {}
    opener = gzip.open if routed.suffix == ".gz" else open
    with opener(routed, "rb") as fh:
        vehicle_depart = None
        for event, elem in ET.iterparse(fh, events=("start", "end")):
            if event == "start":
                if elem.tag == "vehicle":
                    vehicle_depart = float(elem.get("depart", "nan"))
                continue
            if elem.tag == "route":
                edges = elem.get("edges", "").split()
                if elem.get("id") and vehicle_depart is None:
                    routes[elem.get("id")] = edges
                elif vehicle_depart is not None and begin <= vehicle_depart < end:
                    _add(edges, movement_of, counts)
            elif elem.tag == "vehicle":
                if elem.find("route") is None and elem.get("route") in routes and begin <= vehicle_depart < end:
                    _add(routes[elem.get("route")], movement_of, counts)
                vehicle_depart = None
                elem.clear()
    hours = (end - begin) / 3600.0
    rows = [(tls, movement, n / hours) for (tls, movement), n in counts.items()]
    return pd.DataFrame(rows, columns=FLOW_COLUMNS).sort_values(FLOW_COLUMNS[:2], ignore_index=True)


def _add(edges: list[str], movement_of: dict, counts: dict) -> None:
    for pair in zip(edges, edges[1:]):
        key = movement_of.get(pair)
        if key is not None:
            counts[key] += 1


def flows_from_counts(counts: pd.DataFrame, *, at: pd.Timestamp, minutes: int = 60) -> pd.DataFrame:
    """Hourly flows from the counts in ``[at, at + minutes)``: vehicles counted / hours covered.

    Raises ``InputError`` when the counts hold no bin in that window.
    """
    window = counts[(counts["timestamp"] >= at) & (counts["timestamp"] < at + pd.Timedelta(minutes=minutes))]
    if window.empty:
        first, last = counts["timestamp"].min(), counts["timestamp"].max()
        raise InputError(f"no counts between {at} and {minutes} minutes later (the counts cover {first} to {last})")
    bins = window["timestamp"].nunique()
    step = _bin_minutes(counts)
    flows = window.groupby(["intersection", "movement"], as_index=False)["count"].sum()
    flows["flow_veh_h"] = flows.pop("count") * 60.0 / (bins * step)
    return flows[FLOW_COLUMNS]


def _bin_minutes(counts: pd.DataFrame) -> float:
    steps = counts["timestamp"].drop_duplicates().sort_values().diff().dropna()
    return steps.min().total_seconds() / 60.0 if len(steps) else 15.0
