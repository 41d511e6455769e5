"""One signal's greens as the sequencer weighs them: what each serves, its changes, its bounds."""

from __future__ import annotations

from dataclasses import dataclass

from ..network import GREEN_CHARS, Network
from .realtime import MAX_GREEN_FACTOR
from .signal import TrafficSignal

#: Start-up lost time of a green (s): HCM's 2 s, the first vehicles' reaction and acceleration.
STARTUP_LOST_S = 2.0
#: A permitted (``g``) link's share of its lane's vehicles it can serve: it yields to an
#: opposing stream, so a green counts it half.
PERMITTED_SHARE = 0.5
#: The default maximum red, as a multiple of the plan's cycle: a fixed-time plan keeps any
#: movement red less than one cycle, and the real-time layer may stretch every green up to
#: ``MAX_GREEN_FACTOR`` times its plan, so no plan-consistent sequence needs a longer red.
MAX_RED_CYCLES = MAX_GREEN_FACTOR


@dataclass(frozen=True)
class Green:
    """One green phase of a signal: the lanes it discharges and where its links lead."""

    index: int
    #: (incoming lane, outgoing lane, share of the incoming lane's vehicles) per green link; a
    #: permitted link (``g``, yielding to a conflicting stream) counts ``PERMITTED_SHARE`` of it.
    links: tuple[tuple[str, str, float], ...]
    #: The lanes this green serves: one of their links has priority green (``G``), or has
    #: permitted green and the lane never gets priority green.
    lanes: frozenset[str]


class SignalGreens:
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
        self.greens: dict[int, Green] = {}
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
            self.greens[index] = Green(index, links, served)
        self.lanes = tuple(per_lane)
        self.change_s = {
            (a, b): sum(d for _, d in signal.transition(a, b)) + STARTUP_LOST_S
            for a in self.greens
            for b in self.greens
            if a != b
        }
        own = signal.phases
        self.max_green = {i: MAX_GREEN_FACTOR * own[i].duration for i in self.greens}
        #: How long the running green is held (s of green): the time the queue standing when it
        #: was chosen takes to discharge at saturation flow, at most its maximum green.
        self.committed = 0.0
        self.max_red_s = MAX_RED_CYCLES * sum(p.duration for p in own)
        #: The longest change from any green to another, start-up included (s).
        self.longest_change_s = max(self.change_s.values(), default=0.0)
        #: The longest the maximum-red check looks ahead: every green at its minimum after the
        #: longest change (s).
        self.longest_chain_s = sum(signal.min_green(i) + self.longest_change_s for i in self.greens)
        #: Each link: its incoming lane, and the greens that let it go (``G`` or ``g``), the
        #: priority ones first.
        self.link_lanes = {link.index: link.in_lane for link in intersection.links}
        self.link_greens = {
            link.index: sorted(
                (i for i in self.greens if signal.phases[i].state[link.index] in GREEN_CHARS),
                key=lambda i: signal.phases[i].state[link.index] != "G",
            )
            for link in intersection.links
        }
        #: Each green's links (state indices shown ``G`` or ``g``).
        self.green_links = {
            i: frozenset(k for k, c in enumerate(signal.phases[i].state) if c in GREEN_CHARS)
            for i in self.greens
        }
        #: Since when each link has had a vehicle waiting for it at its red (None: none now).
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

    def chain(self, waiting: list[tuple[float, int]], at: int, t: float) -> tuple[int | None, bool]:
        """Serve the ``waiting`` (deadline, link) in order from green ``at`` at time ``t``.

        Return the chain's first green (None: every link is served by ``at``) and whether a
        link would wait past its deadline.
        """
        first = None
        for deadline, link in waiting:
            serving = self.link_greens[link]
            if at in serving:
                if t > deadline and at != self.signal.current:
                    return first, True
                continue
            if self.sequence == "cyclic":
                order = self.order_after(at)
                serving = sorted(serving, key=order.index)
            target = serving[0]
            t += self.change_s[at, target] - STARTUP_LOST_S
            first = target if first is None else first
            if t > deadline:
                return first, True
            t += self.signal.min_green(target)
            at = target
        return first, False
