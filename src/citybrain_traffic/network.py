"""Read a SUMO network into intersections: signal programs, controlled links, approaches and lanes."""

from __future__ import annotations

import gzip
import xml.etree.ElementTree as ET
from xml.sax import SAXParseException
from dataclasses import dataclass, replace
from pathlib import Path

from .errors import InputError

#: How far upstream of a stop line an approach is measured (m). Real-city nets put lanes shorter
#: than a car in front of signals; measuring only the last lane misses the queue behind it.
APPROACH_DISTANCE_M = 150.0

#: Minimum green used when the network gives none (s); the usual floor for a vehicle phase.
DEFAULT_MIN_GREEN_S = 5.0

GREEN_CHARS = frozenset("Gg")
#: Signal states that belong to a change interval (yellow, red-yellow).
TRANSITION_CHARS = frozenset("yYu")


@dataclass(frozen=True)
class Phase:
    """One phase of a signal program: its state string and durations (s).

    ``clearance`` marks a pedestrian clearance: a green phase that only takes the green away from
    crossings of the green before it (netconvert's 5 s "walk clearance"). It belongs to the change
    interval of that green, and keeps its length like a yellow (see ``mark_pedestrian_clearances``).
    """

    state: str
    duration: float
    min_dur: float
    max_dur: float
    clearance: bool = False

    @property
    def kind(self) -> str:
        """``"green"`` (some movement may go, no change interval), else ``"yellow"``, ``"red"``
        or ``"clearance"`` (pedestrian clearance, vehicles still green).
        """
        return "clearance" if self.clearance else phase_kind(self.state)

    @property
    def is_green(self) -> bool:
        return self.kind == "green"

    @property
    def min_green(self) -> float:
        """Shortest allowed green (s): the program's minDur where it sets a range, else
        ``DEFAULT_MIN_GREEN_S`` (or the phase's own duration if that is shorter).
        """
        if self.min_dur < self.max_dur:
            return self.min_dur
        return min(DEFAULT_MIN_GREEN_S, self.duration)


def phase_kind(state: str) -> str:
    """Classify a signal state string as ``"green"``, ``"yellow"`` or ``"red"`` (all-red)."""
    chars = set(state)
    if chars & TRANSITION_CHARS:
        return "yellow"
    if chars & GREEN_CHARS:
        return "green"
    return "red"


def mark_pedestrian_clearances(
    phases: tuple[Phase, ...], crossings: frozenset[int]
) -> tuple[Phase, ...]:
    """``phases`` with each pedestrian clearance marked (``Phase.clearance``).

    A pedestrian clearance follows a green phase and shows the same greens less some crossings'
    (link indices ``crossings``), nothing new. Pedestrians still on the crossing need that time
    before a conflicting vehicle gets green, so it is part of the change interval, not a green to
    serve or shorten.
    """
    if not crossings:
        return phases
    out = list(phases)
    for i, phase in enumerate(phases):
        before = phases[i - 1]
        if (
            phase_kind(phase.state) != "green"
            or phase_kind(before.state) != "green"
            or i == 0
            and len(phases) < 2
        ):
            continue
        now_green, was_green = _green_links(phase.state), _green_links(before.state)
        if now_green < was_green and was_green - now_green <= crossings:
            out[i] = replace(phase, clearance=True)
    return tuple(out)


def _green_links(state: str) -> frozenset[int]:
    return frozenset(k for k, c in enumerate(state) if c in GREEN_CHARS)


def next_green(phases: tuple[Phase, ...], index: int) -> int:
    """Index of the green phase that follows ``index`` in program order (``index`` if none)."""
    n = len(phases)
    for step in range(1, n + 1):
        candidate = (index + step) % n
        if phases[candidate].is_green:
            return candidate
    return index


