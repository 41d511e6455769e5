"""Emergency vehicles: where they drive, when they leave, and the SUMO file that adds them.

Each is a SUMO vehicle of class ``emergency`` with SUMO's ``bluelight`` device: vehicles on its
way within its reaction distance (``REACTION_M``) make room (a rescue lane where SUMO models
lateral positions, the sublane model; else they stop changing lanes), and junction foes brake
for it. How it drives is set as it is inserted (``SPEED_MODES``, ``LANE_CHANGE_MODE``; no vType
attribute can: the device sets its own speed mode, 7, which ignores red and right of way), and
adjusted as it drives (``harness.emergency_driver``). Two behaviours at a red signal
(``RED_MODES``):

- ``obey`` (the default, conservative): it stops at red and yellow, and yields where the
  junction says so, as everyone does (SUMO's default speed mode).
- ``cross``: it goes through red at most at ``CROSS_RED_SPEED_M_S`` (the vType's
  ``jmDriveRedSpeed``) once the red has lasted 2 s, yielding to the traffic that has green.

Random vehicles (``draw_emergency``) drive between edges of the network's interior: streets
(edges of at least ``emergency_routes.STREET_M``) an emergency vehicle may use that have a
connection in and a connection out for it (turnarounds not counted), so neither a fringe
source nor a sink. A network whose interior holds no usable pair (a single intersection: each
edge is an approach or an exit) uses the wider set: from a street with a way out to a street
with a way in. A pair is usable when a route joins them that crosses at least one signal of
the network and leaves time to arrive (``reserve_s``). Every route is the fastest at the
edges' speed limits where the lanes allow the turns (``emergency_routes.RoadGraph.route``, the
one place routes are chosen).
"""

from __future__ import annotations

import csv
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InputError
from .emergency_routes import EMERGENCY_CLASS, RoadGraph

if TYPE_CHECKING:  # the command line imports this module at start: numpy and sumolib wait
    from ..network import Network

#: The vehicle type of the emergency vehicles added to a run.
EMERGENCY_TYPE = "ctraffic_emergency"
#: Their ids: this prefix and their rank by departure.
ID_PREFIX = "ctraffic_ev."
RED_OBEY, RED_CROSS = "obey", "cross"
RED_MODES = (RED_OBEY, RED_CROSS)
#: SUMO speed mode of each ``RED_MODES`` (bits: 0-2 keep safe speed and acceleration bounds,
#: 3 respect the right of way of approaching foes, 4 brake for red): ``obey`` drives with
#: SUMO's default; ``cross`` ignores red and respects right of way (the device's own, 7,
#: ignores both).
SPEED_MODES = {RED_OBEY: 31, RED_CROSS: 15}
#: Lane change mode of an emergency vehicle: SUMO's default (1621) without lane changes to gain
#: speed or keep right.
LANE_CHANGE_MODE = 1541
#: Standing this long (s) where it may go (no red ahead, any signal with ``cross``), an
#: emergency vehicle is blocked.
BLOCKED_AFTER_S = 15.0
#: The bluelight device's reaction distance (m): vehicles this close react (SUMO's default).
REACTION_M = 25.0
#: With ``cross``: the speed (m/s) not exceeded when entering a junction on red (20 km/h, the
#: bluelight device's own speed into a rescue lane).
CROSS_RED_SPEED_M_S = 5.56
#: Most emergency vehicles in one run.
MAX_EMERGENCY = 1000
#: Time kept free at the end of the window for a random vehicle to arrive (s): at least this,
#: and at least twice its route's free-flow travel time.
END_RESERVE_S = 300.0
#: Columns of ``--emergency-file``.
FILE_COLUMNS = ("depart", "from_edge", "to_edge")


@dataclass(frozen=True)
class EmergencyVehicle:
    """One emergency vehicle: id, departure (s of simulation time), route (edge ids)."""

    id: str
    depart: float
    route: tuple[str, ...]

    @property
    def from_edge(self) -> str:
        """The edge it leaves from."""
        return self.route[0]

    @property
    def to_edge(self) -> str:
        """The edge it drives to."""
        return self.route[-1]


