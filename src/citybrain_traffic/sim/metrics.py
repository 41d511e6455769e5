"""KPIs from SUMO's outputs: trips per mode, collisions, approaches, time series.

Trips include the unfinished ones and those never inserted. Definitions (also in the README):

- modes: a vehicle whose type has SUMO's class ``bicycle`` is a bicycle; a person on foot (and a
  vehicle of class ``pedestrian``) is a pedestrian; every other vehicle is a motor vehicle. The
  headline KPIs below are the motor vehicles'.
- throughput: vehicles that finished their trip inside the window; ``throughput_veh_h`` per hour.
- travel time: mean tripinfo ``duration`` of inserted vehicles (for unfinished ones: so far).
- delay: mean ``timeLoss + departDelay`` over every loaded vehicle; a vehicle never inserted counts
  its wait since its planned departure, so a controller cannot hide congestion at the network edge.
- waiting time, stops: mean ``waitingTime`` and ``waitingCount`` (halts) of inserted vehicles.
- congestion index (travel time index): sum of durations / sum of (duration - timeLoss);
  1 = free flow.
- backlog: vehicles still running or never inserted when the window ends; never inserted: vehicles
  due to depart in the window that SUMO could not insert (per mode).
- bicycles: loaded, inserted, never inserted, arrived, and the delay as above.
- pedestrians: those who started walking; time loss over those who finished their walks (SUMO
  reports a walk's time loss only when it ends), waiting (standing, e.g. at a crossing) per
  pedestrian, so far for those still walking.
- teleports: of vehicles stuck (jam, yield, wrong lane); collisions: every collision SUMO detected,
  never counted as a teleport (SUMO's own teleport total includes them).
"""

from __future__ import annotations

import gzip
import math
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Collection, Mapping

import numpy as np
import pandas as pd

from ..network import Network

#: KPI names in the order of ``summary.csv``: the motor vehicles' (the headline), then the other
#: modes'.
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
    "vehicles_not_inserted",
    "teleports",
    "collisions",
    "bicycles_loaded",
    "bicycles_inserted",
    "bicycles_not_inserted",
    "bicycles_arrived",
    "mean_delay_bicycle_s",
    "pedestrians_departed",
    "pedestrians_arrived",
    "mean_time_loss_pedestrian_s",
    "mean_waiting_pedestrian_s",
)

#: Travel modes of ``read_tripinfo``'s ``mode`` column.
MOTOR, BICYCLE, PEDESTRIAN = "motor", "bicycle", "pedestrian"

_WALK_COLUMNS = ["finished", "time_loss", "waiting_time"]

#: HCM level of service for signalized intersections: upper bound of control delay (s/veh).
HCM_LOS_BOUNDS = (("A", 10.0), ("B", 20.0), ("C", 35.0), ("D", 55.0), ("E", 80.0))


def _iter_elements(path: Path, *tags: str, whole: bool = False):
    """Yield the attributes of each element named in ``tags`` of an XML file (gzipped or not).

    With ``whole``, the element itself with its children. Each is freed once the caller moves on.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        for _, elem in ET.iterparse(fh):
            if elem.tag in tags:
                yield elem if whole else elem.attrib
                elem.clear()


def travel_mode(vehicle_class: str) -> str:
    """Return the travel mode (``MOTOR``, ``BICYCLE`` or ``PEDESTRIAN``) of a SUMO vehicle class."""
    return {"bicycle": BICYCLE, "pedestrian": PEDESTRIAN}.get(vehicle_class, MOTOR)


def read_tripinfo(path: Path, *, vehicle_classes: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Return the vehicles of ``read_trips``."""
    return read_trips(path, vehicle_classes=vehicle_classes)[0]


