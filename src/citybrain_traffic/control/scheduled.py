"""Run a schedule of validated timing plans (time-of-day plans) as fixed time."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from ..plans import TimingPlan, validate_all
from .base import Controller, RunContext, SimSetup

if TYPE_CHECKING:
    from ..network import Network
    from ..scenario import Scenario
from .switching import PlanSwitcher


class ScheduledPlansController(Controller):
    """Runs a schedule of timing plans, each from its start time.

    Each plan is switched in at its signal's next cycle boundary with its offset kept (see
    ``PlanSwitcher``).

    Subclasses make the schedule in ``fit``; the report is the log of every plan installed.
    """

    needs_signals = True

    def __init__(self, schedule: tuple[tuple[float, TimingPlan], ...] = ()) -> None:
        self.schedule = schedule

    def fit(
        self, scenario: Scenario, network: Network, workdir: Path, *, demand_scale: float
    ) -> Self:
        """Validate every plan of the schedule against the network's program; return self."""
        validate_all([plan for _, plan in self.schedule], network)
        self.setup_ = SimSetup(schedule=tuple(self.schedule))
        return self

    def start(self, context: RunContext, now: float) -> float | None:
        """Install the plans due at ``now``; the others follow at their times."""
        if not context.signals:
            return None
        self.switcher = PlanSwitcher.for_signals(context.signals)
        self.queue = sorted(self.setup.schedule, key=lambda item: (item[0], item[1].tls_id))
        return self.step(now)

    def step(self, now: float) -> float | None:
        """Submit every plan due by ``now`` and let the switcher install them."""
        while self.queue and self.queue[0][0] <= now + 1e-9:
            _, plan = self.queue.pop(0)
            self.switcher.submit(plan, now)
        wakes = [
            t
            for t in (self.switcher.step(now), self.queue[0][0] if self.queue else None)
            if t is not None
        ]
        return min(wakes) if wakes else None

    def report(self) -> Any:
        """Return the log of every plan installed."""
        return self.switcher.log if hasattr(self, "switcher") else []
