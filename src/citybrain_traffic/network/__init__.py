"""The SUMO network: phases, signals, links, approaches, lanes, movement names, NEMA phases."""

from .model import APPROACH_DISTANCE_M, Approach, Intersection, Lane, Link, Network, lane_edge
from .movements import (
    ApproachInfo,
    NamedMovement,
    SignalMovements,
    compass_labels,
    name_movements,
    turn_class,
)
from .nema import NemaFit, NemaPhase, fit_nema, fit_network
from .phases import (
    DEFAULT_MIN_GREEN_S,
    GREEN_CHARS,
    TRANSITION_CHARS,
    Phase,
    admissible,
    clearance_times,
    mark_pedestrian_clearances,
    next_green,
    phase_kind,
    phases_between,
)
from .reader import read_network

__all__ = [
    "APPROACH_DISTANCE_M",
    "DEFAULT_MIN_GREEN_S",
    "GREEN_CHARS",
    "TRANSITION_CHARS",
    "Approach",
    "ApproachInfo",
    "Intersection",
    "Lane",
    "Link",
    "NamedMovement",
    "NemaFit",
    "NemaPhase",
    "Network",
    "Phase",
    "SignalMovements",
    "admissible",
    "clearance_times",
    "compass_labels",
    "fit_nema",
    "fit_network",
    "lane_edge",
    "mark_pedestrian_clearances",
    "name_movements",
    "next_green",
    "phase_kind",
    "phases_between",
    "read_network",
    "turn_class",
]
