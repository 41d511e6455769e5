"""Saturation flow measured in the simulation from queue discharge headways (the HCM method)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from ..control.base import Controller, RunContext
from ..errors import InputError
from ..harness.matrix import run_matrix
from ..harness.runner import RunSpec
from ..network import GREEN_CHARS, Network
from ..scenario import Scenario

#: Headways are taken from this queue position on: the first vehicles lose time starting up.
FIRST_SATURATED_POSITION = 5
#: A green counts only when at least this many vehicles stood in the queue at its start.
MIN_QUEUE = 8


class DischargeRecorder(Controller):
    """Records, every second, when queued vehicles cross each signalized lane's stop line.

    At the start of each green of a lane, the vehicles halting on it form the queue; the times at
    which they leave the lane during that green give the discharge headways.
    """

    name = "discharge-recorder"
    description = "measures queue discharge headways (used by ctraffic calibrate)"
    needs_signals = True
    listed = False

    def start(self, context: RunContext, now: float) -> float | None:
        """Find every signalized lane's links; record from ``now`` on."""
        signals = context.signals
        self.api: Any = context.api
        self.lanes: dict[str, tuple[str, list[int]]] = {}  # lane -> (tls_id, link indices)
        for sig in signals.values():
            for link in sig.intersection.links:
                tls, indices = self.lanes.setdefault(link.in_lane, (sig.id, []))
                indices.append(link.index)
        self.queue: dict[str, list[str]] = {}
        self.left: dict[str, dict[str, float]] = {}
        self.was_green = {lane: False for lane in self.lanes}
        self.headways: list[tuple[str, str, float]] = []
        return now if signals else None

    def step(self, now: float) -> float | None:
        """Record the queues at green starts and when their vehicles leave; every second."""
        tl, lane_api = self.api.trafficlight, self.api.lane
        states: dict[str, str] = {}
        for lane, (tls, indices) in self.lanes.items():
            state = states.setdefault(tls, tl.getRedYellowGreenState(tls))
            green = all(state[i] in GREEN_CHARS for i in indices)
            on_lane = lane_api.getLastStepVehicleIDs(lane)
            if green and not self.was_green[lane]:
                halting = [v for v in on_lane if self.api.vehicle.getSpeed(v) < 0.1]
                # Queue order: nearest the stop line first.
                halting.sort(key=lambda v: -self.api.vehicle.getLanePosition(v))
                self.queue[lane] = halting if len(halting) >= MIN_QUEUE else []
                self.left[lane] = {}
            if green and self.queue.get(lane):
                present = set(on_lane)
                for v in self.queue[lane]:
                    if v not in present and v not in self.left[lane]:
                        self.left[lane][v] = now
            if not green and self.was_green[lane] and self.queue.get(lane):
                self._close(lane, tls)
            self.was_green[lane] = green
        return now + 1.0

    def report(self) -> list[tuple[str, str, float]]:
        """Return the saturated headways: (signal, lane, headway s)."""
        return self.headways

    def _close(self, lane: str, tls: str) -> None:
        # Only the uninterrupted head of the queue: stop at the first vehicle that did not leave.
        served = []
        for v in self.queue[lane]:
            if v not in self.left[lane]:
                break
            served.append(self.left[lane][v])
        if len(served) > FIRST_SATURATED_POSITION:
            saturated = served[FIRST_SATURATED_POSITION - 1 :]
            for a, b in zip(saturated, saturated[1:]):
                if b > a:
                    self.headways.append((tls, lane, b - a))
        self.queue[lane] = []


def calibrate(
    scenario: Scenario, network: Network, *, workdir: Path, seed: int = 1, demand_scale: float = 1.0
) -> pd.DataFrame:
    """Saturation flow per signalized lane from one simulation under the network's programs.

    Returns
    -------
    DataFrame
        ``intersection``, ``lane``, ``headways`` (samples), ``mean_headway_s``,
        ``saturation_veh_h_lane`` (3600 / mean saturated headway); lanes that never discharged a
        queue of ``MIN_QUEUE`` vehicles are absent.
    """
    spec = RunSpec(
        scenario=scenario,
        network=network,
        controller=DischargeRecorder().fit(scenario, network, workdir, demand_scale=demand_scale),
        seed=seed,
        workdir=workdir / "sumo",
        demand_scale=demand_scale,
    )
    headways = cast(list[tuple[str, str, float]], run_matrix([spec])[0].controller_report)
    if not headways:
        return pd.DataFrame(
            columns=["intersection", "lane", "headways", "mean_headway_s", "saturation_veh_h_lane"]
        )
    h = pd.DataFrame(headways, columns=["intersection", "lane", "headway_s"])
    table = h.groupby(["intersection", "lane"], as_index=False).agg(
        headways=("headway_s", "size"), mean_headway_s=("headway_s", "mean")
    )
    table["saturation_veh_h_lane"] = 3600.0 / table["mean_headway_s"]
    return table


#: A lane's figure counts for the network only from this many headways on (a few are noise).
MIN_LANE_HEADWAYS = 20


def network_saturation_flow(table: pd.DataFrame, *, min_samples: int = MIN_LANE_HEADWAYS) -> float:
    """One saturation flow for the network (veh/h/lane): the median over well-sampled lanes.

    Raises
    ------
    InputError
        When no lane has ``min_samples`` headways (the median of no lane was printed as NaN):
        the demand queued too rarely, and a heavier one is needed.
    """
    good = table[table["headways"] >= min_samples]
    if good.empty:
        most = int(table["headways"].max()) if len(table) else 0
        raise InputError(
            f"too few queue discharges to measure: the best lane gave {most} saturated "
            "headways, a lane needs "
            f"{min_samples}; simulate a heavier peak (a larger --demand-scale)"
        )
    return float(np.median(good["saturation_veh_h_lane"]))
