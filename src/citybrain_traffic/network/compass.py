"""Directions on a SUMO network: bearings, turn angles and their classes, compass labels."""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import linear_sum_assignment

#: Turn classes by signed turn angle (degrees, left positive): the nearest of the four canonical
#: turns (0 through, +90 left, -90 right, 180 U-turn). The bins meet half-way between them, so a
#: slight turn (up to 45 degrees) reads as through and a skewed left (60-120) as a left.
THROUGH_MAX_DEG = 45.0
U_TURN_MIN_DEG = 135.0
#: An approach takes a compass label no further than this from its direction of travel (degrees):
#: three quarters of the spacing between labels (90 on the 4-point compass, 45 on the 8-point),
#: i.e. its own sector plus half of the next one. Beyond it the label would name another road.
LABEL_REACH = 0.75
#: Two incoming edges whose directions of travel differ by at most half a right angle (degrees)
#: are one approach (a slip lane or a split stop line); more apart, they are different legs.
SAME_APPROACH_DEG = 45.0

COMPASS_4 = (("NB", 0.0), ("EB", 90.0), ("SB", 180.0), ("WB", 270.0))
COMPASS_8 = (
    ("NB", 0.0),
    ("NE", 45.0),
    ("EB", 90.0),
    ("SE", 135.0),
    ("SB", 180.0),
    ("SW", 225.0),
    ("WB", 270.0),
    ("NW", 315.0),
)
SIDES = (("N", 0.0), ("E", 90.0), ("S", 180.0), ("W", 270.0))


def bearing(dx: float, dy: float) -> float:
    """Return the compass bearing (degrees clockwise from north) of a vector, y pointing north."""
    return math.degrees(math.atan2(dx, dy)) % 360.0


def angle_diff(a: float, b: float) -> float:
    """Return the signed difference ``a - b`` of two bearings (degrees, in (-180, 180])."""
    d = (a - b) % 360.0
    return d - 360.0 if d > 180.0 else d


def mean_bearing(bearings) -> float:
    """Return the circular mean of compass bearings (degrees)."""
    rad = np.radians(list(bearings))
    return bearing(float(np.sin(rad).sum()), float(np.cos(rad).sum()))


def compass_labels(
    bearings: dict[str, float], compass=COMPASS_4, *, escalate: bool = True
) -> dict[str, str]:
    """Give each bearing (compass degrees) a label, distinct where the geometry allows.

    The labels are matched to the bearings with the least total squared deviation (Hungarian
    method), none further than ``LABEL_REACH`` of the label spacing. A bearing left without one
    shares the label of a matched bearing within ``SAME_APPROACH_DEG``; otherwise, with
    ``escalate``, the matching is redone on the 8-point compass, and what still remains takes
    its nearest label.
    """
    keys = sorted(bearings)
    if not keys:
        return {}
    reach = LABEL_REACH * 360.0 / len(compass)
    dev = np.array([[abs(angle_diff(bearings[k], c)) for _, c in compass] for k in keys])
    cost = np.where(dev <= reach, dev**2, 1e9)
    rows, cols = linear_sum_assignment(cost)
    out = {keys[r]: compass[c][0] for r, c in zip(rows, cols) if dev[r, c] <= reach}
    matched = dict(out)
    for k in keys:
        if k in out:
            continue
        near = [
            j for j in matched if abs(angle_diff(bearings[k], bearings[j])) <= SAME_APPROACH_DEG
        ]
        if near:
            out[k] = matched[min(near, key=lambda j: abs(angle_diff(bearings[k], bearings[j])))]
        elif escalate and compass is not COMPASS_8 and len(compass) < len(COMPASS_8):
            return compass_labels(bearings, COMPASS_8, escalate=False)
        else:
            out[k] = min(compass, key=lambda c: abs(angle_diff(bearings[k], c[1])))[0]
    return out


def turn_class(angle_deg: float) -> str:
    """Return the turn class of a signed angle (degrees, left positive): T, L, R or U."""
    if abs(angle_deg) <= THROUGH_MAX_DEG:
        return "T"
    if abs(angle_deg) >= U_TURN_MIN_DEG:
        return "U"
    return "L" if angle_deg > 0 else "R"


def mean_angle(angles) -> float:
    """Return the circular mean of signed angles (degrees, in (-180, 180])."""
    rad = np.radians(list(angles))
    return math.degrees(math.atan2(float(np.sin(rad).sum()), float(np.cos(rad).sum())))


def label_order(label: str) -> int:
    """Return a compass label's place going clockwise from north (99 for another label)."""
    return [name for name, _ in COMPASS_8].index(label) if label in dict(COMPASS_8) else 99
