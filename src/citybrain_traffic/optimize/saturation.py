"""Saturation flow per lane group: a base adjusted as the HCM does, or a measured value.

HCM 6th ed. eq. 19-8 multiplies a base saturation flow s0 by adjustment factors. Those the
network and the demand show are applied: lane width (``f_w``, from the lanes' widths), heavy
vehicles (``f_HV``, from the vTypes of the routed vehicles on the group's movements), and turns
(``f_LT``/``f_RT`` as through-car equivalents of the vehicles on the lane: protected left
1.05, right 1.18; a permitted turn's equivalent is the ratio of the lane's saturation flow to the
turn's gap-acceptance rate, ``lane_groups.permitted_share``, so a permitted turn is derated once,
by that rate, and a shared lane by its share of turning vehicles). Factors the data cannot show
are 1: grade (networks rarely carry elevation), parking, bus blockage, area type, lane
utilization (lane flows are balanced by ``lane_groups.balanced_lane_flows``) and pedestrians
(``f_Rpb``/``f_Lpb`` need pedestrian volumes, which neither routes nor counts give here).

Precedence: a lane that ``ctraffic calibrate`` measured (its queue discharge headways) takes the
measurement instead of s0 x f_w x f_HV x the protected-turn equivalents: the headways already
hold its width, vehicles and turns. A permitted turn's gap-acceptance rate still applies there,
because it depends on the design's opposing flow, which the calibration run did not have.
"""

from __future__ import annotations

import gzip
import math
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError

#: SUMO's lane width (m) when the network does not give one (netconvert ``--default.lanewidth``).
SUMO_DEFAULT_LANE_WIDTH_M = 3.2
#: HCM 6th ed., Chapter 19, lane width adjustment f_w: below 10.0 ft (3.05 m) 0.96, from 10.0
#: to 12.9 ft 1.00, above 12.9 ft (3.93 m) 1.04.
NARROW_LANE_M = 3.048
WIDE_LANE_M = 3.932
NARROW_LANE_FACTOR = 0.96
WIDE_LANE_FACTOR = 1.04
#: HCM 6th ed., Chapter 19, heavy-vehicle and grade adjustment on level ground:
#: f_HVg = (100 - 0.79 P_HV) / 100 with P_HV in percent.
HEAVY_VEHICLE_LOSS_PER_PERCENT = 0.0079
#: HCM 6th ed., Chapter 19, through-car equivalents: protected left turn E_L, right turn E_R.
PROTECTED_LEFT_EQUIVALENT = 1.05
RIGHT_TURN_EQUIVALENT = 1.18
#: SUMO connection directions: left, U-turn (both turn across the opposing flow) and right.
#: Partial turns (``L``, ``R``) and straight on are driven at near through speed.
_LEFT, _RIGHT = frozenset("lt"), frozenset("r")


def lane_width_factor(width_m: float) -> float:
    """Return the HCM lane width adjustment f_w for a lane ``width_m`` metres wide."""
    if width_m < NARROW_LANE_M:
        return NARROW_LANE_FACTOR
    return WIDE_LANE_FACTOR if width_m > WIDE_LANE_M else 1.0


def heavy_vehicle_factor(share: float) -> float:
    """Return the HCM heavy-vehicle adjustment f_HV for a heavy-vehicle ``share`` (0-1)."""
    return 1.0 - HEAVY_VEHICLE_LOSS_PER_PERCENT * 100.0 * share


