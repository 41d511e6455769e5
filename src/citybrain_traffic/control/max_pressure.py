"""Max-pressure control (Varaiya 2013): serve the green phase with the largest queue imbalance."""

from __future__ import annotations

from collections.abc import Iterable

from .base import Controller, RunContext
from .sensing import PressureTerm, SumoSensing, pressure_terms
from .signal import TrafficSignal

#: How often each signal reconsiders its green once the minimum green has passed (s).
DECISION_INTERVAL_S = 5.0


class MaxPressureController(Controller):
    """Every few seconds, each signal serves the green phase of largest pressure.

    A link's pressure is the queue it can discharge minus the queue where it leads: vehicles on
    its incoming lane and the lanes feeding it up to 150 m upstream (shared by the lane's links),
    minus vehicles on its outgoing lane. A phase's pressure sums its green links. The program's
    green phases are the only choices; between them the signal plays the program's change
    intervals (and the program's all-red between conflicting streams where it jumps, see
    ``TrafficSignal.transition``), and a green is held at least its minimum. Ties keep the current
    green.
    """

    replaces_programs = True
    name = "max-pressure"
    description = (
        "max-pressure (Varaiya 2013) over the program's green phases, every 5 s after min green"
    )
    needs_signals = True

    def start(self, context: RunContext, now: float) -> float | None:
        """Compute every signal's pressure terms and take the signals over."""
        self.signals = list(context.signals.values())
        if not self.signals:
            return None
        self.sensing = SumoSensing(context.api)
        self._terms = {sig.id: self.pressure_terms(sig) for sig in self.signals}
        lanes: dict[str, None] = {}
        for per_phase in self._terms.values():
            for terms in per_phase:
                for upstream, out_lane, _ in terms:
                    lanes.update(dict.fromkeys(upstream))
                    lanes[out_lane] = None
        self._lanes = tuple(lanes)
        for sig in self.signals:
            sig.take_over(now)
        return now

    def pressure_terms(self, sig: TrafficSignal) -> list[list[PressureTerm]]:
        """Return, for each phase of ``sig``, the terms its green links add to its pressure."""
        return pressure_terms(sig.intersection, sig.phases)

    def measure(self, lanes: Iterable[str]) -> dict[str, int]:
        """Return the queue on each lane now: the vehicles on it."""
        return self.sensing.vehicles(lanes)

    def step(self, now: float) -> float | None:
        """Serve, at each signal past its minimum green, the green of largest pressure."""
        queue = self.measure(self._lanes)
        next_time = now + DECISION_INTERVAL_S
        for sig in self.signals:
            sig.update(now)
            if not sig.in_transition and sig.green_time(now) >= sig.min_green(sig.current) - 1e-6:
                best = self._best_phase(sig, queue)
                if best != sig.current:
                    sig.switch_to(best, now)
            event = sig.next_event
            if event is not None:
                next_time = min(next_time, event)
        return next_time

    def _best_phase(self, sig: TrafficSignal, queue: dict[str, int]) -> int:
        terms: list[list[PressureTerm]] = self._terms[sig.id]

        def pressure(index: int) -> float:
            return sum(
                share * sum(queue[lane] for lane in upstream) - share * queue[out_lane]
                for upstream, out_lane, share in terms[index]
            )

        best, best_pressure = sig.current, pressure(sig.current)
        for index in sig.green_indices:
            p = pressure(index)
            if p > best_pressure + 1e-9:
                best, best_pressure = index, p
        return best


class MaxPressureQueueController(MaxPressureController):
    """Max-pressure on stop-line queues: Varaiya's rule as the literature runs it.

    A link's weight is the vehicles halting (SUMO's halting number: slower than 0.1 m/s) on its
    incoming lane minus those halting on its outgoing lane; a phase's pressure sums its green
    links. Nothing upstream of the incoming lane counts, so a queue that stands behind a short
    incoming lane is not seen, and nothing keeps a green from feeding a full downstream lane.

    A lane shared by several links counts in full for each of them, as in Varaiya's rule where
    every link has the lane's queue in front of it: a phase that serves two movements of one lane
    weighs that lane twice, and so does a phase that gives green to the lane's only movement
    through two links. A permitted link (``g``) counts as a protected one (``G``), so a protected
    left whose links are also permitted in a through green is served only when that green's
    other links sum to a negative weight. The decisions, transitions and minimum greens are
    :class:`MaxPressureController`'s.
    """

    name = "max-pressure-queue"
    description = (
        "max-pressure on halting queues (incoming minus outgoing lane), every 5 s after min green"
    )

    def pressure_terms(self, sig: TrafficSignal) -> list[list[PressureTerm]]:
        """Return, for each phase of ``sig``, one term per green link: its two lanes, in full."""
        links = sig.intersection.links
        return [
            [
                ((link.in_lane,), link.out_lane, 1.0)
                for link in links
                if phase.state[link.index] in "Gg"
            ]
            if phase.is_green
            else []
            for phase in sig.phases
        ]

    def measure(self, lanes: Iterable[str]) -> dict[str, int]:
        """Return the queue on each lane now: the vehicles halting on it."""
        return self.sensing.halting(lanes)