def read_trips(
    path: Path, *, vehicle_classes: Mapping[str, str] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read vehicles and walkers from a tripinfo file written with unfinished and undeparted trips.

    Vehicles, one row per loaded vehicle: ``id``, ``depart`` (s, NaN if never inserted),
    ``depart_delay`` (s), ``arrival`` (s, NaN if unfinished), ``duration``, ``time_loss``,
    ``waiting_time`` (s), ``stops`` (halts), ``mode`` (``travel_mode`` of the class
    ``vehicle_classes`` gives the vehicle's type, type id -> SUMO vehicle class; a type it lacks is
    a motor vehicle's).

    Walkers, one row per person (``personinfo``) who started walking: ``id``, ``finished`` (every
    walk of the person ended), ``time_loss`` and ``waiting_time`` (s, over the person's walks;
    SUMO reports a walk's time loss only when it ends, its waiting so far). A person never
    departed, or only riding, has no walk and no row.
    """
    classes = vehicle_classes or {}
    vehicles, walkers = [], []
    # One pass: a long run's file takes a while to parse.
    for elem in _iter_elements(path, "tripinfo", "personinfo", whole=True):
        a = elem.attrib
        if elem.tag == "tripinfo":
            vehicles.append(
                (
                    a["id"],
                    float(a["depart"]),
                    float(a["departDelay"]),
                    float(a["arrival"]),
                    float(a["duration"]),
                    float(a["timeLoss"]),
                    float(a["waitingTime"]),
                    int(a["waitingCount"]),
                    travel_mode(classes.get(a.get("vType", ""), "")),
                )
            )
            continue
        walks = [w.attrib for w in elem.iter("walk") if float(w.get("depart", -1)) >= 0]
        if walks:
            walkers.append(
                (
                    a["id"],
                    all(float(w["arrival"]) >= 0 for w in walks),
                    sum(float(w["timeLoss"]) for w in walks),
                    sum(float(w["waitingTime"]) for w in walks),
                )
            )
    trips = pd.DataFrame(
        vehicles,
        columns=[
            "id",
            "depart",
            "depart_delay",
            "arrival",
            "duration",
            "time_loss",
            "waiting_time",
            "stops",
            "mode",
        ],
    )
    trips.loc[trips["depart"] < 0, "depart"] = np.nan
    trips.loc[trips["arrival"] < 0, "arrival"] = np.nan
    return trips, pd.DataFrame(walkers, columns=["id", *_WALK_COLUMNS])


def trip_kpis(
    trips: pd.DataFrame,
    *,
    window_s: float,
    teleports: int,
    collisions: int = 0,
    walks: pd.DataFrame | None = None,
) -> dict[str, float]:
    """Return the KPIs of one run, in the order of ``KPI_COLUMNS`` (see the module docstring).

    Parameters
    ----------
    trips
        ``read_trips``' vehicles; without a ``mode`` column every vehicle is a motor vehicle.
    window_s
        Length of the evaluation window (s), for the hourly throughput.
    teleports, collisions
        SUMO's counts (``read_teleports``, ``read_collisions``).
    walks
        ``read_trips``' walkers (None: no person walked).
    """
    modes = trips["mode"] if "mode" in trips else pd.Series(MOTOR, index=trips.index)
    motor, bicycles = trips[modes == MOTOR], trips[modes == BICYCLE]
    inserted = motor[motor["depart"].notna()]
    free_flow = (inserted["duration"] - inserted["time_loss"]).sum()
    counts = _mode_counts(motor, "vehicles")
    walkers = _walkers(walks, trips[modes == PEDESTRIAN])
    finished = walkers[walkers["finished"]]
    kpis = {
        **counts,
        "throughput_veh_h": counts["vehicles_arrived"] * 3600.0 / window_s,
        "mean_travel_time_s": _mean(inserted["duration"]),
        "mean_delay_s": _mean(motor["time_loss"] + motor["depart_delay"]),
        "mean_waiting_time_s": _mean(inserted["waiting_time"]),
        "mean_stops": _mean(inserted["stops"]),
        "congestion_index": float(inserted["duration"].sum() / free_flow)
        if free_flow > 0
        else math.nan,
        "backlog": counts["vehicles_loaded"] - counts["vehicles_arrived"],
        "teleports": int(teleports),
        "collisions": int(collisions),
        **_mode_counts(bicycles, "bicycles"),
        "mean_delay_bicycle_s": _mean(bicycles["time_loss"] + bicycles["depart_delay"]),
        "pedestrians_departed": int(len(walkers)),
        "pedestrians_arrived": int(len(finished)),
        "mean_time_loss_pedestrian_s": _mean(finished["time_loss"]),
        "mean_waiting_pedestrian_s": _mean(walkers["waiting_time"]),
    }
    return {name: kpis[name] for name in KPI_COLUMNS}


def _walkers(walks: pd.DataFrame | None, vehicles: pd.DataFrame) -> pd.DataFrame:
    """Return ``read_trips``' walkers with the inserted vehicles of class pedestrian added.

    Those are walkers SUMO moves as vehicles, as older scenarios have them.
    """
    moved = vehicles[vehicles["depart"].notna()]
    parts = [moved.assign(finished=moved["arrival"].notna())[_WALK_COLUMNS]]
    if walks is not None and len(walks):
        parts = [walks[_WALK_COLUMNS], *(parts if len(moved) else [])]
    return pd.concat(parts, ignore_index=True)


def _mode_counts(vehicles: pd.DataFrame, prefix: str) -> dict[str, int]:
    """Return ``<prefix>_loaded``, ``_inserted``, ``_not_inserted`` and ``_arrived`` of vehicles."""
    inserted = int(vehicles["depart"].notna().sum())
    return {
        f"{prefix}_loaded": int(len(vehicles)),
        f"{prefix}_inserted": inserted,
        f"{prefix}_not_inserted": int(len(vehicles)) - inserted,
        f"{prefix}_arrived": int(vehicles["arrival"].notna().sum()),
    }


def _mean(values: pd.Series) -> float:
    return float(values.mean()) if len(values) else math.nan


def read_teleports(statistics_path: Path) -> int:
    """Read the teleports of stuck vehicles (jam, yield, wrong lane) from ``--statistic-output``.

    Its ``total`` also counts every collision, teleported or not; those are ``read_collisions``'.
    """
    for attrs in _iter_elements(statistics_path, "teleports"):
        return sum(int(attrs.get(reason, 0)) for reason in ("jam", "yield", "wrongLane"))
    return 0


def read_collisions(collision_path: Path, *, exclude: Collection[str] = ()) -> int:
    """Count the collisions in SUMO's ``--collision-output``.

    Of vehicles and persons, whatever SUMO then did; those of a vehicle of ``exclude`` (the
    emergency vehicles, reported apart) left out.
    """
    return sum(
        1
        for a in _iter_elements(collision_path, "collision")
        if a.get("collider") not in exclude and a.get("victim") not in exclude
    )


def collisions_of(collision_path: Path, vehicles: Collection[str]) -> dict[str, int]:
    """Return, for each of ``vehicles``, the collisions in ``--collision-output`` it was in."""
    counts = dict.fromkeys(vehicles, 0)
    for a in _iter_elements(collision_path, "collision"):
        for party in {a.get("collider"), a.get("victim")}:
            if party in counts:
                counts[party] += 1
    return counts


def level_of_service(delay_s: float) -> str:
    """Return the HCM level of service (A-F) of a signalized intersection from its delay (s/veh).

    The same bounds serve an approach.
    """
    if not math.isfinite(delay_s):
        return ""
    for letter, bound in HCM_LOS_BOUNDS:
        if delay_s <= bound:
            return letter
    return "F"


def approach_table(edgedata_path: Path, network: Network) -> pd.DataFrame:
    """Return the mean delay per approach of every signal, with HCM level of service.

    An approach's delay is the time loss accumulated on its edges (``Approach.edges``, up to
    150 m upstream) divided by the vehicles that left its stop-line edge.

    Columns: ``tls_id``, ``approach`` (edge id), ``vehicles``, ``mean_delay_s``, ``los``,
    ``intersection_delay_s`` and ``intersection_los`` (vehicle-weighted over the approaches).
    """
    edges: dict[str, tuple[float, float]] = {}
    for attrs in _iter_elements(edgedata_path, "edge"):
        loss, left = edges.get(attrs["id"], (0.0, 0.0))
        edges[attrs["id"]] = (
            loss + float(attrs.get("timeLoss", 0.0)),
            left + float(attrs.get("left", 0.0)),
        )
    rows = []
    for intersection in network.intersections.values():
        for approach in intersection.approaches:
            loss = sum(edges.get(e, (0.0, 0.0))[0] for e in approach.edges)
            vehicles = edges.get(approach.edge, (0.0, 0.0))[1]
            rows.append(
                (
                    intersection.tls_id,
                    approach.edge,
                    int(vehicles),
                    loss,
                    loss / vehicles if vehicles else math.nan,
                )
            )
    table = pd.DataFrame(rows, columns=["tls_id", "approach", "vehicles", "_loss", "mean_delay_s"])
    table["los"] = table["mean_delay_s"].map(level_of_service)
    totals = table.groupby("tls_id")[["_loss", "vehicles"]].sum()
    per_tls = (totals["_loss"] / totals["vehicles"].where(totals["vehicles"] > 0)).rename(
        "intersection_delay_s"
    )
    table = table.join(per_tls, on="tls_id").drop(columns="_loss")
    table["intersection_los"] = table["intersection_delay_s"].map(level_of_service)
    return table


def time_series(summary_path: Path, *, begin: float, bin_s: float = 300.0) -> pd.DataFrame:
    """Return the network state in bins of ``bin_s`` seconds from SUMO's ``--summary-output``.

    Columns: ``time_s`` (bin start), ``vehicles_running`` (mean vehicles in the network),
    ``mean_speed_m_s`` (vehicle-weighted), ``queue_veh`` (mean halting vehicles, speed < 0.1 m/s),
    ``waiting_to_insert`` (mean vehicles due but not yet inserted).
    """
    rows = [
        (
            float(a["time"]),
            float(a["running"]),
            float(a["meanSpeed"]),
            float(a["halting"]),
            float(a["waiting"]),
        )
        for a in _iter_elements(summary_path, "step")
    ]
    steps = pd.DataFrame(rows, columns=["time", "running", "speed", "halting", "waiting"])
    steps["time_s"] = begin + ((steps["time"] - begin) // bin_s) * bin_s
    steps["speed_x_running"] = steps["speed"].clip(lower=0) * steps["running"]
    grouped = steps.groupby("time_s")
    series = pd.DataFrame(
        {
            "vehicles_running": grouped["running"].mean(),
            "mean_speed_m_s": grouped["speed_x_running"].sum()
            / grouped["running"].sum().where(lambda s: s > 0),
            "queue_veh": grouped["halting"].mean(),
            "waiting_to_insert": grouped["waiting"].mean(),
        }
    ).reset_index()
    return series