def phases_between(phases: tuple[Phase, ...], src: int, dst: int) -> list[Phase]:
    """The phases strictly between ``src`` and ``dst`` in program order (a change interval)."""
    n = len(phases)
    out = []
    i = (src + 1) % n
    while i != dst and i != src:
        out.append(phases[i])
        i = (i + 1) % n
    return out


def clearance_times(phases: tuple[Phase, ...]) -> list[float]:
    """Length (s) of the change interval (yellow + all-red) after each green phase."""
    return [
        sum(p.duration for p in phases_between(phases, i, next_green(phases, i)))
        for i, phase in enumerate(phases)
        if phase.is_green
    ]


@dataclass(frozen=True)
class Link:
    """A signal-controlled connection: link index in the state string, from lane to lane.

    ``via_lane`` is the first internal lane crossing the junction (every vehicle on it makes
    exactly this movement), empty when the network has none.
    """

    index: int
    in_lane: str
    out_lane: str
    via_lane: str = ""

    @property
    def in_edge(self) -> str:
        return lane_edge(self.in_lane)

    @property
    def out_edge(self) -> str:
        return lane_edge(self.out_lane)

    @property
    def movement(self) -> str:
        """The movement this link serves, named ``<incoming edge>><outgoing edge>``."""
        return f"{self.in_edge}>{self.out_edge}"


@dataclass(frozen=True)
class Approach:
    """An incoming road of an intersection, measured over a distance upstream of the stop line.

    ``edges`` starts with the edge at the stop line and continues upstream through edges whose
    every vehicle must continue onto it, up to ``APPROACH_DISTANCE_M``.
    """

    edge: str
    edges: tuple[str, ...]
    length_m: float


@dataclass(frozen=True)
class Intersection:
    """A signalized intersection (one SUMO traffic-light logic)."""

    tls_id: str
    program_id: str
    phases: tuple[Phase, ...]
    links: tuple[Link, ...]
    approaches: tuple[Approach, ...]
    #: For each controlled incoming lane: the lanes over which its queue is measured
    #: (the lane itself and lanes feeding it, up to ``APPROACH_DISTANCE_M`` upstream).
    upstream_lanes: dict[str, tuple[str, ...]]
    #: What was read differently from the file's text, once per signal (``<tls>: <what>``).
    notes: tuple[str, ...] = ()
    #: Link indices of the signal's pedestrian crossings (not in ``links``, which are vehicles').
    crossings: frozenset[int] = frozenset()
    #: SUMO's type of the program (``static``, ``actuated``, ``delay_based``, ``NEMA``, ...).
    program_type: str = "static"

    @property
    def cycle_s(self) -> float:
        return sum(p.duration for p in self.phases)

    @property
    def in_lanes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(link.in_lane for link in self.links))


@dataclass(frozen=True)
class Lane:
    """A lane's geometry: length (m) and speed limit (m/s)."""

    id: str
    edge: str
    length_m: float
    speed_m_s: float


@dataclass(frozen=True)
class Network:
    """The parts of a SUMO network the engine uses."""

    path: Path
    intersections: dict[str, Intersection]
    lanes: dict[str, Lane]

    @property
    def notes(self) -> list[str]:
        """Every signal's notes on how its program was read (see ``Intersection.notes``)."""
        return [note for intersection in self.intersections.values() for note in intersection.notes]


def lane_edge(lane_id: str) -> str:
    """The edge a lane belongs to (SUMO lane ids are ``<edge>_<index>``)."""
    return lane_id.rsplit("_", 1)[0]


