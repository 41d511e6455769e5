"""The SUMO network the engine controls: phases, signals, links, approaches, lanes; reading it."""

from .model import APPROACH_DISTANCE_M, Approach, Intersection, Lane, Link, Network, lane_edge
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
    "Intersection",
    "Lane",
    "Link",
    "Network",
    "Phase",
    "admissible",
    "clearance_times",
    "lane_edge",
    "mark_pedestrian_clearances",
    "next_green",
    "phase_kind",
    "phases_between",
    "read_network",
]
