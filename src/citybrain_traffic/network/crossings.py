"""Pedestrian crossings of signals: their length, and the green each needs (MUTCD)."""

from __future__ import annotations

import gzip
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from ..errors import InputError
from .model import Intersection, Network
from .phases import GREEN_CHARS

#: Walking speed of the pedestrian clearance (m/s): 3.5 ft/s, MUTCD 2009 section 4E.06.
PEDESTRIAN_SPEED_M_S = 1.07
#: Shortest walk interval (s): 7 s, MUTCD 2009 section 4E.06.
MIN_WALK_S = 7.0


@dataclass(frozen=True)
class Crossing:
    """A signal-controlled pedestrian crossing.

    ``length_m`` is the length of the crossing's lane in the net file: netconvert draws it across
    the road from curb to curb, so it is the width of the carriageway crossed (``crossed_edges``).
    ``link_index`` is its place in the signal's state strings.
    """

    tls_id: str
    link_index: int
    edge: str
    crossed_edges: tuple[str, ...]
    length_m: float

    @property
    def walk_s(self) -> float:
        """The walk interval (s): ``MIN_WALK_S``."""
        return MIN_WALK_S

    @property
    def fdw_s(self) -> float:
        """The flashing don't walk (pedestrian clearance) time (s): length at 1.07 m/s."""
        return self.length_m / PEDESTRIAN_SPEED_M_S


@dataclass(frozen=True)
class PedestrianGreen:
    """The pedestrian time one green phase must give the crossings green in it.

    A crossing green over a run of green phases needs walk + flashing don't walk over the run,
    less the pedestrian clearance phases right after it (there it is red for new walkers while
    vehicles keep green: that is FDW time), and never less than the walk. A run of several greens
    shares that time in proportion to the program's durations. ``required_s`` is the phase's
    share for its most demanding crossing (``crossing``); ``minimum_s`` is that, capped at the
    program's own green ``program_s``: the network's program is admissible as it is, and
    ``capped`` says where it was widened so. Times in s.
    """

    tls_id: str
    phase: int
    crossing: Crossing
    clearance_credit_s: float
    required_s: float
    program_s: float

    @property
    def minimum_s(self) -> float:
        """The shortest green a plan may give the phase (s)."""
        return min(self.required_s, self.program_s)

    @property
    def capped(self) -> bool:
        """Whether the network's own green is shorter than the pedestrian time."""
        return self.required_s > self.program_s + 1e-9

    def describe(self) -> str:
        """Say where the pedestrian time comes from, in words."""
        text = (
            f"walk {self.crossing.walk_s:g} s + flashing don't walk {self.crossing.fdw_s:.1f} s "
            f"for the {self.crossing.length_m:.1f} m crossing {self.crossing.edge}"
        )
        if self.clearance_credit_s > 0:
            text += f", less the {self.clearance_credit_s:g} s pedestrian clearance after it"
        return text


def read_crossings(network: Network) -> dict[str, tuple[Crossing, ...]]:
    """Read the crossings of every signal that has some, from the network file.

    A static fact of the file: read once per process for a file and its modification time.

    Raises
    ------
    InputError
        When the network file can no longer be read.
    """
    if not any(i.crossings for i in network.intersections.values()):
        return {}
    try:
        key = (str(network.path), network.path.stat().st_mtime_ns)
    except OSError as exc:
        raise InputError(f"cannot read the crossings of {network.path}: {exc}") from exc
    if key not in _READ:
        if len(_READ) >= _READ_MAX:
            _READ.pop(next(iter(_READ)))
        _READ[key] = _parse_crossings(network)
    return _READ[key]


#: Crossings already read in this process: (net file, its mtime) -> crossings per signal.
_READ: dict[tuple[str, int], dict[str, tuple[Crossing, ...]]] = {}
_READ_MAX = 16


