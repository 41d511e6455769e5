"""The closed loop: sense movement counts, forecast the next interval, optimize, switch plans.

Every control interval the controller reads each movement's stop-line count for the interval
that just ended (``sensing``), forecasts the next interval's counts, optimizes coordinated
plans for them (``optimize``), bounds them for the real-time layer (``realtime``), and hands
them to the plan switcher, which installs each at its signal's next cycle boundary without
cutting a yellow, an all-red or a minimum green. Every decision is logged for audit. The
choices made by simulation (offsets, cycle floor) and the forecaster's training happen in
``experiments``; decision 0006 records the measurements behind the constants.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import pandas as pd

from ..clock import timestamp
from ..network import read_network
from ..plans import TimingPlan, plan_to_dict, validate_all
from ..sim.additionals import induction_loops_xml, write_additional
from .adaptive_setup import (
    blind_greens,
    check_max_red,
    check_params,
    counting_loops,
    describe,
    forecast_counts,
    opening_counts,
)
from .actuated import rebuild_signals
from .base import Controller, RunContext, SimSetup
from .realtime import bounded_plan
from .sensing import QueueLayout, Sensing, SumoSensing
from .sequencing import SEQUENCE_MODES, GreenSequencer

if TYPE_CHECKING:
    from ..network import Network
    from ..scenario import Scenario

#: Length of a control interval (min) unless configured: the usual count and re-plan interval.
DEFAULT_INTERVAL_MIN = 15.0

#: CP-SAT's budget for each re-plan's offsets (deterministic time units, about s of one core):
#: the solve counts against the control time, and a larger one gained nothing (decision 0006).
OFFSET_SEARCH_BUDGET = 0.1

#: The loops count in the last seconds of an interval too; the controller acts this long after
#: the boundary so that SUMO has closed the interval.
_READ_DELAY_S = 1.0


class AdaptiveController(Controller):
    """Sense -> forecast -> optimize -> bound -> switch, every control interval.

    Parameters
    ----------
    model
        A forecast model folder (``ctraffic forecast train``); None forecasts each interval from
        the counts seen so far (their mean over the last hour).
    history
        The counts the model was trained on (``ctraffic collect``): the first interval's plans
        come from their mean for that time of day. None: the network's program runs first.
    interval_min
        The control interval, min: counting bin and re-plan period.
    realtime
        Run each plan as gap-actuated greens within bounds (``realtime``); off, as fixed time.
    offsets
        ``free`` or ``held``: whether the real-time layer holds the plans' cycles and offsets
        (``sequence="plan"`` only).
    sequence
        The real-time layer: ``free`` (any green next, empty greens skipped) or ``cyclic`` (the
        program's order, empty greens skipped), both decided every second from the vehicles on
        the approaches (``sequencing``); ``plan``: each plan as SUMO's gap-actuated program,
        in its order.
    max_red_s
        The longest red a waiting vehicle may see with ``free`` or ``cyclic`` (s); None:
        ``greens.MAX_RED_CYCLES`` times the running plan's cycle.
    phases
        ``own``: the network's phases; ``rebuilt``: the phases ``netconvert --tls.rebuild``
        derives from the junctions' conflicts (as ``actuated-rebuilt`` runs them).
    cycle_floor_s
        The shortest cycle the optimizer may choose (s); None: its own lower bound.
    own_program
        Leave the signals to the network's program (what a check in simulation chose).
    """

    replaces_programs = True
    name = "adaptive"
    description = "closed loop: LightGBM forecast -> OR-Tools plans /15 min, greens sequenced live"
    needs_signals = True

    def __init__(
        self,
        model: Path | None = None,
        history: Path | None = None,
        interval_min: float = DEFAULT_INTERVAL_MIN,
        realtime: bool = True,
        offsets: str = "free",
        cycle_floor_s: float | None = None,
        own_program: bool = False,
        sequence: str = "free",
        max_red_s: float | None = None,
        phases: str = "own",
    ) -> None:
        self.model = model
        self.history = history
        self.interval_min = interval_min
        self.realtime = realtime
        self.offsets = offsets
        self.cycle_floor_s = cycle_floor_s
        self.own_program = own_program
        self.sequence = sequence
        self.max_red_s = max_red_s
        self.phases = phases

    @property
    def sequenced(self) -> bool:
        """Whether the real-time layer chooses the greens' sequence (``free`` or ``cyclic``)."""
        return self.realtime and self.sequence in SEQUENCE_MODES

    @property
    def interval_s(self) -> float:
        """The control interval, s."""
        return float(self.interval_min) * 60.0

    def check_params(self) -> None:
        """Refuse options that cannot work together, before any work is done.

        Raises
        ------
        InputError
            An interval out of range, an unknown offsets mode, or a model that does not
            forecast one control interval ahead on counts of that interval.
        """
        check_params(
            self.model,
            interval_min=self.interval_min,
            offsets=self.offsets,
            sequence=self.sequence,
            max_red_s=self.max_red_s,
            phases=self.phases,
            realtime=self.realtime,
        )

    # -- preparation (main process, once per scenario) -----------------------------------------
    def check_applicable(self, scenario: Scenario, network: Network) -> None:
        """Refuse as every controller that replaces programs does, and a network with no loops.

        Raises
        ------
        NotApplicableError
            Also when no signalized movement has a junction lane to count on.
        """
        super().check_applicable(scenario, network)
        counting_loops(scenario, network)

    def fit(
        self, scenario: Scenario, network: Network, workdir: Path, *, demand_scale: float
    ) -> Self:
        """Place the counting loops, find the greens SUMO cannot gap-control; return self.

        Learns ``loops_`` (loop id, signal, movement), ``blind_`` (green phases per signal that
        keep their planned length), ``opening_`` (first interval's counts from ``history``),
        ``layout_`` (the network's queue layout), ``hold_offsets_``, ``network_`` (the network
        as it runs: with ``phases="rebuilt"``, netconvert's phases) and ``setup_``.
        """
        self.check_params()
        net_file = None
        if self.phases == "rebuilt":
            net_file = rebuild_signals(scenario, workdir / "adaptive-rebuilt.net.xml", "static")
            network = read_network(net_file)
        self.network_ = network
        if self.sequenced and self.max_red_s is not None:
            check_max_red(self.max_red_s, network)
        loops = counting_loops(scenario, network)
        ids = [loop.id.replace("ctraffic_mv_", "ctraffic_ad_") for loop in loops]
        detectors = write_additional(
            workdir / "adaptive-loops.add.xml",
            induction_loops_xml(
                [(loop_id, loop.lane) for loop_id, loop in zip(ids, loops)],
                period_s=self.interval_s,
                begin=scenario.begin,
            ),
        )
        self.loops_ = [(i, loop.tls_id, loop.movement) for i, loop in zip(ids, loops)]
        self.begin_s_ = float(scenario.begin)
        self.layout_ = QueueLayout.of(network)
        self.opening_ = [] if self.history is None else opening_counts(self.history, scenario.begin)
        self.blind_: dict[str, frozenset[int]] = {}
        if self.realtime and not self.sequenced:
            self.blind_ = blind_greens(scenario, network, workdir)
        self.hold_offsets_ = (
            self.realtime
            and not self.sequenced
            and self.offsets == "held"
            and len(network.intersections) > 1
        )
        (workdir / "adaptive.json").write_text(json.dumps(self._fitted_state(), indent=1))
        self.setup_ = SimSetup(
            net_file=net_file, additional_files=(detectors,), notes=(self.describe(network),)
        )
        return self

    def _fitted_state(self) -> dict[str, Any]:
        """Return what ``fit`` learned, as JSON for the preparation folder (an audit record)."""
        return {
            "params": {k: None if v is None else str(v) for k, v in self.get_params().items()},
            "blind": {tls: sorted(indices) for tls, indices in self.blind_.items()},
            "loops": self.loops_,
            "hold_offsets": self.hold_offsets_,
            "opening": self.opening_,
        }

    def describe(self, network: Network) -> str:
        """Return one line on how this fitted controller will run."""
        return describe(self, network)

    # -- the run (worker process) --------------------------------------------------------------
    def start(self, context: RunContext, now: float) -> float | None:
        """Load the forecaster, install the opening plans; return when to act next."""
        self.plans_log: list[dict[str, Any]] = []
        self.failure_count = 0
        if not context.signals or self.own_program:
            return None
        from ..forecast.models import Forecaster
        from .switching import PlanSwitcher

        self.network = self.network_
        self.sensing: Sensing = SumoSensing(context.api, self.loops_)
        self.forecaster = None if self.model is None else Forecaster.load(Path(self.model))
        self.switcher = PlanSwitcher.for_signals(context.signals)
        self.counts_seen: list[tuple[pd.Timestamp, str, str, int]] = []
        self.sequencer: GreenSequencer | None = None
        if self.sequenced:
            self.sequencer = GreenSequencer(
                context.signals,
                self.network,
                self.layout_,
                SumoSensing(context.api),
                sequence=self.sequence,
                max_red_s=self.max_red_s,
            )
            self.next_tick = self.sequencer.start(now)
        if self.opening_:
            # Until the first counts are in, plan from the history's mean of this interval.
            counts = pd.DataFrame(
                self.opening_, columns=["intersection", "movement", "count"]
            ).assign(queued=0.0)
            flows = counts.assign(flow_veh_h=counts["count"] * 3600.0 / self.interval_s)
            self._plan(flows, now, self.begin_s_, "historical profile of the first interval")
        elif self.realtime and not self.sequenced:
            # Until the first counts are in, the network's own program is the plan to bound.
            for tls, intersection in self.network.intersections.items():
                if tls in context.signals:
                    own = TimingPlan(
                        tls_id=tls, program_id="ctraffic-adaptive-own", phases=intersection.phases
                    )
                    self.switcher.submit(self._bounded(own), now)
        self.next_plan = self.begin_s_ + self.interval_s + _READ_DELAY_S
        while self.next_plan <= now:
            self.next_plan += self.interval_s
        return self._wake(now)

    def step(self, now: float) -> float | None:
        """Re-plan at each interval's end; switch plans or greens when their time comes."""
        if now >= self.next_plan - 1e-9:
            self._replan(now)
            self.next_plan += self.interval_s
        if self.sequencer is not None and now >= self.next_tick - 1e-9:
            self.next_tick = self.sequencer.step(now)
        return self._wake(now)

    def _wake(self, now: float) -> float:
        wakes = [self.next_plan, self.switcher.step(now)]
        if self.sequencer is not None:
            wakes.append(self.next_tick)
        return min(w for w in wakes if w is not None)

    def _replan(self, now: float) -> None:
        """Sense the interval that ended, forecast the next, and plan for it."""
        boundary = now - _READ_DELAY_S
        started = timestamp(boundary - self.interval_s)
        last = self.sensing.interval_counts()
        self.counts_seen += [(started, tls, mv, count) for (tls, mv), count in last.items()]
        counts = pd.DataFrame(
            self.counts_seen, columns=["timestamp", "intersection", "movement", "count"]
        )
        origin = timestamp(boundary)
        try:
            forecast, source = self.forecast(counts, origin)
        except Exception as exc:  # a failed forecast must never stop the signals
            self._failed(now, boundary, f"forecast failed: {exc}")
            return
        # Stop-line counts are what the signal served, not what arrived: vehicles still queued
        # at the boundary must be served in the next interval on top of the forecast arrivals.
        halting = self.sensing.halting(self.layout_.approach_lanes)
        waiting = pd.DataFrame(
            self.layout_.queued(last, halting), columns=["intersection", "movement", "queued"]
        )
        forecast = forecast.merge(waiting, on=["intersection", "movement"], how="left").fillna(
            {"queued": 0.0}
        )
        flows = forecast.assign(
            flow_veh_h=(forecast["count"] + forecast["queued"]) * 3600.0 / self.interval_s
        )
        try:
            self._plan(flows, now, boundary, source)
        except Exception as exc:  # an infeasible or failed optimization keeps the running plans
            self._failed(now, boundary, f"optimization failed: {exc}")

    def _failed(self, now: float, boundary: float, reason: str) -> None:
        """Log a failed decision: the running plans stay."""
        self.failure_count += 1
        self.plans_log.append(
            {
                "decided_s": now,
                "for_interval_s": [boundary, boundary + self.interval_s],
                "failed": " ".join(reason.split()),
                "kept": "the running plans",
            }
        )

    def _plan(self, flows: pd.DataFrame, now: float, boundary: float, source: str) -> None:
        """Optimize, bound, validate and submit plans for ``flows`` from ``boundary``; log them.

        ``flows`` holds ``flow_veh_h`` and ``queued`` (vehicles) per signal and movement.
        """
        from ..optimize import optimize_network, to_plans

        hold = self.hold_offsets_
        floor = {} if self.cycle_floor_s is None else {"cycle_min_s": float(self.cycle_floor_s)}
        timings = optimize_network(
            self.network,
            flows[["intersection", "movement", "flow_veh_h"]],
            tls_ids=list(self.network.intersections),
            # One common cycle either way (decision 0006); offsets only for plans that hold them.
            coordinated=len(self.network.intersections) > 1,
            offsets=hold or not self.realtime,
            search_budget=OFFSET_SEARCH_BUDGET,
            **floor,
        )
        plans = to_plans(timings, self.network, program_id=f"ctraffic-adaptive-{int(boundary)}")
        if self.realtime and not self.sequenced:
            plans = [self._bounded(plan, hold=hold) for plan in plans]
        plans = validate_all(plans, self.network)
        modes = ("fixed time", "free", "held", f"{self.sequence} sequence")
        mode = modes[3 if self.sequenced else 2 if hold else 1 if self.realtime else 0]
        for plan in plans:
            if self.sequencer is not None:
                self.sequencer.set_plan(plan)
            else:
                self.switcher.submit(plan, now, hold_offset=hold)
            mine = flows[flows["intersection"] == plan.tls_id]
            self.plans_log.append(
                {
                    "decided_s": now,
                    "offsets": mode,
                    "for_interval_s": [boundary, boundary + self.interval_s],
                    "forecast": source,
                    "forecast_veh_h": round(float(mine["flow_veh_h"].sum()), 1),
                    "queued_veh": round(float(mine["queued"].sum()), 1),
                    **plan_to_dict(plan),
                }
            )

    def _bounded(self, plan: TimingPlan, *, hold: bool = False) -> TimingPlan:
        """Return ``plan`` with the real-time layer's green range for its signal."""
        reference = self.network.intersections[plan.tls_id].phases
        return bounded_plan(plan, reference, self.blind_.get(plan.tls_id, frozenset()), hold=hold)

    def forecast(self, counts: pd.DataFrame, origin: pd.Timestamp) -> tuple[pd.DataFrame, str]:
        """Return every movement's expected count in the interval from ``origin``, and its source.

        See :func:`adaptive_setup.forecast_counts`.
        """
        return forecast_counts(self.forecaster, counts, origin, self.interval_s)

    def report(self) -> dict[str, Any]:
        """Return the log of every decision (plans and failures) and of every switch."""
        sequencer = getattr(self, "sequencer", None)
        return {
            "plans": getattr(self, "plans_log", []),
            "switches": getattr(getattr(self, "switcher", None), "log", []),
            **({"sequencing": sequencer.report()} if sequencer is not None else {}),
        }

    def failures(self) -> int:
        """Return how many decisions failed during the run (the running plans were kept)."""
        return getattr(self, "failure_count", 0)
