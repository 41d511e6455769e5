"""Demand-responsive sequencing: which green to serve next, and when, within the safety envelope.

The real-time layer of ``adaptive`` with ``sequence`` ``free`` or ``cyclic`` (decision 0008);
each signal's greens as it weighs them are in ``greens``.
Every tick each signal past its minimum green looks at the vehicles on its approaches (the last
150 m, what cameras or advance loops see) and weighs two things for every green of its program:
how many vehicles it would serve and how long that takes, counting the change interval and the
start-up lost time to reach it. A green it starts is held until the queue it was started for has
had time to discharge (at most the green's maximum); then it keeps the running green while that
green serves vehicles faster than any other could (a green with no vehicles is skipped), up to
the plan's maximum green, and it always serves a movement whose waiting vehicle nears the
maximum red. Greens are only the program's; every change plays the program's yellow and all-red
(``TrafficSignal``).
"""

from __future__ import annotations

from collections.abc import Mapping


from ..network import Network
from ..optimize import DEFAULT_SATURATION_VEH_H_LANE
from ..plans import TimingPlan
from .realtime import MAX_GREEN_FACTOR
from .sensing import QueueLayout, Sensing
from .greens import MAX_RED_CYCLES, STARTUP_LOST_S, SignalGreens
from .signal import TrafficSignal

#: Sequence modes (``--sequence``): any order, or the program's order with empty greens skipped.
SEQUENCE_MODES = ("free", "cyclic")

