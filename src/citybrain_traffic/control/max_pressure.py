"""Max-pressure control (Varaiya 2013): serve the green phase with the largest queue imbalance."""

from __future__ import annotations

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
        self._terms = {sig.id: pressure_terms(sig.intersection, sig.phases) for sig in self.signals}
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

    def step(self, now: float) -> float | None:
        """Serve, at each signal past its minimum green, the green of largest pressure."""
        queue = self.sensing.vehicles(self._lanes)
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