def _parse_crossings(network: Network) -> dict[str, tuple[Crossing, ...]]:
    edges: dict[str, tuple[tuple[str, ...], float]] = {}
    links: list[tuple[str, int, str]] = []
    current = None
    opener = gzip.open if network.path.suffix == ".gz" else open
    try:
        with opener(network.path, "rb") as fh:
            for event, elem in ET.iterparse(fh, events=("start", "end")):
                if event == "start":
                    if elem.tag == "edge" and elem.get("function") == "crossing":
                        current = elem.get("id", "")
                        edges[current] = (tuple(elem.get("crossingEdges", "").split()), 0.0)
                    elif elem.tag == "lane" and current is not None:
                        edges[current] = (edges[current][0], float(elem.get("length", 0.0)))
                    continue
                if elem.tag == "edge":
                    current = None
                elif elem.tag == "connection" and elem.get("tl"):
                    for end in (elem.get("to", ""), elem.get("from", "")):
                        if end.startswith(":"):
                            links.append((elem.get("tl", ""), int(elem.get("linkIndex", -1)), end))
                if elem.tag != "lane":
                    elem.clear()
    except (OSError, EOFError, ET.ParseError, ValueError) as exc:
        raise InputError(f"cannot read the crossings of {network.path}: {exc}") from exc
    found: dict[str, dict[int, Crossing]] = {}
    for tls, index, edge in links:
        intersection = network.intersections.get(tls)
        if intersection is None or index not in intersection.crossings or edge not in edges:
            continue
        crossed, length = edges[edge]
        found.setdefault(tls, {})[index] = Crossing(tls, index, edge, crossed, length)
    return {tls: tuple(by_index[k] for k in sorted(by_index)) for tls, by_index in found.items()}


def pedestrian_greens(network: Network) -> dict[str, dict[int, PedestrianGreen]]:
    """Return, per signal and green phase index, the pedestrian time that green must give.

    Only green phases with a crossing green in them appear (see ``PedestrianGreen``).
    """
    return {
        tls: intersection_pedestrian_greens(network.intersections[tls], crossings)
        for tls, crossings in read_crossings(network).items()
    }


def intersection_pedestrian_greens(
    intersection: Intersection, crossings: tuple[Crossing, ...]
) -> dict[int, PedestrianGreen]:
    """Return the pedestrian time of each green phase of one signal (``pedestrian_greens``)."""
    out: dict[int, PedestrianGreen] = {}
    for crossing in crossings:
        for green in crossing_greens(intersection, crossing):
            if green.phase not in out or green.required_s > out[green.phase].required_s:
                out[green.phase] = green
    return dict(sorted(out.items()))


def crossing_greens(intersection: Intersection, crossing: Crossing) -> list[PedestrianGreen]:
    """Return the pedestrian time of every green phase in which ``crossing`` is green."""
    phases = intersection.phases
    n = len(phases)
    serving = [
        i
        for i, p in enumerate(phases)
        if p.is_green and p.state[crossing.link_index : crossing.link_index + 1] in GREEN_CHARS
    ]
    out = []
    for start in serving:
        if (start - 1) % n in serving and n > 1:
            continue  # inside a run: counted from the run's first green
        run = [start]
        while (run[-1] + 1) % n in serving and (run[-1] + 1) % n != start:
            run.append((run[-1] + 1) % n)
        credit, k = 0.0, (run[-1] + 1) % n
        while phases[k].kind == "clearance" and k != start:
            credit += phases[k].duration
            k = (k + 1) % n
        need = max(crossing.walk_s, crossing.walk_s + crossing.fdw_s - credit)
        total = sum(phases[i].duration for i in run)
        for i in run:
            share = need * phases[i].duration / total if total > 0 else need / len(run)
            out.append(
                PedestrianGreen(
                    tls_id=intersection.tls_id,
                    phase=i,
                    crossing=crossing,
                    clearance_credit_s=credit,
                    required_s=share,
                    program_s=phases[i].duration,
                )
            )
    return out


def pedestrian_notes(network: Network) -> list[str]:
    """Say, once per green, where the network's own green is shorter than its pedestrian time."""
    return [
        f"{tls}: phase {g.phase} green {g.program_s:g} s is shorter than its pedestrian time "
        f"{g.required_s:.1f} s ({g.describe()}); its minimum is widened to the program's "
        f"{g.program_s:g} s"
        for tls, greens in pedestrian_greens(network).items()
        for g in greens.values()
        if g.capped
    ]