def read_network(net_file: str | Path) -> Network:
    """Read intersections, programs, links, approaches and lanes from a SUMO ``.net.xml``.

    Parameters
    ----------
    net_file
        Path to a SUMO network (``.net.xml`` or ``.net.xml.gz``).

    Raises
    ------
    InputError
        When the file is missing, is not a SUMO network, or has no traffic lights.
    """
    import sumolib

    path = Path(net_file)
    if not path.is_file():
        raise InputError(f"network file not found: {path}")
    _check_xml_root(path, expected="net")
    try:
        net = sumolib.net.readNet(str(path), withPrograms=True, withInternal=False)
    except SAXParseException as exc:
        raise InputError(
            f"{path} is not well-formed XML: line {exc.getLineNumber()}, column {exc.getColumnNumber()}: "
            f"{exc.getMessage()}"
        ) from exc
    except Exception as exc:  # sumolib raises bare exceptions on bad content
        raise InputError(f"cannot read network {path}: {exc}") from exc

    lanes = {
        lane.getID(): Lane(lane.getID(), edge.getID(), lane.getLength(), lane.getSpeed())
        for edge in net.getEdges()
        for lane in edge.getLanes()
    }
    intersections = {}
    crossings = _crossing_links(path)
    for tls in net.getTrafficLights():
        intersection = _read_intersection(net, tls, crossings.get(tls.getID(), frozenset()))
        if intersection is not None:
            intersections[intersection.tls_id] = intersection
    if not intersections:
        raise InputError(f"network {path} has no traffic lights: there is nothing to control")
    return Network(path=path, intersections=intersections, lanes=lanes)


