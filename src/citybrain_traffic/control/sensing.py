"""What controllers read from SUMO: movement counts, queues, and how lanes share them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

from ..network import Intersection, Network, Phase

#: Below this speed a vehicle is halting (SUMO's own threshold for the halting counts).
_HALTING_SPEED_M_S = 0.1

#: A movement of a signal: (signal id, movement id).
MovementKey = tuple[str, str]


class Sensing(Protocol):
    """The detector readings a controller acts on (SUMO's through :class:`SumoSensing`)."""

    def interval_counts(self) -> dict[MovementKey, int]:
        """Return each movement's vehicle count in the last closed counting interval."""
        ...

    def halting(self, lanes: Iterable[str]) -> dict[str, int]:
        """Return the vehicles halting on each lane now."""
        ...

    def vehicles(self, lanes: Iterable[str]) -> dict[str, int]:
        """Return the vehicles on each lane now."""
        ...

    def approaching(self, lanes: Iterable[str]) -> dict[str, list[tuple[float, float]]]:
        """Return (position along the lane m, speed m/s) of each vehicle on each lane now."""
        ...

    def lane_counts(self, lanes: Sequence[str]) -> tuple[dict[str, int], dict[str, int]]:
        """Return the vehicles, and the halting vehicles, on each of ``lanes`` now."""
        ...

    def waiting_fronts(
        self, lanes: Iterable[str]
    ) -> dict[str, tuple[tuple[str, int], float] | None]:
        """Return, per lane, the link its front vehicle stands waiting for, and for how long.

        The link is (signal, link index), the time s since the vehicle stopped. None when the
        lane is empty, its front vehicle is moving, or it waits for no signal.
        """
        ...


class SumoSensing:
    """:class:`Sensing` through SUMO's API (libsumo or TraCI).

    Parameters
    ----------
    api
        The running simulation's API.
    loops
        (induction loop id, signal id, movement id) of the counting loops; a movement with
        several junction lanes has a loop on each, and its count is their sum.
    """

    def __init__(self, api: Any, loops: Sequence[tuple[str, str, str]] = ()) -> None:
        self.api = api
        self.loops = loops
        #: Per lane: the vehicle last seen halting at its front, and that vehicle's next link.
        self._fronts: dict[str, tuple[str, tuple[str, int] | None]] = {}

    def interval_counts(self) -> dict[MovementKey, int]:
        """Return each movement's count in the loops' last closed interval."""
        counts: dict[MovementKey, int] = {}
        for loop_id, tls, movement in self.loops:
            count = int(self.api.inductionloop.getLastIntervalVehicleNumber(loop_id))
            counts[tls, movement] = counts.get((tls, movement), 0) + count
        return counts

    def halting(self, lanes: Iterable[str]) -> dict[str, int]:
        """Return the vehicles halting on each lane in the last step."""
        return {lane: self.api.lane.getLastStepHaltingNumber(lane) for lane in lanes}

    def vehicles(self, lanes: Iterable[str]) -> dict[str, int]:
        """Return the vehicles on each lane in the last step."""
        return {lane: self.api.lane.getLastStepVehicleNumber(lane) for lane in lanes}

    def lane_counts(self, lanes: Sequence[str]) -> tuple[dict[str, int], dict[str, int]]:
        """Return the vehicles, and the halting vehicles, on each of ``lanes`` in the last step.

        Read lane by lane: with libsumo a call costs about 0.3 us, less than a subscription's
        results cost to unpack (0.5 us a lane, measured on ingolstadt7), and only the lanes a
        decision needs are read.
        """
        lane = self.api.lane
        number, halting = lane.getLastStepVehicleNumber, lane.getLastStepHaltingNumber
        return {x: number(x) for x in lanes}, {x: halting(x) for x in lanes}

    def waiting_fronts(
        self, lanes: Iterable[str]
    ) -> dict[str, tuple[tuple[str, int], float] | None]:
        """Return, per lane, the link its front vehicle stands waiting for, and for how long.

        The link is (signal, link index), the first of SUMO's ``getNextTLS``; the time is the
        vehicle's ``getWaitingTime`` (s since it last moved). None when the lane is empty, its
        front vehicle moves, or it waits for no signal. A front vehicle's next link is asked
        once and remembered per lane, so the memory stays one entry a lane.
        """
        lane_ids, vehicle = self.api.lane.getLastStepVehicleIDs, self.api.vehicle
        found: dict[str, tuple[tuple[str, int], float] | None] = {}
        for lane in lanes:
            ids = lane_ids(lane)
            front = ids[-1] if ids else None
            if front is None or vehicle.getSpeed(front) >= _HALTING_SPEED_M_S:
                found[lane] = None
                continue
            known = self._fronts.get(lane)
            if known is None or known[0] != front:
                ahead = vehicle.getNextTLS(front)[:1]
                link = (ahead[0][0], int(ahead[0][1])) if ahead else None
                known = self._fronts[lane] = (front, link)
            found[lane] = None if known[1] is None else (known[1], vehicle.getWaitingTime(front))
        return found

    def approaching(self, lanes: Iterable[str]) -> dict[str, list[tuple[float, float]]]:
        """Return (position along the lane m, speed m/s) of each vehicle on each lane."""
        vehicle = self.api.vehicle
        return {
            lane: [
                (vehicle.getLanePosition(v), vehicle.getSpeed(v))
                for v in self.api.lane.getLastStepVehicleIDs(lane)
            ]
            for lane in lanes
        }


@dataclass(frozen=True)
class QueueLayout:
    """How the network's stop-line lanes, their movements and their approaches relate.

    A static fact of the network, computed once (:meth:`of`). A stop-line lane's queue is
    measured over the lanes feeding it up to the approach distance; a lane that feeds several
    stop-line lanes is shared evenly among them.
    """

    #: Stop-line lanes of each movement, in link order.
    movement_lanes: dict[MovementKey, list[str]]
    #: Movements using each stop-line lane.
    lane_movements: dict[str, set[MovementKey]]
    #: For each stop-line lane: (feeding lane, its share) up to the approach distance.
    queue_lanes: dict[str, list[tuple[str, float]]]

    @classmethod
    def of(cls, network: Network) -> QueueLayout:
        """Return the layout of ``network``'s signalized approaches."""
        movement_lanes: dict[MovementKey, list[str]] = {}
        lane_movements: dict[str, set[MovementKey]] = {}
        for intersection in network.intersections.values():
            for link in intersection.links:
                key = (intersection.tls_id, link.movement)
                lanes = movement_lanes.setdefault(key, [])
                if link.in_lane not in lanes:
                    lanes.append(link.in_lane)
                lane_movements.setdefault(link.in_lane, set()).add(key)
        queue_lanes: dict[str, list[tuple[str, float]]] = {}
        for intersection in network.intersections.values():
            upstream = {
                link.in_lane: intersection.upstream_lanes.get(link.in_lane, (link.in_lane,))
                for link in intersection.links
            }
            feeds: dict[str, int] = {}
            for ups in upstream.values():
                for up in ups:
                    feeds[up] = feeds.get(up, 0) + 1
            for lane, ups in upstream.items():
                queue_lanes[lane] = [(up, 1.0 / feeds[up]) for up in ups]
        return cls(movement_lanes, lane_movements, queue_lanes)

    @cached_property
    def approach_lanes(self) -> list[str]:
        """Every lane whose halting vehicles count in some queue, sorted (found once)."""
        return sorted({up for ups in self.queue_lanes.values() for up, _ in ups})

    def queued(
        self, counts: Mapping[MovementKey, int], halting: Mapping[str, int]
    ) -> list[tuple[str, str, float]]:
        """Return (signal, movement, vehicles queued) for every movement.

        Each lane's halting vehicles (summed over its approach with the feeding lanes' shares)
        are shared among the lane's movements by their ``counts`` in the last interval, evenly
        when none was counted.
        """
        waiting = []
        for (tls, movement), lanes in self.movement_lanes.items():
            queued = 0.0
            for lane in lanes:
                served = sum(counts.get((t, m), 0) for t, m in self.lane_movements[lane])
                share = (
                    counts.get((tls, movement), 0) / served
                    if served
                    else 1.0 / len(self.lane_movements[lane])
                )
                queued += share * sum(w * halting[up] for up, w in self.queue_lanes[lane])
            waiting.append((tls, movement, queued))
        return waiting


#: What a green link adds to its phase's pressure: (lanes it discharges, lane it feeds, share).
PressureTerm = tuple[tuple[str, ...], str, float]


def pressure_terms(intersection: Intersection, phases: Sequence[Phase]) -> list[list[PressureTerm]]:
    """Return, for each phase, the terms of its green links' pressure (none for a change phase).

    A link discharges its incoming lane and the lanes feeding it up to the approach distance,
    shared evenly among the incoming lane's links, into its outgoing lane.
    """
    links_per_lane: dict[str, int] = {}
    for link in intersection.links:
        links_per_lane[link.in_lane] = links_per_lane.get(link.in_lane, 0) + 1
    per_phase = []
    for phase in phases:
        terms = []
        if phase.is_green:
            for link in intersection.links:
                if phase.state[link.index] in "Gg":
                    upstream = intersection.upstream_lanes[link.in_lane]
                    terms.append((upstream, link.out_lane, 1.0 / links_per_lane[link.in_lane]))
        per_phase.append(terms)
    return per_phase
