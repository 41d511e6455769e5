"""The network as the engine sees it: signals with their links and approaches, and lanes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .phases import Phase

#: How far upstream of a stop line an approach is measured (m). Real-city nets put lanes shorter
#: than a car in front of signals; measuring only the last lane misses the queue behind it.
APPROACH_DISTANCE_M = 150.0


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
        """The edge the link leaves from."""
        return lane_edge(self.in_lane)

    @property
    def out_edge(self) -> str:
        """The edge the link leads onto."""
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
        """Cycle length (s) of the network's program: the sum of its durations."""
        return sum(p.duration for p in self.phases)

    @property
    def in_lanes(self) -> tuple[str, ...]:
        """The controlled incoming lanes, in link order, each once."""
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
    """Return the edge a lane belongs to (SUMO lane ids are ``<edge>_<index>``)."""
    return lane_id.rsplit("_", 1)[0]
