"""Name every signal link as an engineer does (NBL, EBT, PED-N) from the network's geometry."""

from __future__ import annotations

import gzip
import math
import xml.etree.ElementTree as ET
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import InputError
from .compass import (
    SIDES,
    angle_diff,
    bearing,
    compass_labels,
    label_order,
    mean_angle,
    mean_bearing,
    turn_class,
)
from .model import Intersection, Network, lane_edge


@dataclass(frozen=True)
class NamedMovement:
    """One movement of a signal, named by approach and turn (``"NBL"``) or crossing (``"PED-N"``).

    ``key`` is ``Link.movement`` (``"<in edge>><out edge>"``) for vehicles and the crossing's
    edge id for pedestrians; ``links`` the link indices (state-string positions) that serve it.
    ``turn`` is ``L``, ``T``, ``R``, ``U`` or ``X`` (a crossing). ``bearing_deg`` is the
    approach's direction of travel at the stop line (compass degrees, 0 = north, clockwise), for a
    crossing the direction from the junction's centre to it; ``angle_deg`` the signed turn angle
    (degrees, left positive; 0 for a crossing).
    """

    name: str
    key: str
    approach: str
    turn: str
    links: tuple[int, ...]
    in_lanes: tuple[str, ...]
    bearing_deg: float
    angle_deg: float

    @property
    def is_crossing(self) -> bool:
        """Whether this is a pedestrian crossing."""
        return self.turn == "X"


@dataclass(frozen=True)
class ApproachInfo:
    """An approach of a signal: its compass label, incoming edges, lanes, speed and priority.

    ``priority`` is the highest SUMO edge priority among its edges (netconvert's road rank),
    ``lanes`` the number of its lanes with a signal link, ``speed_m_s`` their highest speed limit.
    """

    label: str
    edges: tuple[str, ...]
    bearing_deg: float
    lanes: int
    speed_m_s: float
    priority: int


@dataclass(frozen=True)
class SignalMovements:
    """Every movement of one signal with its name, and the signal's approaches."""

    tls_id: str
    movements: tuple[NamedMovement, ...]
    approaches: tuple[ApproachInfo, ...]

    @property
    def by_key(self) -> dict[str, str]:
        """Name per movement key (``Link.movement``, or a crossing's edge id)."""
        return {m.key: m.name for m in self.movements}

    def names_of(self, indices) -> list[str]:
        """Names of the movements with a link among ``indices``, in the signal's order."""
        wanted = set(indices)
        return [m.name for m in self.movements if wanted.intersection(m.links)]


def name_movements(network: Network) -> dict[str, SignalMovements]:
    """Name every movement of every signal of ``network`` from its geometry.

    The approach is the direction of travel of the incoming edge's lanes at the stop line (the
    bearing of their last shape segment; SUMO's y axis points north): NB, EB, SB, WB. Approaches
    are matched to distinct labels with the least total squared deviation, so two legs in one
    compass sector on a skewed junction get different labels; a leg that no label within reach
    (``LABEL_REACH``) fits shares the label of an edge within ``SAME_APPROACH_DEG`` of it (a slip
    lane), and when legs remain (five or more) the 8-point compass (NE, SE, SW, NW) is used.

    The turn is the signed angle between the in-lane's last segment and the out-lane's first,
    classed by ``THROUGH_MAX_DEG`` and ``U_TURN_MIN_DEG``. When two movements of one approach
    get the same turn, a second through becomes a bear left or right if that turn is free, and
    otherwise the sharper turns are numbered (``NBL2``), so every movement has its own name.
    A pedestrian crossing is ``PED-`` and the side of the junction it lies on (``PED-N``).

    Computed once per network file (cached on its path, size and modification time).

    Raises
    ------
    InputError
        When the network file cannot be read.
    """
    path = Path(network.path)
    try:
        stat = path.stat()
    except OSError as exc:
        raise InputError(f"cannot read network {path}: {exc}") from exc
    key = (
        str(path.resolve()),
        stat.st_mtime_ns,
        stat.st_size,
        tuple((tls, i.links, i.crossings) for tls, i in network.intersections.items()),
    )
    if key not in _CACHE:
        geometry = _Geometry.read(path, network)
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = {
            tls: _signal_movements(intersection, geometry)
            for tls, intersection in network.intersections.items()
        }
    return dict(_CACHE[key])


