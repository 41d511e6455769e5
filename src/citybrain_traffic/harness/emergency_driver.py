"""How a run's emergency vehicles drive: SUMO's bluelight device, kept to what it can do well.

SUMO's bluelight device (``sim.emergency``) is built for a vehicle that goes through red: within
its reaction distance it brakes every foe of the junction ahead, turns off the strategic lane
changes of the vehicles ahead (they form the rescue lane) and of its own vehicle when slow (it
then enters the junction from whatever lane it is on, onto its connection), and sets a speed
mode that ignores red and right of way. Left as it is, in our runs an emergency vehicle that
obeys red held the cross traffic braked while it waited (a gridlock), waited behind a vehicle
the device held in its lane (for good), and collided entering from the wrong lane (16 of 40
on the corridor). ``EmergencyDriver`` sets, through libsumo/TraCI:

- as the vehicle is inserted (before it first moves): its speed mode (``SPEED_MODES``: SUMO's
  default with ``obey``; with ``cross``, red ignored, right of way respected) and lane change
  mode (``LANE_CHANGE_MODE``: no weaving to gain speed or keep right);
- while it is slow (below half its allowed speed, where the device turns off its strategic
  lane changes): a change towards a lane that continues its route, when it is on one that does
  not (SUMO's ``changeLane``, done only when safe);
- the siren (the device's reaction distance, ``REACTION_M``): off while, with ``obey``, the next
  signal within ``HELD_AT_SIGNAL_M`` shows it no green (it waits as everyone does), and while
  it is blocked (standing ``BLOCKED_AFTER_S`` where it may go: the device is holding what it
  waits for); a blocked vehicle also changes lanes freely (``BLOCKED_LANE_CHANGE_MODE``). The
  siren comes back, and the lane changes go back, when it moves again. With the siren off the
  device gives the vehicles it held back their own driving.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..sim.emergency import (
    BLOCKED_AFTER_S,
    LANE_CHANGE_MODE,
    RED_CROSS,
    REACTION_M,
    SPEED_MODES,
)

#: Link states that let a vehicle enter a junction: green with or without priority.
GREEN_CHARS = frozenset("Gg")
#: Speed below which a vehicle stands (m/s), as SUMO's waiting time counts it.
STOPPED_M_S = 0.1
#: With ``obey``, the siren is off while the next signal within this distance (m) shows no green.
HELD_AT_SIGNAL_M = 2 * REACTION_M

#: The next signal on a vehicle's route: (tls, link index, distance m, state of the link).
Ahead = tuple[str, int, float, str]


@dataclass
class _Driving:
    """What the driver keeps of one vehicle."""

    #: Since when (s) it has stood where it may go, or None.
    standing_since: float | None = None
    siren: bool = True


class EmergencyDriver:
    """Set how a run's emergency vehicles drive (see the module docstring).

    Parameters
    ----------
    api
        The ``libsumo`` module or a ``traci`` connection of the running simulation.
    red
        ``sim.emergency.RED_MODES``: what they do at a red signal.
    """

    def __init__(self, api: Any, *, red: str):
        self._vehicle = api.vehicle
        self._cross = red == RED_CROSS
        self._speed_mode = SPEED_MODES[red]
        self._driving: dict[str, _Driving] = {}

    def depart(self, vehicle: str) -> None:
        """Set a vehicle's driving in the step it was inserted."""
        self._vehicle.setSpeedMode(vehicle, self._speed_mode)
        self._vehicle.setLaneChangeMode(vehicle, LANE_CHANGE_MODE)
        self._driving[vehicle] = _Driving()

    def drive(self, vehicle: str, now: float, ahead: Ahead | None, speed: float) -> None:
        """Adjust a driving vehicle after a step: its lane, its siren, blocked or not."""
        veh, state = self._vehicle, self._driving[vehicle]
        if speed < 0.5 * veh.getAllowedSpeed(vehicle):
            self._keep_route_lane(vehicle)
        # Held: a signal within reach shows it no green.
        held = ahead is not None and ahead[2] <= HELD_AT_SIGNAL_M and ahead[3] not in GREEN_CHARS
        if speed >= STOPPED_M_S or (held and not self._cross):
            state.standing_since = None
        elif state.standing_since is None:
            state.standing_since = now
        blocked = state.standing_since is not None and now - state.standing_since >= BLOCKED_AFTER_S
        siren = not (blocked or (held and not self._cross))
        if siren != state.siren:
            distance = REACTION_M if siren else 0.0
            veh.setParameter(vehicle, "device.bluelight.reactiondist", f"{distance:g}")
            state.siren = siren

    def _keep_route_lane(self, vehicle: str) -> None:
        """Change towards a lane that continues the route when on one that does not."""
        veh = self._vehicle
        lane = veh.getLaneID(vehicle)
        for best in veh.getBestLanes(vehicle):
            if best[0] == lane:
                offset = int(best[3])
                if offset:
                    index = veh.getLaneIndex(vehicle) + (1 if offset > 0 else -1)
                    veh.changeLane(vehicle, index, 1.0)
                return
