"""Measure, per signal, the longest red that a vehicle waiting at the stop line saw."""

from __future__ import annotations

import math
from typing import Any

#: Link states that let a waiting vehicle go: green with or without priority, SUMO's green
#: right-turn arrow (``s``: go after stopping, a yield like ``g``) and a signal that is off
#: (``o`` blinking, ``O`` dark: the junction's right of way rules). Every other state (``r``,
#: ``y``, ``Y``, ``u``) holds the vehicle at the stop line.
SERVED_CHARS = frozenset("GgsoO")
#: Simulated time between two readings of the signals' states (s); a longer step is used as it is.
SAMPLE_S = 1.0
#: Simulated time between two looks at the stop lines (s). A vehicle found waiting there is
#: dated back to when it stopped (SUMO's waiting time), so this costs no precision; only a wait
#: shorter than this that ends between two looks may be missed.
LOOK_S = 5.0

#: Lanes of a signal and their link indices (state positions) at it.
_Lanes = tuple[tuple[str, tuple[int, ...]], ...]


def sample_period(step_s: float) -> float:
    """Return the time between samples (s): whole steps of ``step_s``, at least ``SAMPLE_S``."""
    return step_s * max(1, math.ceil(SAMPLE_S / step_s - 1e-9))


class MaxRedMeter:
    """The longest red a waiting vehicle saw, per signal, measured live in a running simulation.

    For each link of a signal (one state index), a red spell runs from the link losing its green
    until it is served again (``SERVED_CHARS``). A spell counts from the moment a vehicle stands
    at the front of the link's incoming lane with this link as its next one at the signal
    (SUMO's ``vehicle.getNextTLS``; since it stopped there, by its ``getWaitingTime``, or since
    the red began if it stood there already) to the end of the spell, or to the end of the run.
    So a vehicle on a lane shared by a left turn and a through movement counts only for the link
    it waits for, and a vehicle queued behind another counts once it is at the front.

    Yellow and red-yellow are red here (a halting vehicle may not go); ``s``, ``o`` and ``O`` are
    not (the vehicle may go once the way is clear: what holds it is right of way, not the signal).
    Only vehicles are measured: pedestrian crossings and the walking areas before them are left
    out. States are read every sample (``sample_period``): a figure is exact to one sample.

    Cost: per sample one state query per signal; every ``LOOK_S``, for each incoming lane with a
    red link and no vehicle found waiting at its front yet in this red, a halting count, and for
    a halting lane its vehicles' ids (the front is the last) and, once per new front vehicle, its
    waiting time and next link. A lane whose front vehicle waits at a red link is left alone
    until that link is served: no other vehicle can reach the front before. (A vehicle removed
    from the front, e.g. by a teleport, is not noticed until then: its link's red counts on.)

    Parameters
    ----------
    api
        The ``libsumo`` module or a ``traci`` connection of the running simulation.
    tls_ids
        The signals to measure; their lanes and link indices are read from SUMO
        (``trafficlight.getControlledLinks``), so a network a controller rebuilt is measured as
        it runs.
    """

    def __init__(self, api: Any, tls_ids: list[str]):
        self._tl = api.trafficlight
        self._lane = api.lane
        self._vehicle = api.vehicle
        self._lanes: dict[str, _Lanes] = {}
        for tls in tls_ids:
            by_lane: dict[str, list[int]] = {}
            for index, connections in enumerate(self._tl.getControlledLinks(tls)):
                for in_lane, _, _ in connections:
                    if not in_lane.startswith(":"):
                        by_lane.setdefault(in_lane, []).append(index)
            self._lanes[tls] = tuple((lane, tuple(sorted(set(ks)))) for lane, ks in by_lane.items())
        #: Per signal and state: the links it holds, and the lanes with one, with those links.
        self._held: dict[tuple[str, str], tuple[frozenset[int], _Lanes]] = {}
        #: Per signal: the state last seen.
        self._states: dict[str, str] = dict.fromkeys(self._lanes, "")
        #: Per signal: since when (s) each held link has been red.
        self._red_since: dict[str, dict[int, float]] = {tls: {} for tls in self._lanes}
        #: Per signal: the links whose red spell has a waiting vehicle, and since when (s).
        self._open: dict[str, dict[int, float]] = {tls: {} for tls in self._lanes}
        #: Per signal: the lanes whose front vehicle waits at a held link, and that link.
        self._parked: dict[str, dict[str, int]] = {tls: {} for tls in self._lanes}
        #: Per signal: the held lanes not parked (looked at every ``LOOK_S``), with held links.
        self._pending: dict[str, _Lanes] = dict.fromkeys(self._lanes, ())
        #: Per lane: the front vehicle last seen halting there, its next link (None: none at
        #: this signal) and since when it stood (s).
        self._front: dict[str, tuple[str, int | None, float]] = {}
        self._longest: dict[str, float] = dict.fromkeys(self._lanes, 0.0)
        self._next_look = -math.inf

    def sample(self, now: float) -> None:
        """Read the signals' states at simulation time ``now`` (s); look at stop lines when due.

        Call it after a simulation step and before a controller changes a state, so that the
        states read are those SUMO showed in the step.
        """
        for tls, state in self._states.items():
            shown = self._tl.getRedYellowGreenState(tls)
            if shown != state:
                self._change(tls, shown, now)
        if now >= self._next_look - 1e-9:
            self._look(now)
            self._next_look = now + LOOK_S

    def finish(self, end: float) -> dict[str, float]:
        """Close the spells still open at ``end`` (s); return the longest red per signal (s)."""
        self._look(end)
        for tls, opened in self._open.items():
            for start in opened.values():
                self._longest[tls] = max(self._longest[tls], end - start)
            opened.clear()
        return dict(self._longest)

    def _change(self, tls: str, state: str, now: float) -> None:
        """Close the red spells of the links ``state`` serves; free the lanes waiting for them."""
        self._states[tls] = state
        held, lanes = self._held_lanes(tls, state)
        red_since = self._red_since[tls]
        if held == red_since.keys():
            return  # the same links held (yellow to red, say): no spell starts or ends
        for link in red_since.keys() - held:
            del red_since[link]
        for link in held - red_since.keys():
            red_since[link] = now
        opened, parked = self._open[tls], self._parked[tls]
        for link in opened.keys() - held:
            self._longest[tls] = max(self._longest[tls], now - opened.pop(link))
        for lane in [lane for lane, k in parked.items() if k not in held]:
            del parked[lane]
        self._pending[tls] = tuple(x for x in lanes if x[0] not in parked)

    def _look(self, now: float) -> None:
        """Find the vehicles waiting at the front of red lanes; open their links' spells."""
        halting = self._lane.getLastStepHaltingNumber
        for tls, pending in self._pending.items():
            opened, parked, red_since = self._open[tls], self._parked[tls], self._red_since[tls]
            for lane, held in pending:
                if halting(lane) == 0:
                    continue
                link, stood_since = self._waiting_for(lane, tls, now)
                if link in held:
                    start = max(red_since[link], stood_since)
                    opened[link] = min(opened.get(link, start), start)
                    parked[lane] = link
            if any(lane in parked for lane, _ in pending):
                self._pending[tls] = tuple(x for x in pending if x[0] not in parked)

    def _held_lanes(self, tls: str, state: str) -> tuple[frozenset[int], _Lanes]:
        """Return the links of ``tls`` that ``state`` holds, and the lanes with one (cached)."""
        key = (tls, state)
        found = self._held.get(key)
        if found is None:
            reds = frozenset(k for k, c in enumerate(state) if c not in SERVED_CHARS)
            lanes = tuple(
                (lane, tuple(k for k in links if k in reds))
                for lane, links in self._lanes[tls]
                if reds.intersection(links)
            )
            found = self._held[key] = (reds, lanes)
        return found

    def _waiting_for(self, lane: str, tls: str, now: float) -> tuple[int | None, float]:
        """Return the link of ``tls`` the front vehicle of ``lane`` waits for, and since when.

        The link is None when the front vehicle is still rolling, or goes to no link of ``tls``.
        """
        front = self._lane.getLastStepVehicleIDs(lane)[-1]
        seen = self._front.get(lane)
        if seen is not None and seen[0] == front:
            return seen[1], seen[2]
        waited = self._vehicle.getWaitingTime(front)
        if waited <= 0:
            return None, now  # still rolling up to the stop line; the vehicles halting are behind
        link = next(
            (index for tls_id, index, _, _ in self._vehicle.getNextTLS(front)[:1] if tls_id == tls),
            None,
        )
        self._front[lane] = (front, link, now - waited)
        return link, now - waited
