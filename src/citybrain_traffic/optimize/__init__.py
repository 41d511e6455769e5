"""Signal timing: flow ratios, Webster's plan, least-delay splits, coordinated offsets."""

from .batch import optimize_network
from .coordination import Coordination, SignalLink, coordinate, signal_links
from .delay import DEFAULT_ANALYSIS_PERIOD_H, phase_delay
from .demand import (
    DEFAULT_SATURATION_VEH_H_LANE,
    IntersectionDemand,
    LaneGroup,
    PhaseDemand,
    flows_by_signal,
    intersection_demand,
)
from .frame import DEFAULT_CYCLE_MAX_S, DEFAULT_CYCLE_MIN_S, TimingFrame, timing_frame
from .result import (
    STATUS_CLIPPED,
    STATUS_NO_DEMAND,
    STATUS_OPTIMAL,
    STATUS_OVERSATURATED,
    STATUS_RELAXED,
    STATUS_WEBSTER,
    PhaseTiming,
    SignalTiming,
    evaluate_program,
    timing_from_greens,
    to_plans,
)
from .splits import DEFAULT_MAX_SATURATION, SplitProblem, optimize_splits
from .webster import proportional_greens, webster_timing

__all__ = [
    "DEFAULT_ANALYSIS_PERIOD_H",
    "DEFAULT_CYCLE_MAX_S",
    "DEFAULT_CYCLE_MIN_S",
    "DEFAULT_MAX_SATURATION",
    "DEFAULT_SATURATION_VEH_H_LANE",
    "STATUS_CLIPPED",
    "STATUS_NO_DEMAND",
    "STATUS_OPTIMAL",
    "STATUS_OVERSATURATED",
    "STATUS_RELAXED",
    "STATUS_WEBSTER",
    "Coordination",
    "IntersectionDemand",
    "LaneGroup",
    "PhaseDemand",
    "PhaseTiming",
    "SignalLink",
    "SignalTiming",
    "SplitProblem",
    "TimingFrame",
    "coordinate",
    "evaluate_program",
    "flows_by_signal",
    "intersection_demand",
    "optimize_network",
    "optimize_splits",
    "phase_delay",
    "proportional_greens",
    "signal_links",
    "timing_frame",
    "timing_from_greens",
    "to_plans",
    "webster_timing",
]
