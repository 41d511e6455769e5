"""Measure the emergency vehicles of a run: their trips, and the signals they crossed on green.

``EmergencyMeter`` follows them live through libsumo/TraCI, only while one is due or driving;
``emergency_table`` joins what it saw with SUMO's tripinfo; ``emergency_kpis`` sums a run's
table into its ``summary.csv`` figures. The vehicles are reported apart: the run's KPIs leave
them out (``runner.run_simulation``).
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..sim import metrics
from ..sim.emergency import EmergencyVehicle
from .emergency_driver import GREEN_CHARS, STOPPED_M_S, Ahead, EmergencyDriver

#: Columns of ``emergency.csv``, one row per emergency vehicle (see README).
EMERGENCY_COLUMNS = (
    "id",
    "from_edge",
    "to_edge",
    "scheduled_depart_s",
    "depart_s",
    "depart_delay_s",
    "arrival_s",
    "travel_time_s",
    "time_stopped_s",
    "stops",
    "time_loss_s",
    "signals_passed",
    "signals_passed_green",
    "signals_stopped_at",
    "collisions",
)
#: A run's figures over its emergency vehicles, added to ``summary.csv`` when it had some.
EMERGENCY_KPIS = (
    "emergency_vehicles",
    "emergency_arrived",
    "mean_emergency_travel_time_s",
    "mean_emergency_time_stopped_s",
    "emergency_signals_passed",
    "emergency_signals_passed_green",
    "emergency_signals_stopped_at",
    "emergency_collisions",
)
#: A next signal this much further away (m) than the last look is a new stop line of the same
#: signal (one logic controlling two junctions), not a lane change before the same one.
_FARTHER_M = 5.0


@dataclass
class _Track:
    """What the meter saw of one vehicle: its next signal, the signals crossed, its halts."""

    #: The next signal of the network on its route, or None.
    ahead: Ahead | None = None
    passed: int = 0
    green: int = 0
    stopped_at: int = 0
    #: It has halted since the signal ahead became its next one.
    halted: bool = False


class EmergencyMeter:
    """Follow a run's emergency vehicles live: signals crossed, on green, stopped at.

    A vehicle crosses a signal when the signal leaves the head of its upcoming ones (SUMO's
    ``vehicle.getNextTLS``); the link it used (the junction's internal lane it is on, else the
    one it was heading for) showed green when the state of the step it crossed in is ``G`` or
    ``g``. Only the signals of ``signals`` count. A vehicle stopped at a signal when it halted
    (speed below ``STOPPED_M_S``) while that signal was its next one (once per signal).

    It has an ``EmergencyDriver`` set how they drive, from the step each is inserted in.

    Cost: nothing while no emergency vehicle is due; then per step the departed (while one is
    due) and arrived lists, and per vehicle driving its next signals and speed.

    Parameters
    ----------
    api
        The ``libsumo`` module or a ``traci`` connection of the running simulation.
    vehicles
        The run's emergency vehicles (loaded by SUMO from the run's file).
    red
        ``sim.emergency.RED_MODES``: what they do at a red signal.
    signals
        The signals measured (the network's that SUMO runs).
    """

    def __init__(
        self,
        api: Any,
        vehicles: Collection[EmergencyVehicle],
        *,
        red: str,
        signals: Collection[str],
    ):
        self._api = api
        self._driver = EmergencyDriver(api, red=red)
        self._signals = frozenset(signals)
        self._due = sorted((v.depart, v.id) for v in vehicles)
        self._waiting = {v.id for v in vehicles}
        self._driving: set[str] = set()
        self.tracks = {v.id: _Track() for v in vehicles}
        self._vias: dict[str, dict[str, int]] = {}

    def wake(self, now: float, step: float) -> float:
        """Return when to look next (s): every step while one drives or is due, else its time."""
        if self._driving or (self._due and self._due[0][0] <= now + 1e-9):
            return now + step
        return max(self._due[0][0], now + step) if self._due else math.inf

    def sample(self, now: float) -> None:
        """Look after a simulation step, before a controller changes a state."""
        sim = self._api.simulation
        if self._due and self._due[0][0] <= now + 1e-9:
            for vehicle in sim.getDepartedIDList():
                if vehicle in self._waiting:
                    self._depart(vehicle, now)
        if not self._driving:
            return
        for vehicle in sim.getArrivedIDList():
            self._driving.discard(vehicle)
        for vehicle in sorted(self._driving):
            self._look(vehicle, now)

    def _depart(self, vehicle: str, now: float) -> None:
        """Take a vehicle inserted in the last step into the ones driving."""
        self._waiting.discard(vehicle)
        self._due = [(t, v) for t, v in self._due if v != vehicle]
        self._driving.add(vehicle)
        self._driver.depart(vehicle)
        self._look(vehicle, now)

    def _look(self, vehicle: str, now: float) -> None:
        """Note whether a driving vehicle crossed its next signal in the last step, or halted."""
        api, track = self._api, self.tracks[vehicle]
        ahead = next(
            (
                (tls, int(link), float(distance), state)
                for tls, link, distance, state in api.vehicle.getNextTLS(vehicle)
                if tls in self._signals
            ),
            None,
        )
        if ahead is None and api.vehicle.getRoadID(vehicle) == "":
            return  # teleporting: the signal ahead stays until the vehicle is back
        last = track.ahead
        if last is not None and (
            ahead is None or ahead[0] != last[0] or ahead[2] > last[2] + _FARTHER_M
        ):
            link = self._via_link(last[0], api.vehicle.getLaneID(vehicle), last[1])
            track.passed += 1
            track.green += api.trafficlight.getRedYellowGreenState(last[0])[link] in GREEN_CHARS
            track.halted = False
        track.ahead = ahead
        speed = api.vehicle.getSpeed(vehicle)
        if ahead is not None and speed < STOPPED_M_S and not track.halted:
            track.halted = True
            track.stopped_at += 1
        self._driver.drive(vehicle, now, ahead, speed)

    def _via_link(self, tls: str, lane: str, heading: int) -> int:
        """Return the link of ``tls`` whose internal lane is ``lane``, else ``heading``."""
        if tls not in self._vias:
            self._vias[tls] = {
                via: index
                for index, links in enumerate(self._api.trafficlight.getControlledLinks(tls))
                for _, _, via in links
                if via
            }
        return self._vias[tls].get(lane, heading)


def emergency_table(
    vehicles: Collection[EmergencyVehicle],
    trips: pd.DataFrame,
    tracks: dict[str, _Track],
    collisions: dict[str, int],
) -> pd.DataFrame:
    """Return one row per emergency vehicle with the ``EMERGENCY_COLUMNS``.

    ``trips`` are ``sim.metrics.read_trips``' vehicles (depart, arrival, duration, waiting
    time, halts, time loss from SUMO's tripinfo: NaN times for a vehicle never inserted, and
    the trip so far for one unfinished); ``tracks`` the meter's; ``collisions`` per vehicle.
    """
    trip = {str(r["id"]): r for r in trips.to_dict("records")}
    missing = {"depart": math.nan, "depart_delay": math.nan, "arrival": math.nan}
    rows = []
    for vehicle in vehicles:
        track = tracks.get(vehicle.id, _Track())
        row = trip.get(vehicle.id, missing)
        inserted = not math.isnan(row["depart"])
        rows.append(
            {
                "id": vehicle.id,
                "from_edge": vehicle.from_edge,
                "to_edge": vehicle.to_edge,
                "scheduled_depart_s": vehicle.depart,
                "depart_s": row["depart"],
                "depart_delay_s": row["depart_delay"],
                "arrival_s": row["arrival"],
                "travel_time_s": row["duration"] if inserted else math.nan,
                "time_stopped_s": row["waiting_time"] if inserted else math.nan,
                "stops": row["stops"] if inserted else 0,
                "time_loss_s": row["time_loss"] if inserted else math.nan,
                "signals_passed": track.passed,
                "signals_passed_green": track.green,
                "signals_stopped_at": track.stopped_at,
                "collisions": collisions.get(vehicle.id, 0),
            }
        )
    return pd.DataFrame(rows, columns=list(EMERGENCY_COLUMNS))


def emergency_kpis(table: pd.DataFrame) -> dict[str, float]:
    """Return a run's ``EMERGENCY_KPIS`` from its ``emergency_table``.

    Travel time and time stopped are means over the vehicles inserted (an unfinished one
    counts its trip so far, as the KPIs of everyone else do); signals are totals.
    """
    inserted = table[table["depart_s"].notna()]

    def mean(column: str) -> float:
        return float(inserted[column].mean()) if len(inserted) else math.nan

    return {
        "emergency_vehicles": int(len(table)),
        "emergency_arrived": int(table["arrival_s"].notna().sum()),
        "mean_emergency_travel_time_s": mean("travel_time_s"),
        "mean_emergency_time_stopped_s": mean("time_stopped_s"),
        "emergency_signals_passed": int(table["signals_passed"].sum()),
        "emergency_signals_passed_green": int(table["signals_passed_green"].sum()),
        "emergency_signals_stopped_at": int(table["signals_stopped_at"].sum()),
        "emergency_collisions": int(table["collisions"].sum()),
    }


def split_emergency(
    trips: pd.DataFrame,
    vehicles: Collection[EmergencyVehicle],
    tracks: dict[str, _Track],
    collision_path: Path,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return everyone else's trips, and the ``emergency_table`` of ``vehicles``."""
    ids = {v.id for v in vehicles}
    mine = trips["id"].isin(ids)
    table = emergency_table(
        vehicles, trips[mine], tracks, metrics.collisions_of(collision_path, ids)
    )
    return trips[~mine], table
