"""Signal timings as the optimizer returns them: cycle, greens, offset, modelled delay, plan."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..errors import InputError
from ..network import Intersection, Network
from ..plans import TimingPlan, validate
from .delay import DEFAULT_ANALYSIS_PERIOD_H, phase_delay
from .demand import IntersectionDemand

#: Proven optimal over every whole-second cycle and split, every phase within the v/c cap.
STATUS_OPTIMAL = "optimal"
#: No plan keeps every phase within the v/c cap: the cap was raised (see ``SplitProblem``) and
#: the plan is optimal under it.
STATUS_RELAXED = "relaxed"
#: No flow at the signal: shortest cycle, greens shared equally.
STATUS_NO_DEMAND = "no demand"
#: Webster's cycle lies within the cycle bounds.
STATUS_WEBSTER = "webster"
#: Webster's cycle lies outside the cycle bounds and was clipped to them.
STATUS_CLIPPED = "clipped"
#: The critical ratios add up to 1 or more (Y >= 1): no cycle serves the demand; maximum cycle.
STATUS_OVERSATURATED = "oversaturated"


@dataclass(frozen=True)
class PhaseTiming:
    """One green phase of a timing: its start in the cycle (s), its green (s), how it performs.

    ``degree_of_saturation`` is v/c of the phase's critical lane group and ``delay_s`` the mean
    modelled delay of the vehicles it serves (s/veh).
    """

    index: int
    start_s: float
    green_s: float
    critical_ratio: float
    flow_veh_h: float
    degree_of_saturation: float
    delay_s: float


@dataclass(frozen=True)
class SignalTiming:
    """A timing for one signal: cycle, greens, offset, and the modelled delay behind them.

    ``delay_s`` is the flow-weighted mean delay over the green phases (s/veh), the optimizer's
    objective. ``method`` says what produced the timing (``"webster"``, ``"optimizer"``,
    ``"evaluation"``), ``status`` how (one of the ``STATUS_*`` values), ``notes`` why in words,
    and ``inputs`` what it was computed from (flows, saturation flow, cycle bounds, ...).
    ``offset_s`` is when phase 0 starts, in s after a multiple of the cycle.
    """

    tls_id: str
    method: str
    status: str
    cycle_s: float
    phases: tuple[PhaseTiming, ...]
    delay_s: float
    inputs: dict[str, Any] = field(default_factory=dict, compare=False)
    notes: tuple[str, ...] = ()
    offset_s: float = 0.0

    @property
    def greens_s(self) -> dict[int, float]:
        """Green (s) per green phase, keyed by program index."""
        return {p.index: p.green_s for p in self.phases}

    @property
    def max_degree_of_saturation(self) -> float:
        """Highest v/c over the green phases."""
        return max((p.degree_of_saturation for p in self.phases), default=0.0)

    def provenance(self) -> dict[str, Any]:
        """Return how this timing was made, as JSON-ready values (for ``TimingPlan.provenance``)."""
        return {
            "method": self.method,
            "status": self.status,
            "notes": list(self.notes),
            "objective_delay_s_veh": self.delay_s,
            "cycle_s": self.cycle_s,
            "offset_s": self.offset_s,
            "phases": [
                {
                    "index": p.index,
                    "green_s": p.green_s,
                    "critical_ratio": p.critical_ratio,
                    "flow_veh_h": p.flow_veh_h,
                    "v_c": p.degree_of_saturation,
                    "delay_s_veh": p.delay_s,
                }
                for p in self.phases
            ],
            "inputs": self.inputs,
        }

    def plan(self, intersection: Intersection, *, program_id: str | None = None) -> TimingPlan:
        """Return this timing as a static SUMO program, validated against the signal's program.

        State strings, phase order and change intervals are the network's; each green gets its
        new duration (minDur = maxDur = duration, as a fixed-time plan). ``program_id`` defaults
        to ``"ctraffic-<method>"``.

        Raises
        ------
        UnsafePlanError
            When the timing was made for another signal or program than ``intersection``.
        """
        greens = self.greens_s
        phases = tuple(
            replace(phase, duration=greens[i], min_dur=greens[i], max_dur=greens[i])
            if i in greens
            else phase
            for i, phase in enumerate(intersection.phases)
        )
        program = TimingPlan(
            tls_id=self.tls_id,
            program_id=program_id or f"ctraffic-{self.method}",
            phases=phases,
            offset=self.offset_s,
            kind="static",
            provenance=self.provenance(),
        )
        return validate(program, intersection.phases)


def timing_from_greens(
    intersection: Intersection,
    demand: IntersectionDemand,
    greens_s: Sequence[float],
    *,
    method: str = "evaluation",
    status: str = "",
    notes: Sequence[str] = (),
    inputs: Mapping[str, Any] | None = None,
    analysis_period_h: float = DEFAULT_ANALYSIS_PERIOD_H,
) -> SignalTiming:
    """Evaluate greens (s, one per green phase in program order) with the delay model.

    The change intervals keep the network's durations; the cycle is their sum plus the greens.

    Raises
    ------
    InputError
        When the number of greens or the demand does not match the signal's green phases.
    """
    greens_phases = [i for i, phase in enumerate(intersection.phases) if phase.is_green]
    if demand.tls_id != intersection.tls_id or [p.index for p in demand.phases] != greens_phases:
        raise InputError(
            f"demand for signal {demand.tls_id} does not match signal {intersection.tls_id}"
        )
    if len(greens_s) != len(greens_phases):
        raise InputError(
            f"signal {intersection.tls_id}: {len(greens_s)} greens given, "
            f"its program has {len(greens_phases)} green phases"
        )
    durations = [phase.duration for phase in intersection.phases]
    for p, green in zip(demand.phases, greens_s):
        durations[p.index] = float(green)
    cycle = float(sum(durations))
    starts = np.concatenate([[0.0], np.cumsum(durations)[:-1]])
    ratios = np.array([p.critical_ratio for p in demand.phases])
    flows = np.array([p.flow_veh_h for p in demand.phases])
    greens = np.array([durations[p.index] for p in demand.phases])
    x, delay = phase_delay(
        cycle,
        greens,
        ratios,
        [p.lanes for p in demand.phases],
        [p.saturation_veh_h_lane for p in demand.phases],
        analysis_period_h=analysis_period_h,
    )
    total = flows.sum()
    mean = float((flows * delay).sum() / total) if total > 0 else 0.0
    phases = tuple(
        PhaseTiming(
            index=p.index,
            start_s=float(starts[p.index]),
            green_s=float(greens[k]),
            critical_ratio=p.critical_ratio,
            flow_veh_h=p.flow_veh_h,
            degree_of_saturation=float(x[k]),
            delay_s=float(delay[k]),
        )
        for k, p in enumerate(demand.phases)
    )
    return SignalTiming(
        tls_id=demand.tls_id,
        method=method,
        status=status,
        cycle_s=cycle,
        phases=phases,
        delay_s=mean,
        inputs=dict(inputs or {}),
        notes=tuple(notes),
    )


def evaluate_program(
    intersection: Intersection,
    demand: IntersectionDemand,
    program: TimingPlan,
    *,
    analysis_period_h: float = DEFAULT_ANALYSIS_PERIOD_H,
) -> SignalTiming:
    """Evaluate an existing program (e.g. the network's own) with the optimizer's delay model.

    Raises
    ------
    UnsafePlanError
        When ``program`` does not fit the signal's phase structure.
    """
    validate(program, intersection.phases)
    timing = timing_from_greens(
        intersection,
        demand,
        [program.phases[p.index].duration for p in demand.phases],
        status="evaluated",
        notes=(f"program {program.program_id!r} of signal {program.tls_id}",),
        analysis_period_h=analysis_period_h,
    )
    return replace(timing, offset_s=program.offset)


def to_plans(
    timings: Mapping[str, SignalTiming], network: Network, *, program_id: str | None = None
) -> list[TimingPlan]:
    """Return every timing as a static SUMO program validated against its signal.

    See ``SignalTiming.plan``; ``program_id`` defaults to ``"ctraffic-<method>"``.
    """
    return [
        timing.plan(network.intersections[tls], program_id=program_id)
        for tls, timing in timings.items()
    ]
