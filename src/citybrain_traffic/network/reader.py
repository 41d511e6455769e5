"""Read a SUMO ``.net.xml`` into intersections: programs, controlled links, approaches, lanes."""

from __future__ import annotations

import gzip
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path
from xml.sax import SAXParseException

from ..errors import InputError
from .model import APPROACH_DISTANCE_M, Approach, Intersection, Lane, Link, Network, lane_edge
from .phases import Phase, admissible, mark_pedestrian_clearances, phase_kind


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
            f"{path} is not well-formed XML: line {exc.getLineNumber()}, "
            f"column {exc.getColumnNumber()}: {exc.getMessage()}"
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


def _read_phases(program) -> tuple[tuple[Phase, ...], list[str]]:
    """Read a network program's phases, admissible as they are, and notes on what was read.

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
            "the program has no yellow: its own change intervals (all-red, or none) "
            "are the clearances kept"
        )
    return tuple(phases), notes


def _crossing_links(path: Path) -> dict[str, frozenset[int]]:
    """Find the link indices of each signal's pedestrian crossings.

    They are the connections from a walking area, which sumolib reads only with every internal
    lane.
    """
    found: dict[str, set[int]] = {}
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        for _, elem in ET.iterparse(fh):
            tls = elem.get("tl")
            if elem.tag == "connection" and tls and elem.get("from", "").startswith(":"):
                found.setdefault(tls, set()).add(int(elem.get("linkIndex", -1)))
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
    """List the lane and the lanes feeding it, breadth-first, until APPROACH_DISTANCE_M upstream.

    The search stops at connections controlled by another signal: vehicles there queue for that
    one.
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
    """Tell whether traffic on this connection queues for the signal downstream of it.

    Not when another signal controls the connection (the queue belongs there), and not for a
    turnaround (vehicles on the opposite carriageway are leaving, not approaching).
    """
    return not conn.getTLSID() and conn.getDirection() != "t"
