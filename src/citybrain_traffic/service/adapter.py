"""Reference adapter: a SUMO run whose signals take their plans only from the plan service."""

from __future__ import annotations

import logging
from datetime import timedelta

import pandas as pd

from ..control.base import Controller, RunContext
from ..control.scheduled import ScheduledPlansController
from ..control.switching import PlanSwitcher
from ..errors import InputError
from ..plans import TimingPlan, validity_time, violations
from ..clock import SIM_DAY_ZERO
from .client import PlanClient, ServiceError

log = logging.getLogger("citybrain_traffic.service.adapter")

#: Default time between two pulls of every signal's plan (s of simulation time).
DEFAULT_POLL_S = 60.0


class ServiceAdapter(Controller):
    """Pulls each signal's plan in force from the service and runs it, as a field adapter would.

    At the start and then every ``poll_s`` seconds of simulation time, every signal asks for its
    plan in force at the simulated time (``day`` midnight is simulation time 0), sending the ETag
    it has, so an unchanged plan costs a 304. A new plan is checked against the signal's own
    program (the adapter trusts the server no more than it must) and handed to ``PlanSwitcher``,
    which installs it at the signal's next cycle boundary with its offset. When the service cannot
    be reached or has no plan, the signal keeps what it runs: an adapter never leaves a signal dark.

    Parameters
    ----------
    server, token
        The service's URL and a read token.
    poll_s
        Time between pulls (s of simulation time).
    day
        The date whose midnight is simulation time 0 (for plans valid at times of day).
    """

    name = "service-adapter"
    description = "the signals' plans pulled from the plan service"
    listed = False
    needs_signals = True

    def __init__(
        self,
        server: str,
        token: str | None,
        *,
        poll_s: float = DEFAULT_POLL_S,
        day: pd.Timestamp = SIM_DAY_ZERO,
    ):
        if not poll_s > 0:
            raise ValueError(f"poll_s must be positive, got {poll_s}")
        self.server, self.token, self.poll_s, self.day = server, token, poll_s, day

    def start(self, context: RunContext, now: float) -> float | None:
        """Pull every signal's plan at ``now`` (s); return when to act next (s), None: never."""
        signals = context.signals
        if not signals:
            return None
        self.client = PlanClient(self.server, self.token)
        self.switcher = PlanSwitcher.for_signals(signals)
        self.references = {tls: signal.intersection.phases for tls, signal in signals.items()}
        self.etags: dict[str, str | None] = dict.fromkeys(signals)
        self.stats = {
            "pulls": 0,
            "new": 0,
            "not_modified": 0,
            "no_plan": 0,
            "refused": 0,
            "failed": 0,
        }
        self.events: list[dict] = []
        self.next_poll = now
        return self.step(now)

    def step(self, now: float) -> float | None:
        """Pull when a poll is due, switch plans at cycle boundaries; return the next wake (s)."""
        if now >= self.next_poll - 1e-9:
            self._pull(now)
            while self.next_poll <= now + 1e-9:
                self.next_poll += self.poll_s
        wake = self.switcher.step(now)
        return self.next_poll if wake is None else min(wake, self.next_poll)

    def _pull(self, now: float) -> None:
        at = (self.day + timedelta(seconds=now)).to_pydatetime()
        for tls, etag in self.etags.items():
            self.stats["pulls"] += 1
            try:
                fetched = self.client.plan(tls, at=at, etag=etag)
            except ServiceError as exc:
                self.stats["failed"] += 1
                self._event(now, tls, "failed", str(exc))
                continue
            except InputError as exc:  # a field that is no finite number never gets near SUMO
                self.stats["refused"] += 1
                self._event(now, tls, "refused", str(exc))
                continue
            if fetched.status == 304:
                self.stats["not_modified"] += 1
            elif fetched.status == 404:
                self.stats["no_plan"] += 1
                self._event(now, tls, "no_plan", "no plan in force")
            elif fetched.plan is not None:  # a 200, which always carries its plan
                self._take(now, tls, fetched.plan, fetched.etag, fetched.version)

    def _take(
        self, now: float, tls: str, plan: TimingPlan, etag: str | None, version: int | None
    ) -> None:
        problems = (
            violations(plan, self.references[tls])
            if plan.tls_id == tls
            else [f"plan is for {plan.tls_id}"]
        )
        if problems:
            self.stats["refused"] += 1
            self._event(now, tls, "refused", f"version {version}: " + "; ".join(problems))
            return
        self.stats["new"] += 1
        self.etags[tls] = etag
        self.switcher.submit(plan, now)
        self._event(
            now,
            tls,
            "new",
            f"version {version} (cycle {plan.cycle_s:g} s, offset {plan.offset:g} s)",
        )

    def _event(self, now: float, tls: str, kind: str, detail: str) -> None:
        self.events.append({"time_s": now, "tls_id": tls, "event": kind, "detail": detail})
        if kind in ("failed", "refused"):
            log.warning("t=%g s %s: %s: %s", now, tls, kind, detail)

    def report(self) -> dict:
        """Return the pull counts, the events, and the log of the plans installed ({}: no run)."""
        if not hasattr(self, "switcher"):
            return {}
        return {"stats": self.stats, "events": self.events, "installed": self.switcher.log}


class DirectPlans(ScheduledPlansController):
    """Plans run directly, without the service: what an adapter run is compared with.

    The plans of ``setup.schedule``, run as ``ScheduledPlansController`` runs them; the report
    is shaped as the adapter's.
    """

    name = "plans"
    description = "timing plans from a file, run directly"
    listed = False

    def report(self) -> dict:
        """Return the log of the plans installed, as ``{"installed": [...]}``."""
        return {"installed": super().report()}


def schedule_from(
    plans: list[TimingPlan], *, begin: float, end: float, day: pd.Timestamp = SIM_DAY_ZERO
) -> tuple[tuple[float, TimingPlan], ...]:
    """Return when each plan starts in a run of ``begin``-``end`` s, as (start s, plan).

    A plan starts at its ``valid_from`` (simulation time from ``day`` midnight) or at ``begin``;
    plans valid only outside the window are left out.
    """

    def sim_time(text: str) -> float:
        moment = validity_time(text)
        if moment is None:  # never for text: validity_time gives None only for None
            raise ValueError(f"{text!r} is no validity time")
        return (pd.Timestamp(moment) - day).total_seconds()

    schedule = []
    for plan in plans:
        start = begin if plan.valid_from is None else max(begin, sim_time(plan.valid_from))
        stop = end if plan.valid_until is None else sim_time(plan.valid_until)
        if start < min(stop, end):
            schedule.append((start, plan))
    return tuple(schedule)