def reserve_s(free_flow_s: float) -> float:
    """Return the time kept free at the end of the window for a route of this free-flow time."""
    return max(END_RESERVE_S, 2.0 * free_flow_s)


def draw_emergency(
    graph: RoadGraph, count: int, *, seed: int, begin: float, end: float
) -> tuple[EmergencyVehicle, ...]:
    """Draw ``count`` emergency vehicles from ``seed`` (see the module docstring).

    Each vehicle ``i`` departs at a whole second drawn uniformly in the ``i``-th of ``count``
    equal slices of ``[begin, end - reserve)``, so that departures spread over the window.

    Raises
    ------
    InputError
        When no pair of edges is usable.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    drawn: list[tuple[float, int, tuple[str, ...]]] = []
    tiers = [(graph.interior, set(graph.interior)), (graph.with_exit, set(graph.with_entry))]
    origins = list(tiers[0][0])
    while len(drawn) < count:
        if not origins:
            tiers.pop(0)
            if not tiers:
                raise InputError(
                    f"no two edges of the network are joined by a route for an emergency vehicle "
                    f"that crosses a signal and arrives within the window {begin:g}-{end:g} s"
                )
            origins = list(tiers[0][0])
            continue
        origin = origins[int(rng.integers(len(origins)))]
        labels = graph.reachable(origin)
        targets = [
            edge
            for edge, label in sorted(labels.items())
            if edge != origin
            and edge in tiers[0][1]
            and label.signals > 0
            and end - reserve_s(label.time_s) > begin
        ]
        if not targets:
            origins.remove(origin)
            continue
        target = targets[int(rng.integers(len(targets)))]
        latest = end - reserve_s(labels[target].time_s)
        slot = (len(drawn) + rng.random()) / count
        depart = float(math.floor(begin + slot * (latest - begin)))
        route = graph.route(origin, target)
        assert route is not None  # reachable
        drawn.append((depart, len(drawn), route))
    return _numbered(drawn)


def _numbered(drawn: list[tuple[float, int, tuple[str, ...]]]) -> tuple[EmergencyVehicle, ...]:
    """Return the vehicles in order of departure (then of drawing), numbered from 0."""
    return tuple(
        EmergencyVehicle(f"{ID_PREFIX}{k}", depart, route)
        for k, (depart, _, route) in enumerate(sorted(drawn))
    )


def read_emergency_file(
    path: Path, graph: RoadGraph, *, begin: float, end: float
) -> tuple[EmergencyVehicle, ...]:
    """Read ``--emergency-file``: a CSV with columns ``depart,from_edge,to_edge``.

    ``depart`` in s of simulation time, inside the window ``[begin, end)``.

    Raises
    ------
    InputError
        Naming the file and its line: a missing file or column, an unexpected column, a missing
        field, a depart that is no finite number or is negative or outside the window, an
        unknown edge or one no emergency vehicle may use, two edges no route joins, no row, or
        more than ``MAX_EMERGENCY`` rows.
    """
    if not path.is_file():
        raise InputError(f"--emergency-file: file not found: {path}")
    try:
        with open(path, newline="") as fh:
            reader = csv.DictReader(fh, skipinitialspace=True)
            header = [name.strip() for name in reader.fieldnames or []]
            missing = [c for c in FILE_COLUMNS if c not in header]
            extra = [c for c in header if c not in FILE_COLUMNS]
            if missing or extra:
                problem = (
                    f"missing column(s) {', '.join(missing)}"
                    if missing
                    else f"unexpected column(s) {', '.join(extra)}"
                )
                raise InputError(f"{path}: {problem}; expected the header {','.join(FILE_COLUMNS)}")
            reader.fieldnames = header
            drawn: list[tuple[float, tuple[str, ...], int]] = []
            for row in reader:
                where = f"{path} line {reader.line_num}"
                drawn.append((*_file_row(row, where, graph, begin, end), len(drawn)))
                if len(drawn) > MAX_EMERGENCY:
                    raise InputError(f"{path}: more than {MAX_EMERGENCY} emergency vehicles")
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path} is not a readable CSV file: {exc}") from None
    if not drawn:
        raise InputError(f"{path} holds no emergency vehicle (a header and no row)")
    return _numbered([(depart, k, route) for depart, route, k in drawn])


def _file_row(
    row: dict, where: str, graph: RoadGraph, begin: float, end: float
) -> tuple[float, tuple[str, ...]]:
    """Return one row's departure and route, or raise its problem."""
    if None in row:
        raise InputError(f"{where}: more fields than the header's {len(FILE_COLUMNS)}")
    fields = {c: (row.get(c) or "").strip() for c in FILE_COLUMNS}
    for column, text in fields.items():
        if not text:
            raise InputError(f"{where}: {column} is missing")
    try:
        depart = float(fields["depart"])
    except ValueError:
        raise InputError(f"{where}: depart {fields['depart']!r} is not a number") from None
    if not math.isfinite(depart):
        raise InputError(f"{where}: depart {fields['depart']!r} is not a finite number")
    if depart < 0:
        raise InputError(f"{where}: depart {depart:g} s is negative")
    if not begin <= depart < end:
        raise InputError(f"{where}: depart {depart:g} s is outside the window {begin:g}-{end:g} s")
    for column in ("from_edge", "to_edge"):
        edge = fields[column]
        if not graph.known(edge):
            raise InputError(f"{where}: {column} {edge!r} is no edge of the network")
        if edge not in graph.edges:
            raise InputError(f"{where}: {column} {edge!r} allows no emergency vehicle")
    route = graph.route(fields["from_edge"], fields["to_edge"])
    if route is None:
        raise InputError(
            f"{where}: no route for an emergency vehicle from {fields['from_edge']!r} "
            f"to {fields['to_edge']!r}"
        )
    return depart, route


