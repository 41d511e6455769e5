"""KPIs from SUMO's outputs: trips (incl. unfinished and never inserted), approaches, time series.

Definitions (also in the README):

- throughput: vehicles that finished their trip inside the window; ``throughput_veh_h`` per hour.
- travel time: mean tripinfo ``duration`` of inserted vehicles (for unfinished ones: so far).
- delay: mean ``timeLoss + departDelay`` over every loaded vehicle; a vehicle never inserted counts
  its wait since its planned departure, so a controller cannot hide congestion at the network edge.
- waiting time, stops: mean ``waitingTime`` and ``waitingCount`` (halts) of inserted vehicles.
- congestion index (travel time index): sum of durations / sum of (duration - timeLoss); 1 = free flow.
- backlog: vehicles still running or never inserted when the window ends.
"""

from __future__ import annotations

import gzip
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd

from ..network import Network

#: KPI names in the order of ``summary.csv``.
KPI_COLUMNS = (
    "vehicles_loaded",
    "vehicles_inserted",
    "vehicles_arrived",
    "throughput_veh_h",
    "mean_travel_time_s",
    "mean_delay_s",
    "mean_waiting_time_s",
    "mean_stops",
    "congestion_index",
    "backlog",
    "teleports",
)

#: HCM level of service for signalized intersections: upper bound of control delay (s/veh).
HCM_LOS_BOUNDS = (("A", 10.0), ("B", 20.0), ("C", 35.0), ("D", 55.0), ("E", 80.0))


def _iter_elements(path: Path, tag: str):
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        for _, elem in ET.iterparse(fh):
            if elem.tag == tag:
                yield elem.attrib
                elem.clear()


def read_tripinfo(path: Path) -> pd.DataFrame:
    """One row per loaded vehicle from a tripinfo file written with unfinished and undeparted trips.

    Columns: ``id``, ``depart`` (s, NaN if never inserted), ``depart_delay`` (s), ``arrival``
    (s, NaN if unfinished), ``duration``, ``time_loss``, ``waiting_time`` (s), ``stops`` (halts).
    """
    rows = [
        (
            a["id"],
            float(a["depart"]),
            float(a["departDelay"]),
            float(a["arrival"]),
            float(a["duration"]),
            float(a["timeLoss"]),
            float(a["waitingTime"]),
            int(a["waitingCount"]),
        )
        for a in _iter_elements(path, "tripinfo")
    ]
    trips = pd.DataFrame(
        rows,
        columns=["id", "depart", "depart_delay", "arrival", "duration", "time_loss", "waiting_time", "stops"],
    )
    trips.loc[trips["depart"] < 0, "depart"] = np.nan
    trips.loc[trips["arrival"] < 0, "arrival"] = np.nan
    return trips


def trip_kpis(trips: pd.DataFrame, *, window_s: float, teleports: int) -> dict[str, float]:
    """The network KPIs of one run (see the module docstring for definitions)."""
    inserted = trips[trips["depart"].notna()]
    arrived = int(trips["arrival"].notna().sum())
    free_flow = (inserted["duration"] - inserted["time_loss"]).sum()
    return {
        "vehicles_loaded": int(len(trips)),
        "vehicles_inserted": int(len(inserted)),
        "vehicles_arrived": arrived,
        "throughput_veh_h": arrived * 3600.0 / window_s,
        "mean_travel_time_s": _mean(inserted["duration"]),
        "mean_delay_s": _mean(trips["time_loss"] + trips["depart_delay"]),
        "mean_waiting_time_s": _mean(inserted["waiting_time"]),
        "mean_stops": _mean(inserted["stops"]),
        "congestion_index": float(inserted["duration"].sum() / free_flow) if free_flow > 0 else math.nan,
        "backlog": int(len(trips) - arrived),
        "teleports": int(teleports),
    }


def _mean(values: pd.Series) -> float:
    return float(values.mean()) if len(values) else math.nan


def read_teleports(statistics_path: Path) -> int:
    """Total teleports from SUMO's ``--statistic-output``."""
    for attrs in _iter_elements(statistics_path, "teleports"):
        return int(attrs.get("total", 0))
    return 0


def level_of_service(delay_s: float) -> str:
    """HCM level of service (A-F) of a signalized intersection or approach from its delay (s/veh)."""
    if not math.isfinite(delay_s):
        return ""
    for letter, bound in HCM_LOS_BOUNDS:
        if delay_s <= bound:
            return letter
    return "F"


def approach_table(edgedata_path: Path, network: Network) -> pd.DataFrame:
    """Mean delay per approach of every signal, with HCM level of service.

    An approach's delay is the time loss accumulated on its edges (``Approach.edges``, up to
    150 m upstream) divided by the vehicles that left its stop-line edge.

    Columns: ``tls_id``, ``approach`` (edge id), ``vehicles``, ``mean_delay_s``, ``los``,
    ``intersection_delay_s`` and ``intersection_los`` (vehicle-weighted over the approaches).
    """
    edges: dict[str, tuple[float, float]] = {}
    for attrs in _iter_elements(edgedata_path, "edge"):
        loss, left = edges.get(attrs["id"], (0.0, 0.0))
        edges[attrs["id"]] = (loss + float(attrs.get("timeLoss", 0.0)), left + float(attrs.get("left", 0.0)))
    rows = []
    for intersection in network.intersections.values():
        for approach in intersection.approaches:
            loss = sum(edges.get(e, (0.0, 0.0))[0] for e in approach.edges)
            vehicles = edges.get(approach.edge, (0.0, 0.0))[1]
            rows.append((intersection.tls_id, approach.edge, int(vehicles), loss, loss / vehicles if vehicles else math.nan))
    table = pd.DataFrame(rows, columns=["tls_id", "approach", "vehicles", "_loss", "mean_delay_s"])
    table["los"] = table["mean_delay_s"].map(level_of_service)
    totals = table.groupby("tls_id")[["_loss", "vehicles"]].sum()
    per_tls = (totals["_loss"] / totals["vehicles"].where(totals["vehicles"] > 0)).rename("intersection_delay_s")
    table = table.join(per_tls, on="tls_id").drop(columns="_loss")
    table["intersection_los"] = table["intersection_delay_s"].map(level_of_service)
    return table


def time_series(summary_path: Path, *, begin: float, bin_s: float = 300.0) -> pd.DataFrame:
    """Network state in bins of ``bin_s`` seconds from SUMO's ``--summary-output``.

    Columns: ``time_s`` (bin start), ``vehicles_running`` (mean vehicles in the network),
    ``mean_speed_m_s`` (vehicle-weighted), ``queue_veh`` (mean halting vehicles, speed < 0.1 m/s),
    ``waiting_to_insert`` (mean vehicles due but not yet inserted).
    """
    rows = [
        (float(a["time"]), float(a["running"]), float(a["meanSpeed"]), float(a["halting"]), float(a["waiting"]))
        for a in _iter_elements(summary_path, "step")
    ]
    steps = pd.DataFrame(rows, columns=["time", "running", "speed", "halting", "waiting"])
    steps["time_s"] = begin + ((steps["time"] - begin) // bin_s) * bin_s
    steps["speed_x_running"] = steps["speed"].clip(lower=0) * steps["running"]
    grouped = steps.groupby("time_s")
    series = pd.DataFrame(
        {
            "vehicles_running": grouped["running"].mean(),
            "mean_speed_m_s": grouped["speed_x_running"].sum() / grouped["running"].sum().where(lambda s: s > 0),
            "queue_veh": grouped["halting"].mean(),
            "waiting_to_insert": grouped["waiting"].mean(),
        }
    ).reset_index()
    return series
