"""The network as an emergency vehicle drives it, and its routes: the one place they are chosen.

A route is the fastest at the edges' speed limits (free-flow travel time) over edges and
connections that allow SUMO's class ``emergency``, turning only where the lanes allow it: after
entering an edge on the lanes its connection reaches, a vehicle must be able to reach a lane
connecting to the next edge, changing lanes at most once per ``LANE_CHANGE_M`` of the edge (a
route SUMO's edge-level routers accept, right onto a 9 m edge and left at its end across a lane,
is one no vehicle drives: it waits at the end of its lane).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..network import Network

#: SUMO's vehicle class of an emergency vehicle.
EMERGENCY_CLASS = "emergency"
#: Length of edge (m) a vehicle needs per lane it changes to turn where it must.
LANE_CHANGE_M = 20.0
#: Shortest edge (m) a drawn vehicle leaves from or drives to: a street, not the stub of a
#: junction (a vehicle inserted on one enters the junction at once, into the queue beyond).
STREET_M = 50.0

#: A state of the search: the edge before ("" at the origin) and the edge.
_State = tuple[str, str]


@dataclass(frozen=True)
class Reach:
    """How the fastest route reaches an edge: free-flow time (s) to its end, signals crossed."""

    time_s: float
    signals: int
    #: The search state it ends in, and the one before (to rebuild the route).
    state: _State
    previous: _State | None


class RoadGraph:
    """The network's edges as an emergency vehicle may use them, and its fastest routes.

    Parameters
    ----------
    network
        The network (its signals' links say which turns cross a signal).
    """

    def __init__(self, network: Network):
        import sumolib

        net = sumolib.net.readNet(str(network.path), withInternal=False)
        usable = [e for e in net.getEdges() if e.getFunction() == "" and e.allows(EMERGENCY_CLASS)]
        names = {e.getID() for e in usable}
        self._time = {e.getID(): e.getLength() / max(e.getSpeed(), 0.1) for e in usable}
        self._length = {e.getID(): e.getLength() for e in usable}
        self._next: dict[str, tuple[str, ...]] = {}
        #: Per turn (edge, next edge): the lanes of the edge it leaves from, of the next it reaches.
        self._lanes: dict[tuple[str, str], tuple[frozenset[int], frozenset[int]]] = {}
        ins: dict[str, bool] = dict.fromkeys(names, False)
        outs: dict[str, bool] = dict.fromkeys(names, False)
        for edge in usable:
            allowed = edge.getAllowedOutgoing(EMERGENCY_CLASS)
            targets = sorted(t.getID() for t in allowed if t.getID() in names)
            self._next[edge.getID()] = tuple(targets)
            for target, connections in allowed.items():
                if target.getID() not in names:
                    continue
                self._lanes[edge.getID(), target.getID()] = (
                    frozenset(c.getFromLane().getIndex() for c in connections),
                    frozenset(c.getToLane().getIndex() for c in connections),
                )
                if any(c.getDirection() not in ("t", "T") for c in connections):
                    outs[edge.getID()] = ins[target.getID()] = True
        self._signal_turns = {
            (link.in_edge, link.out_edge)
            for intersection in network.intersections.values()
            for link in intersection.links
        }
        self.edges = frozenset(names)
        streets = {e for e in names if self._length[e] >= STREET_M}
        #: Streets (``STREET_M``) with a way in and a way out (neither source nor sink), sorted.
        self.interior = tuple(sorted(e for e in streets if ins[e] and outs[e]))
        #: Streets with a way out, and streets with a way in, sorted: the wider set.
        self.with_exit = tuple(sorted(e for e in streets if outs[e]))
        self.with_entry = tuple(sorted(e for e in streets if ins[e]))
        self._reach: dict[str, dict[str, Reach]] = {}
        self._states: dict[str, dict[_State, Reach]] = {}
        self._all_ids = {e.getID() for e in net.getEdges()}

    def known(self, edge: str) -> bool:
        """Whether ``edge`` is an edge of the network (usable by an emergency vehicle or not)."""
        return edge in self._all_ids

    def _turns(self, before: str, edge: str, target: str) -> bool:
        """Whether a vehicle that entered ``edge`` from ``before`` can turn onto ``target``."""
        if not before:
            return True  # it departs on the best lane
        entered = self._lanes[before, edge][1]
        leaving = self._lanes[edge, target][0]
        changes = min(abs(a - b) for a in entered for b in leaving)
        return changes * LANE_CHANGE_M <= self._length[edge]

    def reachable(self, origin: str) -> dict[str, Reach]:
        """Return every edge reachable from ``origin``, with the fastest route to it."""
        if origin not in self._reach:
            start: _State = ("", origin)
            labels = {start: Reach(self._time[origin], 0, start, None)}
            heap = [(labels[start].time_s, start)]
            done: set[_State] = set()
            best: dict[str, Reach] = {}
            while heap:
                time_s, state = heapq.heappop(heap)
                if state in done:
                    continue
                done.add(state)
                label = labels[state]
                before, edge = state
                best.setdefault(edge, label)
                for target in self._next[edge]:
                    if not self._turns(before, edge, target):
                        continue
                    arrive = time_s + self._time[target]
                    nxt = (edge, target)
                    if nxt not in labels or arrive < labels[nxt].time_s - 1e-9:
                        crossed = label.signals + ((edge, target) in self._signal_turns)
                        labels[nxt] = Reach(arrive, crossed, nxt, state)
                        heapq.heappush(heap, (arrive, nxt))
            self._reach[origin] = best
            self._states[origin] = labels
        return self._reach[origin]

    def route(self, from_edge: str, to_edge: str) -> tuple[str, ...] | None:
        """Return the fastest route from one edge to another (None: none)."""
        reach = self.reachable(from_edge).get(to_edge)
        if reach is None:
            return None
        labels = self._states[from_edge]
        edges, state = [], reach.state
        while True:
            edges.append(state[1])
            previous = labels[state].previous
            if previous is None:
                return tuple(reversed(edges))
            state = previous
