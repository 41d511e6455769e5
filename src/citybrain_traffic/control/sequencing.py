"""Demand-responsive sequencing: which green to serve next, and when, within the safety envelope.

The real-time layer of ``adaptive`` with ``sequence`` ``free`` or ``cyclic`` (decision 0008).
Every tick each signal past its minimum green looks at the vehicles on its approaches (the last
150 m, what cameras or advance loops see) and weighs two things for every green of its program:
how many vehicles it would serve and how long that takes, counting the change interval and the
start-up lost time to reach it. A green it starts is held until the queue it was started for has
had time to discharge (at most the green's maximum); then it keeps the running green while that
green serves vehicles faster than any other could (a green with no vehicles is skipped), up to
the plan's maximum green, and it always serves a movement whose waiting vehicle nears the
maximum red. Greens are
only the program's; every change plays the program's yellow and all-red (``TrafficSignal``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from ..network import GREEN_CHARS, Network
from ..optimize import DEFAULT_SATURATION_VEH_H_LANE
from ..plans import TimingPlan
from .realtime import MAX_GREEN_FACTOR
from .sensing import QueueLayout, Sensing
from .signal import TrafficSignal

#: Sequence modes (``--sequence``): any order, or the program's order with empty greens skipped.
SEQUENCE_MODES = ("free", "cyclic")

#: How often each signal reconsiders its green (s of simulated time): a detector's gap, about.
TICK_S = 1.0
#: Start-up lost time of a green (s): HCM's 2 s, the first vehicles' reaction and acceleration.
STARTUP_LOST_S = 2.0
#: Space a standing vehicle takes (m): SUMO's default length 5 m plus its minimum gap 2.5 m.
VEHICLE_SPACE_M = 7.5
#: A lane whose halting vehicles fill this share of it takes no more: its feeders are blocked.
JAM_SHARE = 0.9
#: A green keeps going while a vehicle is this close to its stop line (s of travel at its speed):
#: the passage time (unit extension) of practice, 2-4 s; SUMO's actuated default is 3 s.
GAP_S = 3.0
#: A permitted (``g``) link's share of its lane's vehicles it can serve: it yields to an
#: opposing stream, so a green counts it half.
PERMITTED_SHARE = 0.5
#: The default maximum red, as a multiple of the plan's cycle: a fixed-time plan keeps any
#: movement red less than one cycle, and the real-time layer may stretch every green up to
#: ``MAX_GREEN_FACTOR`` times its plan, so no plan-consistent sequence needs a longer red.
MAX_RED_CYCLES = MAX_GREEN_FACTOR


@dataclass(frozen=True)
class _Green:
    """One green phase of a signal: the lanes it discharges and where its links lead."""

    index: int
    #: (incoming lane, outgoing lane, share of the incoming lane's vehicles) per green link; a
    #: permitted link (``g``, yielding to a conflicting stream) counts ``PERMITTED_SHARE`` of it.
    links: tuple[tuple[str, str, float], ...]
    #: The lanes this green serves: one of their links has priority green (``G``), or has
    #: permitted green and the lane never gets priority green.
    lanes: frozenset[str]


class _SignalState:
    """What the sequencer knows and remembers about one signal."""

    def __init__(self, signal: TrafficSignal, network: Network, sequence: str) -> None:
        self.signal = signal
        self.sequence = sequence
        intersection = signal.intersection
        per_lane: dict[str, int] = {}
        for link in intersection.links:
            per_lane[link.in_lane] = per_lane.get(link.in_lane, 0) + 1
        priority = {
            link.in_lane
            for index in signal.green_indices
            for link in intersection.links
            if signal.phases[index].state[link.index] == "G"
        }
        self.greens: dict[int, _Green] = {}
        for index in signal.green_indices:
            state = signal.phases[index].state
            green = [link for link in intersection.links if state[link.index] in GREEN_CHARS]
            links = tuple(
                (
                    link.in_lane,
                    link.out_lane,
                    (1.0 if state[link.index] == "G" else PERMITTED_SHARE) / per_lane[link.in_lane],
                )
                for link in green
            )
            served = frozenset(
                link.in_lane
                for link in green
                if state[link.index] == "G" or link.in_lane not in priority
            )
            self.greens[index] = _Green(index, links, served)
        self.lanes = tuple(per_lane)
        self.change_s = {
            (a, b): sum(d for _, d in signal.transition(a, b)) + STARTUP_LOST_S
            for a in self.greens
            for b in self.greens
            if a != b
        }
        own = signal.phases
        self.max_green = {i: MAX_GREEN_FACTOR * own[i].duration for i in self.greens}
        self.planned = {i: own[i].duration for i in self.greens}
        #: How long the running green is held (s of green): the time the queue standing when it
        #: was chosen takes to discharge at saturation flow, at most its maximum green.
        self.committed = 0.0
        self.max_red_s = MAX_RED_CYCLES * sum(p.duration for p in own)
        #: The longest change from any green to another, start-up included (s).
        self.longest_change_s = max(self.change_s.values(), default=0.0)
        #: The longest the maximum-red check looks ahead: every green at its minimum after the
        #: longest change (s).
        self.longest_chain_s = sum(signal.min_green(i) + self.longest_change_s for i in self.greens)
        #: When the current red spell of each lane first had a halting vehicle (None: none yet).
        #: Each link: its incoming lane, and the greens that let it go (``G`` or ``g``), the
        #: priority ones first. A link waits while its lane has a halting vehicle and it is red:
        #: the lane's count cannot tell which link its front vehicle wants, so every red link
        #: of the lane counts as waiting (the bound is kept for whichever it is).
        self.link_lanes = {link.index: link.in_lane for link in intersection.links}
        self.link_greens = {
            link.index: sorted(
                (i for i in self.greens if signal.phases[i].state[link.index] in GREEN_CHARS),
                key=lambda i: signal.phases[i].state[link.index] != "G",
            )
            for link in intersection.links
        }
        self.waiting_since: dict[int, float | None] = dict.fromkeys(self.link_lanes)
        #: The largest maximum red in force during the run (s): the bound the run is held to.
        self.largest_bound_s = 0.0
        self.skips = 0
        self.out_of_order = 0
        self.forced = 0

    def order_after(self, index: int) -> list[int]:
        """Return the greens after ``index`` in program order, wrapping around."""
        order = sorted(self.greens)
        k = order.index(index)
        return order[k + 1 :] + order[:k]


class GreenSequencer:
    """Drives the signals' greens from the vehicles on their approaches, within the envelope.

    Parameters
    ----------
    signals
        The run's signals, which the sequencer takes over.
    network
        The network: lane lengths and speeds.
    layout
        The network's queue layout (which lanes make up each stop-line lane's approach).
    sensing
        What the detectors read.
    sequence
        ``free``: the next green is any of the program's; ``cyclic``: the next in program order
        that has vehicles waiting (empty greens skipped).
    max_red_s
        The longest a waiting vehicle may see red (s); None: ``MAX_RED_CYCLES`` times the
        running plan's cycle (the signal's own program's until a plan comes).
    """

    def __init__(
        self,
        signals: Mapping[str, TrafficSignal],
        network: Network,
        layout: QueueLayout,
        sensing: Sensing,
        *,
        sequence: str = "free",
        max_red_s: float | None = None,
    ) -> None:
        if sequence not in SEQUENCE_MODES:
            raise ValueError(f"sequence {sequence!r}: expected one of {', '.join(SEQUENCE_MODES)}")
        self.sensing = sensing
        self.max_red_s = max_red_s
        self.states = {tls: _SignalState(sig, network, sequence) for tls, sig in signals.items()}
        self.headway_s = 3600.0 / DEFAULT_SATURATION_VEH_H_LANE
        self.approach = {
            lane: layout.queue_lanes.get(lane, [(lane, 1.0)])
            for state in self.states.values()
            for lane in state.lanes
        }
        # Time to cross a lane's approach at the speed limit: how soon its moving vehicles arrive.
        self.crossing_s = {
            lane: sum(network.lanes[up].length_m for up, _ in ups if up in network.lanes)
            / max(network.lanes[lane].speed_m_s if lane in network.lanes else 13.9, 1.0)
            for lane, ups in self.approach.items()
        }
        self.lane_length = {lane: network.lanes[lane].length_m for lane in network.lanes}
        # The lanes on which a vehicle may be within the gap of each stop line: the stop-line
        # lane, and the lanes feeding it (with its length still to go).
        self.watch = {
            lane: [(lane, 0.0)]
            + [
                (up, self.lane_length.get(lane, 0.0))
                for up, _ in ups
                if up != lane and up in self.lane_length
            ]
            for lane, ups in self.approach.items()
            if lane in self.lane_length
        }
        outs = {
            out
            for state in self.states.values()
            for green in state.greens.values()
            for _, out, _ in green.links
        }
        self.jam_vehicles = {
            out: max(1.0, JAM_SHARE * network.lanes[out].length_m / VEHICLE_SPACE_M)
            if out in network.lanes
            else float("inf")
            for out in outs
        }
        self.read_lanes = tuple(
            sorted({up for ups in self.approach.values() for up, _ in ups} | set(outs))
        )
        # Each stop-line lane's approach as a row of weights over the lanes read each tick.
        self.stop_lanes = tuple(sorted(self.approach))
        self.link_lanes = tuple(sorted({lane for st in self.states.values() for lane in st.lanes}))
        column = {lane: j for j, lane in enumerate(self.read_lanes)}
        rows, cols, weights = [], [], []
        for i, lane in enumerate(self.stop_lanes):
            for up, w in self.approach[lane]:
                rows.append(i)
                cols.append(column[up])
                weights.append(w)
        self.approach_matrix = sparse.csr_matrix(
            (weights, (rows, cols)), shape=(len(self.stop_lanes), len(self.read_lanes))
        )

    def set_plan(self, plan: TimingPlan) -> None:
        """Take a validated plan's greens as maximum greens, its cycle for the maximum red."""
        state = self.states.get(plan.tls_id)
        if state is None:
            return
        own = state.signal.phases
        for i in state.greens:
            state.max_green[i] = max(MAX_GREEN_FACTOR * plan.phases[i].duration, own[i].duration)
            state.planned[i] = plan.phases[i].duration
        state.max_red_s = MAX_RED_CYCLES * plan.cycle_s
        state.largest_bound_s = max(state.largest_bound_s, self.max_red(plan.tls_id))

    def max_red(self, tls: str) -> float:
        """Return the maximum red (s) the sequencer keeps at signal ``tls`` now."""
        return self.max_red_s if self.max_red_s is not None else self.states[tls].max_red_s

    def start(self, now: float) -> float:
        """Take the signals over in their current state; return when to act next."""
        for tls, state in self.states.items():
            state.signal.take_over(now)
            state.largest_bound_s = self.max_red(tls)
        return now + TICK_S

    def step(self, now: float) -> float:
        """Let every signal past its minimum green choose its green; return the next tick."""
        vehicles, halting = self.sensing.lane_counts(self.read_lanes)
        counts = np.array([[vehicles[lane], halting[lane]] for lane in self.read_lanes], float)
        summed = (self.approach_matrix @ counts).tolist()
        present = {lane: row[0] for lane, row in zip(self.stop_lanes, summed)}
        queued = {lane: row[1] for lane, row in zip(self.stop_lanes, summed)}
        # Which link each halting lane's front vehicle waits for (only lanes with a halting one).
        fronts = self.sensing.waiting_links(
            [lane for lane in self.link_lanes if halting.get(lane, 0) > 0]
        )
        for state in self.states.values():
            sig = state.signal
            sig.update(now)
            self._track_waiting(state, fronts, now)
            if sig.in_transition or sig.green_time(now) < sig.min_green(sig.current) - 1e-6:
                continue
            target = self._choose(state, vehicles, present, queued, halting, now)
            if target != sig.current:
                self._count(state, target)
                # Hold the new green while its standing queue discharges (not its arrivals).
                _, clearing = self._service(state, target, queued, queued, halting)
                state.committed = min(clearing, state.max_green[target])
                sig.switch_to(target, now)
        return now + TICK_S

    # -- decisions ---------------------------------------------------------------------------
    def _track_waiting(self, state: _SignalState, fronts, now: float) -> None:
        """Note when each red link's waiting began; a link shown green waits for nothing.

        A link waits while the front vehicle of its lane stands waiting for it (``fronts``).
        """
        sig = state.signal
        shown = "" if sig.in_transition else sig.phases[sig.current].state
        tls = sig.id
        for link, lane in state.link_lanes.items():
            if shown and shown[link] in GREEN_CHARS:
                state.waiting_since[link] = None
            elif state.waiting_since[link] is None and fronts.get(lane) == (tls, link):
                state.waiting_since[link] = now

    def _service(self, state: _SignalState, index: int, present, queued, halting):
        """Vehicles green ``index`` would serve now, and the time it takes (s)."""
        per_lane: dict[str, float] = {}
        for lane, out, share in state.greens[index].links:
            if halting[out] >= self.jam_vehicles[out]:
                continue  # spillback: the link's way out is full
            per_lane[lane] = per_lane.get(lane, 0.0) + share * present[lane]
        served = sum(per_lane.values())
        if served <= 0:
            return 0.0, 0.0
        needed = 0.0
        for lane, n in per_lane.items():
            moving = present[lane] - queued[lane] > 0.5
            needed = max(needed, n * self.headway_s, self.crossing_s[lane] if moving else 0.0)
        return served, needed

    def _choose(self, state: _SignalState, vehicles, present, queued, halting, now: float) -> int:
        """Return the green to show next: the one that serves vehicles fastest from now on.

        The running green serves at its present rate (a discharging queue at saturation flow,
        else the vehicles within the gap of the stop line); another green serves the vehicles
        on its approaches after its change interval and start-up. Past its maximum, the running
        green counts nothing.
        """
        sig = state.signal
        current = sig.current
        overdue = self._overdue(state, current, now)
        if overdue is not None:
            state.forced += 1
            return overdue
        rate = 0.0
        if sig.green_time(now) < state.committed - 1e-6:
            return current  # still clearing the queue it was chosen for
        if sig.green_time(now) < state.max_green[current] - 1e-6:
            rate = self._present_rate(state, current, vehicles, queued, halting)
        candidates = (
            [i for i in state.greens if i != current]
            if state.sequence == "free"
            else state.order_after(current)
        )
        best, best_rate = current, rate
        for index in candidates:
            n, t = self._service(state, index, present, queued, halting)
            if n <= 0:
                continue
            r = n / (state.change_s[current, index] + t)
            if r > best_rate + 1e-9:
                best, best_rate = index, r
            if state.sequence == "cyclic":
                break  # the next green in order that has vehicles
        if best != current:
            # Going there first must leave every waiting link within its maximum red.
            forced = self._overdue(state, current, now, then=best)
            if forced is not None:
                state.forced += 1
                return forced
        return best

    def _present_rate(self, state: _SignalState, index: int, vehicles, queued, halting) -> float:
        """Return how fast green ``index`` serves now (veh/s).

        A lane with a queue discharges at saturation flow; another lane serves the vehicles
        within ``GAP_S`` of its stop line, over that gap.
        """
        green = state.greens[index]
        open_lanes = {
            lane
            for lane, out, _ in green.links
            if lane in green.lanes and halting[out] < self.jam_vehicles[out]
        }
        rate = 0.0
        moving = [lane for lane in open_lanes if queued[lane] <= 0]
        rate += (len(open_lanes) - len(moving)) / self.headway_s
        # Only lanes with a vehicle on them are read vehicle by vehicle (the costly reading).
        watched = [up for lane in moving for up, _ in self.watch[lane] if vehicles[up] > 0]
        if watched:
            near = self.sensing.approaching(watched)
            for lane in moving:
                arriving = 0
                for up, beyond in self.watch[lane]:
                    if up not in near:
                        continue
                    length = self.lane_length[up]
                    arriving += sum(
                        1
                        for position, speed in near[up]
                        if length - position + beyond <= GAP_S * max(speed, 1.0)
                    )
                rate += min(arriving / GAP_S, 1.0 / self.headway_s)
        return rate

    def _overdue(
        self, state: _SignalState, current: int, now: float, then: int | None = None
    ) -> int | None:
        """Return the green to serve now so no waiting vehicle sees more than the maximum red.

        Earliest deadline first: the waiting links are taken in the order their maximum red
        runs out, each served by its first green at its minimum after the change to it. If
        that chain, started one tick from now (or after green ``then`` at its minimum, when
        given), would leave some link waiting past its deadline, the green to serve now is the
        first of the chain started now; else None (no change is forced).
        """
        # A margin of two ticks: a link's red counts from its first second of yellow, which the
        # sequencer sees one tick late, and ends at its first second of green.
        limit = self.max_red(state.signal.id) - 2 * TICK_S
        waiting = sorted(
            (since + limit, link)
            for link, since in state.waiting_since.items()
            if since is not None
        )
        if not waiting or waiting[0][0] > now + TICK_S + state.longest_chain_s + 60.0:
            return None  # no chain of changes could reach so far
        if then is None:
            late = self._chain(state, waiting, current, now + TICK_S)[1]
        else:
            ready = now + state.change_s[current, then] - STARTUP_LOST_S
            late = self._chain(state, waiting, then, ready + state.signal.min_green(then))[1]
        return self._chain(state, waiting, current, now)[0] if late else None

    def _chain(
        self, state: _SignalState, waiting: list[tuple[float, int]], at: int, t: float
    ) -> tuple[int | None, bool]:
        """Serve the ``waiting`` (deadline, link) in order from green ``at`` at time ``t``.

        Return the chain's first green (None: every link is served by ``at``) and whether a
        link would wait past its deadline.
        """
        first = None
        for deadline, link in waiting:
            serving = state.link_greens[link]
            if at in serving:
                if t > deadline and at != state.signal.current:
                    return first, True
                continue
            if state.sequence == "cyclic":
                order = state.order_after(at)
                serving = sorted(serving, key=order.index)
            target = serving[0]
            t += state.change_s[at, target] - STARTUP_LOST_S
            first = target if first is None else first
            if t > deadline:
                return first, True
            t += state.signal.min_green(target)
            at = target
        return first, False

    def _count(self, state: _SignalState, target: int) -> None:
        order = state.order_after(state.signal.current)
        if order and target != order[0]:
            if order.index(target) > 0 and state.sequence == "cyclic":
                state.skips += 1
            elif state.sequence == "free":
                state.out_of_order += 1

    def report(self) -> dict[str, dict[str, float]]:
        """Return each signal's counts of out-of-order, skipped and forced changes, and its bound.

        Forced: by the maximum red; the bound: the largest maximum red in force in the run (s).
        """
        return {
            tls: {
                "out_of_order": s.out_of_order,
                "skips": s.skips,
                "forced_by_max_red": s.forced,
                "max_red_bound_s": round(s.largest_bound_s, 1),
            }
            for tls, s in self.states.items()
        }