@dataclass(frozen=True)
class SaturationModel:
    """What the adjusted saturation flow of a lane group is computed from.

    ``base_veh_h_lane`` is s0, the saturation flow of a through lane of passenger cars of
    standard width (veh/h/lane); ``lane_width_m`` per lane (missing: SUMO's 3.2 m);
    ``turns`` per movement ``"left"``, ``"right"`` or ``"through"``; ``heavy_share`` per
    movement (0-1); ``measured_veh_h_lane`` per lane, from ``ctraffic calibrate``.
    """

    base_veh_h_lane: float
    lane_width_m: Mapping[str, float] = field(default_factory=dict)
    turns: Mapping[str, str] = field(default_factory=dict)
    heavy_share: Mapping[str, float] = field(default_factory=dict)
    measured_veh_h_lane: Mapping[str, float] = field(default_factory=dict)

    def group_saturation(
        self, lanes: Sequence[str], movement_flows: Mapping[str, float]
    ) -> tuple[float, tuple[tuple[str, float], ...]]:
        """Return a lane group's saturation flow per lane before turns, and its factors.

        The group's flow per lane is the mean of its lanes' (their capacities add up). The
        factors are ``f_w`` and ``f_HV`` over the lanes not measured, and ``measured``, the
        number of measured lanes.
        """
        flows = {m: v for m, v in movement_flows.items() if v > 0}
        total = sum(flows.values())
        heavy = (
            sum(v * self.heavy_share.get(m, 0.0) for m, v in flows.items()) / total
            if total > 0
            else 0.0
        )
        f_hv = heavy_vehicle_factor(heavy)
        widths = [
            lane_width_factor(self.lane_width_m.get(lane, SUMO_DEFAULT_LANE_WIDTH_M))
            for lane in lanes
            if lane not in self.measured_veh_h_lane
        ]
        per_lane = [
            self.measured_veh_h_lane.get(lane, 0.0)
            or self.base_veh_h_lane
            * lane_width_factor(self.lane_width_m.get(lane, SUMO_DEFAULT_LANE_WIDTH_M))
            * f_hv
            for lane in lanes
        ]
        factors = (
            ("f_w", float(np.mean(widths)) if widths else 1.0),
            ("f_HV", f_hv if widths else 1.0),
            ("measured", float(len(lanes) - len(widths))),
        )
        return float(np.mean(per_lane)), factors

    def equivalent(self, movement: str, lanes: Sequence[str]) -> float:
        """Return the through-car equivalent of a protected vehicle of ``movement``.

        1 on a group whose every lane was measured: the measurement holds its turns.
        """
        if all(lane in self.measured_veh_h_lane for lane in lanes):
            return 1.0
        turn = self.turns.get(movement, "through")
        if turn == "left":
            return PROTECTED_LEFT_EQUIVALENT
        return RIGHT_TURN_EQUIVALENT if turn == "right" else 1.0


def saturation_model(
    net_file: Path,
    *,
    base_veh_h_lane: float,
    heavy_share: Mapping[str, float] | None = None,
    measured_veh_h_lane: Mapping[str, float] | None = None,
) -> SaturationModel:
    """Read lane widths and turn directions from a ``.net.xml`` into a ``SaturationModel``.

    ``heavy_share`` per movement comes from the routes (``flows.route_flow_bins``); without
    routes it is unknown and f_HV is 1. ``measured_veh_h_lane`` per lane comes from
    ``ctraffic calibrate --out``.
    """
    base = float(base_veh_h_lane)
    if not (math.isfinite(base) and base > 0):
        raise InputError(f"base saturation flow is {base_veh_h_lane!r} veh/h/lane, expected > 0")
    for lane, value in (measured_veh_h_lane or {}).items():
        if not (math.isfinite(value) and value > 0):
            raise InputError(f"measured saturation flow of lane {lane!r} is {value!r} veh/h/lane")
    widths: dict[str, float] = {}
    turns: dict[str, str] = {}
    opener = gzip.open if net_file.suffix == ".gz" else open
    with opener(net_file, "rb") as fh:
        for _, elem in ET.iterparse(fh):
            if elem.tag == "lane" and elem.get("width") is not None:
                widths[elem.get("id", "")] = float(elem.get("width", SUMO_DEFAULT_LANE_WIDTH_M))
            elif elem.tag == "connection" and elem.get("tl"):
                direction = elem.get("dir", "s")
                turn = (
                    "left" if direction in _LEFT else "right" if direction in _RIGHT else "through"
                )
                turns[f"{elem.get('from')}>{elem.get('to')}"] = turn
            if elem.tag in ("edge", "connection", "tlLogic"):
                elem.clear()
    return SaturationModel(
        base_veh_h_lane=base,
        lane_width_m=widths,
        turns=turns,
        heavy_share=dict(heavy_share or {}),
        measured_veh_h_lane=dict(measured_veh_h_lane or {}),
    )


def base_from_measurements(
    model: SaturationModel, measured_veh_h_lane: Mapping[str, float]
) -> float:
    """Infer s0 from measured lanes: the median of each measurement over its lane's f_w.

    Lanes not measured are then adjusted from a base the network itself showed, and not from a
    measured figure that already holds their width (which would adjust it twice).
    """
    if not measured_veh_h_lane:
        raise InputError("no measured lane to infer the base saturation flow from")
    return float(
        np.median(
            [
                value / lane_width_factor(model.lane_width_m.get(lane, SUMO_DEFAULT_LANE_WIDTH_M))
                for lane, value in measured_veh_h_lane.items()
            ]
        )
    )