#: How often each signal reconsiders its green (s of simulated time): a detector's gap, about.
TICK_S = 1.0
#: Space a standing vehicle takes (m): SUMO's default length 5 m plus its minimum gap 2.5 m.
VEHICLE_SPACE_M = 7.5
#: A lane whose halting vehicles fill this share of it takes no more: its feeders are blocked.
JAM_SHARE = 0.9
#: A green keeps going while a vehicle is this close to its stop line (s of travel at its speed):
#: the passage time (unit extension) of practice, 2-4 s; SUMO's actuated default is 3 s.
GAP_S = 3.0
#: Beyond the chain of every green at its minimum, how far ahead the maximum-red check still
#: looks (s): a chain of deadlines may come back to a green it has served.
CHAIN_SLACK_S = 60.0


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
        self.states = {tls: SignalGreens(sig, network, sequence) for tls, sig in signals.items()}
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
        # Per signal: the lanes read when it decides (its approaches and its links' ways out).
        self.reads = {
            tls: tuple(
                sorted(
                    {up for lane in state.lanes for up, _ in self.approach[lane]}
                    | {out for green in state.greens.values() for _, out, _ in green.links}
                )
            )
            for tls, state in self.states.items()
        }
        # Per signal: its lanes whose approach is one lane, whole, and those summed over several.
        self.single: dict[str, list[tuple[str, str]]] = {tls: [] for tls in self.states}
        self.summed: dict[str, list[tuple[str, list[tuple[str, float]]]]] = {
            tls: [] for tls in self.states
        }
        for tls, state in self.states.items():
            for lane in state.lanes:
                ups = self.approach[lane]
                if len(ups) == 1 and ups[0][1] == 1.0:
                    self.single[tls].append((lane, ups[0][0]))
                else:
                    self.summed[tls].append((lane, ups))

    def set_plan(self, plan: TimingPlan) -> None:
        """Take a validated plan's greens as maximum greens, its cycle for the maximum red."""
        state = self.states.get(plan.tls_id)
        if state is None:
            return
        own = state.signal.phases
        for i in state.greens:
            state.max_green[i] = max(MAX_GREEN_FACTOR * plan.phases[i].duration, own[i].duration)
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
        """Let every signal past its minimum green choose its green; return the next tick.

        Only what a decision needs is read: the vehicles waiting at red links, every tick; the
        approaches of a signal only when it may change (past its minimum green and the hold).
        """
        pending: list[tuple[SignalGreens, int | None]] = []
        for state in self.states.values():
            sig = state.signal
            sig.update(now)
            self._note_waiting(state, now)
            if sig.in_transition or sig.green_time(now) < sig.min_green(sig.current) - 1e-6:
                continue
            forced = self._overdue(state, sig.current, now)
            if forced is not None:
                state.forced += 1
                pending.append((state, forced))
            elif sig.green_time(now) >= state.committed - 1e-6:
                pending.append((state, None))  # no longer clearing the queue it was chosen for
        if not pending:
            return now + TICK_S
        lanes = self.reads[pending[0][0].signal.id]
        if len(pending) > 1:
            lanes = tuple({lane for state, _ in pending for lane in self.reads[state.signal.id]})
        vehicles, halting = self.sensing.lane_counts(lanes)
        for state, forced in pending:
            present, queued = self._approaches(state, vehicles, halting)
            sig = state.signal
            target = forced
            if target is None:
                target = self._choose(state, vehicles, present, queued, halting, now)
            if target != sig.current:
                self._count(state, target)
                # Hold the new green while its standing queue discharges (not its arrivals).
                _, clearing = self._service(state, target, queued, queued, halting)
                state.committed = min(clearing, state.max_green[target])
                sig.switch_to(target, now)
        return now + TICK_S

    def _approaches(self, state: SignalGreens, vehicles, halting):
        """Sum the vehicles, and the halting ones, over each of the signal's lanes' approaches."""
        present: dict[str, float] = {}
        queued: dict[str, float] = {}
        for lane, up in self.single[state.signal.id]:
            present[lane], queued[lane] = vehicles[up], halting[up]
        for lane, ups in self.summed[state.signal.id]:
            present[lane] = sum(w * vehicles[up] for up, w in ups)
            queued[lane] = sum(w * halting[up] for up, w in ups)
        return present, queued

    # -- decisions ---------------------------------------------------------------------------
    def _note_waiting(self, state: SignalGreens, now: float) -> None:
        """Note when each red link's waiting began; a link shown green waits for nothing.

        A link waits while the front vehicle of its lane stands waiting for it (SUMO's
        ``getNextTLS``). Its wait counts from the first tick it is seen, every tick, in a
        change interval too: a wait dated back by the vehicle's own waiting time forced needless
        changes (cologne3 seed 1 went from 21.2 s to 733 s of delay).
        """
        sig = state.signal
        shown = frozenset() if sig.in_transition else state.green_links[sig.current]
        waiting, tls = state.waiting_since, sig.id
        for link in shown:
            if link in waiting:
                waiting[link] = None
        for lane, found in self.sensing.waiting_fronts(state.lanes).items():
            if found is None or found[0][0] != tls:
                continue
            link = found[0][1]
            if state.link_lanes.get(link) == lane and waiting[link] is None and link not in shown:
                waiting[link] = now

    def _service(self, state: SignalGreens, index: int, present, queued, halting):
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

    def _choose(self, state: SignalGreens, vehicles, present, queued, halting, now: float) -> int:
        """Return the green to show next: the one that serves vehicles fastest from now on.

        The running green serves at its present rate (a discharging queue at saturation flow,
        else the vehicles within the gap of the stop line); another green serves the vehicles
        on its approaches after its change interval and start-up. Past its maximum, the running
        green counts nothing.
        """
        sig = state.signal
        current = sig.current
        rate = 0.0
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

    def _present_rate(self, state: SignalGreens, index: int, vehicles, queued, halting) -> float:
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
        self, state: SignalGreens, current: int, now: float, then: int | None = None
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
        if not waiting or waiting[0][0] > now + TICK_S + state.longest_chain_s + CHAIN_SLACK_S:
            return None  # no chain of changes could reach so far
        if then is None:
            late = state.chain(waiting, current, now + TICK_S)[1]
        else:
            ready = now + state.change_s[current, then] - STARTUP_LOST_S
            late = state.chain(waiting, then, ready + state.signal.min_green(then))[1]
        return state.chain(waiting, current, now)[0] if late else None

    def _count(self, state: SignalGreens, target: int) -> None:
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