#: Named movements of the networks read last, by file identity and links (oldest first).
_CACHE: dict[tuple, dict[str, SignalMovements]] = {}
_CACHE_SIZE = 4


@dataclass
class _Geometry:
    """What naming needs from the net file: shapes, edges' ends and ranks, crossings."""

    shapes: dict[str, list[tuple[float, float]]]
    speeds: dict[str, float]
    edges: dict[str, tuple[str, str, int]]  # edge -> (from node, to node, priority)
    nodes: dict[str, tuple[float, float]]
    crossings: dict[tuple[str, int], str]  # (tls, link index) -> crossing edge

    @classmethod
    def read(cls, path: Path, network: Network) -> _Geometry:
        wanted = {
            lane
            for i in network.intersections.values()
            for link in i.links
            for lane in (link.in_lane, link.out_lane)
        }
        geo = cls({}, {}, {}, {}, {})
        opener = gzip.open if path.suffix == ".gz" else open
        edge = ""
        try:
            with opener(path, "rb") as fh:
                for event, elem in ET.iterparse(fh, events=("start", "end")):
                    if event == "start":
                        if elem.tag == "edge":
                            edge = elem.get("id", "")
                        continue
                    geo._take(elem, edge, wanted)
                    if elem.tag != "lane":
                        elem.clear()
        except (ET.ParseError, OSError, EOFError) as exc:
            raise InputError(f"cannot read the geometry of {path}: {exc}") from exc
        return geo

    def _take(self, elem, edge: str, wanted: set[str]) -> None:
        if elem.tag == "lane":
            lane = elem.get("id", "")
            if lane in wanted or (edge.startswith(":") and "_c" in edge):
                self.shapes[lane] = _points(elem.get("shape", ""))
                self.speeds[lane] = float(elem.get("speed", 0) or 0)
        elif elem.tag == "edge" and not elem.get("function"):
            self.edges[elem.get("id", "")] = (
                elem.get("from", ""),
                elem.get("to", ""),
                int(float(elem.get("priority", -1) or -1)),
            )
        elif elem.tag == "junction" and elem.get("x") is not None:
            self.nodes[elem.get("id", "")] = (float(elem.get("x", 0)), float(elem.get("y", 0)))
        elif elem.tag == "connection" and elem.get("tl") and elem.get("from", "").startswith(":"):
            self.crossings[elem.get("tl", ""), int(elem.get("linkIndex", -1))] = elem.get("to", "")

    def heading(self, lane: str, *, at_end: bool) -> float:
        """Compass bearing (degrees) of a lane's last (``at_end``) or first segment."""
        points = self.shapes.get(lane, [])
        pairs = list(zip(points, points[1:]))
        for (x0, y0), (x1, y1) in reversed(pairs) if at_end else pairs:
            if math.hypot(x1 - x0, y1 - y0) > 1e-6:
                return bearing(x1 - x0, y1 - y0)
        start, end, _ = self.edges.get(lane_edge(lane), ("", "", 0))
        if start in self.nodes and end in self.nodes:  # a degenerate shape: the edge's chord
            (x0, y0), (x1, y1) = self.nodes[start], self.nodes[end]
            return bearing(x1 - x0, y1 - y0)
        raise InputError(f"lane {lane!r} has no shape in the network to take a direction from")

    def crossing_point(self, crossing: str) -> tuple[float, float] | None:
        """Return the crossing's middle minus its junction's centre (m), if both are known."""
        points = self.shapes.get(f"{crossing}_0", [])
        junction = crossing[1:].rsplit("_", 1)[0]
        if not points or junction not in self.nodes:
            return None
        x, y = np.mean(np.array(points), axis=0)
        cx, cy = self.nodes[junction]
        return float(x - cx), float(y - cy)


def _points(shape: str) -> list[tuple[float, float]]:
    out = []
    for pair in shape.split():
        x, y = pair.split(",")[:2]
        out.append((float(x), float(y)))
    return out