def plan_emergency(
    network: Network,
    seeds: list[int],
    *,
    begin: float,
    end: float,
    count: int = 0,
    file: Path | None = None,
) -> dict[int, tuple[EmergencyVehicle, ...]]:
    """Return each seed's emergency vehicles: ``count`` drawn from the seed, or the file's.

    Empty when neither is given (``count`` 0 and no file).
    """
    if file is not None and count:
        raise InputError("give --emergency or --emergency-file, not both")
    if not 0 <= count <= MAX_EMERGENCY:
        raise InputError(f"--emergency must be between 0 and {MAX_EMERGENCY}, got {count}")
    if file is None and count == 0:
        return {}
    graph = RoadGraph(network)
    if file is not None:
        fleet = read_emergency_file(file, graph, begin=begin, end=end)
        return dict.fromkeys(seeds, fleet)
    return {seed: draw_emergency(graph, count, seed=seed, begin=begin, end=end) for seed in seeds}


def emergency_routes_xml(vehicles: tuple[EmergencyVehicle, ...], *, red: str) -> str:
    """Return the SUMO file adding ``vehicles``: their type and each vehicle with its route.

    ``red`` is one of ``RED_MODES``; with ``cross`` the type limits the speed into a red
    junction (``jmDriveRedSpeed``).
    """
    if red not in RED_MODES:
        raise InputError(f"--emergency-red must be one of {', '.join(RED_MODES)}, got {red!r}")
    root = ET.Element("routes")
    vtype = ET.SubElement(
        root, "vType", id=EMERGENCY_TYPE, vClass=EMERGENCY_CLASS, guiShape="emergency"
    )
    if red == RED_CROSS:
        vtype.set("jmDriveRedSpeed", f"{CROSS_RED_SPEED_M_S:g}")
    ET.SubElement(vtype, "param", key="has.bluelight.device", value="true")
    ET.SubElement(vtype, "param", key="device.bluelight.reactiondist", value=f"{REACTION_M:g}")
    for vehicle in vehicles:
        element = ET.SubElement(
            root,
            "vehicle",
            id=vehicle.id,
            type=EMERGENCY_TYPE,
            depart=f"{vehicle.depart:.2f}",
            departLane="best",
            departSpeed="max",
        )
        ET.SubElement(element, "route", edges=" ".join(vehicle.route))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode") + "\n"
