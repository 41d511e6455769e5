"""Run a schedule of validated timing plans (time-of-day plans) as fixed time."""

from __future__ import annotations

from .base import Controller
from .signal import TrafficSignal
from .switching import PlanSwitcher


class ScheduledPlansController(Controller):
    """Runs the plans of ``setup.schedule``: each from its start time, switched in at the
    signal's next cycle boundary with its offset kept (see ``PlanSwitcher``).

    Subclasses make the schedule in ``prepare``; the report is the log of every plan installed.
    """

    needs_signals = True

    def start(self, signals: dict[str, TrafficSignal], now: float) -> float | None:
        if not signals:
            return None
        self.switcher = PlanSwitcher.for_signals(signals)
        self.queue = sorted(self.setup.schedule, key=lambda item: (item[0], item[1].tls_id))
        return self.step(now)

    def step(self, now: float) -> float | None:
        while self.queue and self.queue[0][0] <= now + 1e-9:
            _, plan = self.queue.pop(0)
            self.switcher.submit(plan, now)
        wakes = [
            t
            for t in (self.switcher.step(now), self.queue[0][0] if self.queue else None)
            if t is not None
        ]
        return min(wakes) if wakes else None

    def report(self) -> list[dict]:
        return self.switcher.log if hasattr(self, "switcher") else []
