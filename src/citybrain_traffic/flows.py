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
    if not end > begin:
        raise InputError(f"empty flow window: begin {begin:g} s is not before end {end:g} s")
    movement_of: dict[tuple[str, str], tuple[str, str]] = {}
    for intersection in network.intersections.values():
        for link in intersection.links:
            movement_of[(link.in_edge, link.out_edge)] = (intersection.tls_id, link.movement)
    counts: dict[tuple[str, str], int] = {key: 0 for key in movement_of.values()}
    travel_s: dict[str, float] = {}
    for lane in network.lanes.values():
        if lane.speed_m_s > 0:
            travel_s[lane.edge] = max(travel_s.get(lane.edge, 0.0), lane.length_m / lane.speed_m_s)
    window = (begin, end)
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
                elif vehicle_depart is not None:
                    _add(edges, vehicle_depart, window, travel_s, movement_of, counts)
            elif elem.tag == "vehicle":
                if (
                    vehicle_depart is not None
                    and elem.find("route") is None
                    and elem.get("route") in routes
                ):
                    _add(
                        routes[elem.get("route")],
                        vehicle_depart,
                        window,
                        travel_s,
                        movement_of,
                        counts,
                    )
                vehicle_depart = None
                elem.clear()
    hours = (end - begin) / 3600.0
    rows = [(tls, movement, n / hours) for (tls, movement), n in counts.items()]
    return pd.DataFrame(rows, columns=FLOW_COLUMNS).sort_values(FLOW_COLUMNS[:2], ignore_index=True)


def _add(
    edges: list[str],
    depart: float,
    window: tuple[float, float],
    travel_s: dict[str, float],
    movement_of: dict[tuple[str, str], tuple[str, str]],
    counts: dict[tuple[str, str], int],
) -> None:
    """Count the vehicle on each signalized movement of its route that it reaches in ``window``."""
    if not depart == depart or depart >= window[1]:  # NaN or after the window: never counted
        return
    reach = depart
    for pair in zip(edges, edges[1:]):
        reach += travel_s.get(pair[0], 0.0)
        if reach >= window[1]:
            return
        key = movement_of.get(pair)
        if key is not None and reach >= window[0]:
            counts[key] += 1


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