def _signal_movements(intersection: Intersection, geo: _Geometry) -> SignalMovements:
    links_of: dict[str, list] = defaultdict(list)
    for link in intersection.links:
        links_of[link.movement].append(link)
    in_lanes: dict[str, list[str]] = defaultdict(list)
    for link in intersection.links:
        if link.in_lane not in in_lanes[link.in_edge]:
            in_lanes[link.in_edge].append(link.in_lane)
    edge_bearing = {
        edge: mean_bearing(geo.heading(lane, at_end=True) for lane in lanes)
        for edge, lanes in in_lanes.items()
    }
    labels = compass_labels(edge_bearing)
    drafts = []
    for key, links in links_of.items():
        angle = mean_angle(
            angle_diff(
                geo.heading(link.in_lane, at_end=True), geo.heading(link.out_lane, at_end=False)
            )
            for link in links
        )
        in_edge = links[0].in_edge
        turn = turn_class(angle)
        drafts.append(
            NamedMovement(
                name=labels[in_edge] + turn,
                key=key,
                approach=labels[in_edge],
                turn=turn,
                links=tuple(sorted({link.index for link in links})),
                in_lanes=tuple(dict.fromkeys(link.in_lane for link in links)),
                bearing_deg=edge_bearing[in_edge],
                angle_deg=angle,
            )
        )
    vehicles = _separate(drafts)
    return SignalMovements(
        tls_id=intersection.tls_id,
        movements=tuple(sorted(vehicles, key=lambda m: m.links)) + _crossings(intersection, geo),
        approaches=_approaches(labels, edge_bearing, in_lanes, geo),
    )


def _separate(drafts: list[NamedMovement]) -> list[NamedMovement]:
    """Make names unique within a signal where two movements of an approach share a turn.

    A second through bears left or right where that turn is free; the sharper turns are
    numbered (``L2``) in order of sharpness, ties by movement key.
    """
    groups: dict[tuple[str, str], list[NamedMovement]] = defaultdict(list)
    for m in drafts:
        groups[m.approach, m.turn].append(m)
    taken = set(groups)
    names = {m.key: (m.name, m.turn) for m in drafts}
    for (label, turn), members in sorted(groups.items()):
        rest = sorted(members, key=lambda m: (abs(m.angle_deg), m.key))[1:]
        for m in list(rest) if turn == "T" else ():
            side = "L" if m.angle_deg > 0 else "R"
            if (label, side) not in taken:
                names[m.key] = (label + side, side)
                taken.add((label, side))
                rest.remove(m)
        for k, m in enumerate(rest, start=2):
            names[m.key] = (f"{label}{turn}{k}", turn)
    return [replace(m, name=names[m.key][0], turn=names[m.key][1]) for m in drafts]


def _crossings(intersection: Intersection, geo: _Geometry) -> tuple[NamedMovement, ...]:
    """Name each crossing by the side of the junction it lies on (``PED-N``, ``PED-N2``)."""
    edges: dict[str, list[int]] = defaultdict(list)
    for index in sorted(intersection.crossings):
        edges[geo.crossings.get((intersection.tls_id, index), f"#{index}")].append(index)
    points = {edge: geo.crossing_point(edge) for edge in edges}
    bearings = {e: bearing(*p) for e, p in points.items() if p is not None and any(p)}
    sides = compass_labels(bearings, SIDES, escalate=False)
    count: dict[str, int] = defaultdict(int)
    out = []
    for edge, indices in sorted(edges.items(), key=lambda item: item[1]):
        side = sides.get(edge, f"{indices[0]}")
        count[side] += 1
        suffix = "" if count[side] == 1 else str(count[side])
        out.append(
            NamedMovement(
                name=f"PED-{side}{suffix}",
                key=edge,
                approach=side,
                turn="X",
                links=tuple(indices),
                in_lanes=(),
                bearing_deg=bearings.get(edge, math.nan),
                angle_deg=0.0,
            )
        )
    return tuple(out)


def _approaches(
    labels: dict[str, str],
    bearings: dict[str, float],
    in_lanes: dict[str, list[str]],
    geo: _Geometry,
) -> tuple[ApproachInfo, ...]:
    edges_of: dict[str, list[str]] = defaultdict(list)
    for edge, label in labels.items():
        edges_of[label].append(edge)
    return tuple(
        ApproachInfo(
            label=label,
            edges=tuple(edges),
            bearing_deg=mean_bearing(bearings[e] for e in edges),
            lanes=sum(len(in_lanes[e]) for e in edges),
            speed_m_s=max(geo.speeds.get(lane, 0.0) for e in edges for lane in in_lanes[e]),
            priority=max(geo.edges.get(e, ("", "", -1))[2] for e in edges),
        )
        for label, edges in sorted(edges_of.items(), key=lambda item: label_order(item[0]))
    )
