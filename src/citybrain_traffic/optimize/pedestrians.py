"""Pedestrian timing: walk and flashing don't walk per crossing, the minimum green they set."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from ..network import Network
from ..network.crossings import (
    MIN_WALK_S,
    PEDESTRIAN_SPEED_M_S,
    crossing_greens,
    pedestrian_greens,
    pedestrian_notes,
    read_crossings,
)

__all__ = [
    "MIN_WALK_S",
    "PEDESTRIAN_COLUMNS",
    "PEDESTRIAN_SPEED_M_S",
    "pedestrian_minimums",
    "pedestrian_notes",
    "pedestrian_notes_of",
    "pedestrian_times",
]

#: Columns of ``pedestrian_times``.
PEDESTRIAN_COLUMNS = [
    "intersection",
    "crossing",
    "link_index",
    "crossed_edges",
    "length_m",
    "walk_s",
    "fdw_s",
    "phase",
    "clearance_credit_s",
    "required_green_s",
    "program_green_s",
    "minimum_green_s",
    "capped",
]


def pedestrian_times(network: Network) -> pd.DataFrame:
    """Return the pedestrian timing of every signalized crossing, one row per green serving it.

    Columns (``PEDESTRIAN_COLUMNS``): ``intersection`` (signal id), ``crossing`` (SUMO crossing
    edge), ``link_index`` (its place in the state strings), ``crossed_edges`` (space-separated),
    ``length_m`` (the crossing lane's length in the net file, curb to curb), ``walk_s`` (MUTCD
    minimum walk, 7 s), ``fdw_s`` (flashing don't walk: length at 1.07 m/s, MUTCD's 3.5 ft/s),
    ``phase`` (program index of a green the crossing is green in), ``clearance_credit_s`` (the
    pedestrian clearance phases right after it, counted as FDW time), ``required_green_s``
    (walk + FDW − credit, at least the walk; shared in proportion to the program's durations when
    the crossing is green over several greens in a row), ``program_green_s`` (the network's own
    green), ``minimum_green_s`` (the requirement capped at the program's green: the network's
    program stays admissible) and ``capped`` (the program's green is shorter). Times in s. Empty
    when the network has no signalized crossing.
    """
    rows = []
    for tls, crossings in read_crossings(network).items():
        intersection = network.intersections[tls]
        for crossing in crossings:
            for green in crossing_greens(intersection, crossing):
                rows.append(
                    {
                        "intersection": tls,
                        "crossing": crossing.edge,
                        "link_index": crossing.link_index,
                        "crossed_edges": " ".join(crossing.crossed_edges),
                        "length_m": crossing.length_m,
                        "walk_s": crossing.walk_s,
                        "fdw_s": crossing.fdw_s,
                        "phase": green.phase,
                        "clearance_credit_s": green.clearance_credit_s,
                        "required_green_s": green.required_s,
                        "program_green_s": green.program_s,
                        "minimum_green_s": green.minimum_s,
                        "capped": green.capped,
                    }
                )
    return pd.DataFrame(rows, columns=PEDESTRIAN_COLUMNS)


def pedestrian_minimums(network: Network) -> dict[str, dict[int, float]]:
    """Return the pedestrian minimum green (s) per signal and green phase index.

    The most demanding crossing of each green, capped at the program's own green (see
    ``pedestrian_times``); what ``timing_frame``'s ``pedestrian_s`` takes.
    """
    return {
        tls: {phase: green.minimum_s for phase, green in greens.items()}
        for tls, greens in pedestrian_greens(network).items()
    }


def pedestrian_notes_of(pedestrian_s: Mapping[int, float]) -> list[str]:
    """Say which pedestrian minimum greens (s, by phase index) a timing kept, for its notes."""
    if not pedestrian_s:
        return []
    walks = ", ".join(f"phase {i} {s:.1f} s" for i, s in sorted(pedestrian_s.items()))
    return [f"pedestrian minimum greens: {walks}"]