def _check_xml_root(path: Path, *, expected: str) -> None:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            for _, elem in ET.iterparse(fh, events=("start",)):
                if elem.tag != expected:
                    raise InputError(
                        f"{path} is not a SUMO {expected} file (root element <{elem.tag}>)"
                    )
                return
    except ET.ParseError as exc:
        raise InputError(f"{path} is not well-formed XML: {exc}") from exc
    except (OSError, EOFError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from exc


def admissible(phase: Phase) -> Phase:
    """A program's phase as the reference it is by definition: a green's minDur/maxDur range
    widened to include its duration, a change interval at its duration alone.
    """
    if phase_kind(phase.state) != "green":
        return replace(phase, min_dur=phase.duration, max_dur=phase.duration)
    return replace(
        phase,
        min_dur=min(phase.min_dur, phase.duration),
        max_dur=max(phase.max_dur, phase.duration),
    )


def _read_phases(program) -> tuple[tuple[Phase, ...], list[str]]:
    """A network program's phases, admissible as they are, and notes on what was read into them.

    The program is the reference every plan is checked against, so it passes its own checks by
    definition. SUMO ignores minDur/maxDur on static programs, and real files contradict them (a
    78 s green with maxDur 50, a 6 s green with minDur 7): such a range is widened to include the
    duration. A yellow or all-red with a range of its own (possible in an actuated program) is read
    at its duration alone: that is the clearance every plan must keep in full.
    """
    phases, widened = [], []
    for k, p in enumerate(program.getPhases()):
        duration = float(p.duration)
        low = float(p.minDur) if p.minDur not in (None, -1) else duration
        high = float(p.maxDur) if p.maxDur not in (None, -1) else duration
        phase = admissible(Phase(state=p.state, duration=duration, min_dur=low, max_dur=high))
        if phase.is_green and (phase.min_dur, phase.max_dur) != (low, high):
            widened.append(
                f"phase {k} {duration:g} s outside its {low:g}-{high:g} s range, read as "
                f"{phase.min_dur:g}-{phase.max_dur:g} s"
            )
        phases.append(phase)
    notes = (
        [f"the network's program widened to its own durations: {'; '.join(widened)}"]
        if widened
        else []
    )
    if not any(phase_kind(p.state) == "yellow" for p in phases):
        notes.append(
            "the program has no yellow: its own change intervals (all-red, or none) are the clearances kept"
        )
    return tuple(phases), notes


def _crossing_links(path: Path) -> dict[str, frozenset[int]]:
    """Per signal, the link indices of its pedestrian crossings (connections from a walking area;
    sumolib reads them only with every internal lane).
    """
    found: dict[str, set[int]] = {}
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        for _, elem in ET.iterparse(fh):
            if elem.tag == "connection" and elem.get("tl") and elem.get("from", "").startswith(":"):
                found.setdefault(elem.get("tl"), set()).add(int(elem.get("linkIndex", -1)))
            elem.clear()
    return {tls: frozenset(indices) for tls, indices in found.items()}


def _read_intersection(net, tls, crossings: frozenset[int]) -> Intersection | None:
    programs = tls.getPrograms()
    if not programs:
        return None
    program_id = sorted(programs)[0]
    connections = tls.getConnections()
    phases, notes = _read_phases(programs[program_id])
    phases = tuple(
        replace(p, min_dur=p.duration, max_dur=p.duration) if p.clearance else p
        for p in mark_pedestrian_clearances(phases, crossings)
    )
    links = tuple(
        sorted(
            {
                Link(
                    index=int(idx),
                    in_lane=in_lane.getID(),
                    out_lane=out_lane.getID(),
                    via_lane=_via_lane(in_lane, out_lane),
                )
                for in_lane, out_lane, idx in connections
            },
            key=lambda link: (link.index, link.in_lane, link.out_lane),
        )
    )
    in_lanes = dict.fromkeys(link.in_lane for link in links)
    upstream = {lane_id: _upstream_lanes(net.getLane(lane_id)) for lane_id in in_lanes}
    in_edges = dict.fromkeys(lane_edge(lane_id) for lane_id in in_lanes)
    approaches = tuple(_approach(net.getEdge(edge_id)) for edge_id in in_edges)
    return Intersection(
        tls_id=tls.getID(),
        program_id=program_id,
        phases=phases,
        links=links,
        approaches=approaches,
        upstream_lanes=upstream,
        notes=tuple(f"{tls.getID()}: {note}" for note in notes),
        crossings=crossings,
        program_type=programs[program_id].getType() or "static",
    )


def _via_lane(in_lane, out_lane) -> str:
    for conn in in_lane.getOutgoing():
        if conn.getToLane().getID() == out_lane.getID():
            return conn.getViaLaneID() or ""
    return ""


def _upstream_lanes(lane) -> tuple[str, ...]:
    """The lane and the lanes feeding it, breadth-first, until APPROACH_DISTANCE_M upstream.

    The search stops at connections controlled by another signal: vehicles there queue for that one.
    """
    found = {lane.getID(): 0.0}
    frontier = [(lane, lane.getLength())]
    while frontier:
        current, reach = frontier.pop(0)
        if reach >= APPROACH_DISTANCE_M:
            continue
        for feeder in _feeding_lanes(current):
            if feeder.getID() in found:
                continue
            found[feeder.getID()] = reach
            frontier.append((feeder, reach + feeder.getLength()))
    return tuple(found)


def _feeding_lanes(lane):
    lane_id = lane.getID()
    for connections in lane.getEdge().getIncoming().values():
        for conn in connections:
            if conn.getToLane().getID() == lane_id and _is_plain_feed(conn):
                yield conn.getFromLane()


def _approach(edge) -> Approach:
    edges = [edge.getID()]
    length = edge.getLength()
    current = edge
    while length < APPROACH_DISTANCE_M:
        feeders = [
            up
            for up in current.getIncoming()
            if set(up.getOutgoing()) == {current}
            and all(_is_plain_feed(conn) for conn in up.getOutgoing()[current])
        ]
        if len(feeders) != 1 or feeders[0].getID() in edges:
            break
        current = feeders[0]
        edges.append(current.getID())
        length += current.getLength()
    return Approach(edge=edge.getID(), edges=tuple(edges), length_m=length)


def _is_plain_feed(conn) -> bool:
    """Whether traffic on this connection queues for the signal downstream of it.

    Not when another signal controls the connection (the queue belongs there), and not for a
    turnaround (vehicles on the opposite carriageway are leaving, not approaching).
    """
    return not conn.getTLSID() and conn.getDirection() != "t"
