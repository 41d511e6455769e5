"""The bounded real-time layer: a timing plan run as gap-actuated greens within its bounds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ..network import Phase
from ..plans import TimingPlan
from .switching import coordinated_phase

#: Shortest green, as a share of the planned green (never below the minimum green): SUMO's loops
#: sit upstream of the stop line and miss the queue stored in front of them (decision 0006).
MIN_GREEN_SHARE = 0.5

#: Longest green, as a multiple of the planned green: the timing practice for maximum greens
#: (1.25-1.5x the design green, FHWA's Signal Timing Manual), generous for a 15-min forecast.
MAX_GREEN_FACTOR = 1.5


def bounded_plan(
    plan: TimingPlan,
    reference: Sequence[Phase],
    blind: frozenset[int] = frozenset(),
    *,
    hold: bool = False,
) -> TimingPlan:
    """Return ``plan`` as a SUMO gap-actuated program bounded by the plan (the real-time layer).

    Each green keeps the plan's length as its nominal duration and may end from
    ``MIN_GREEN_SHARE`` of it on (never below the minimum green of ``reference``, the network's
    phases) once SUMO's detectors see a gap, or run on while vehicles keep coming up to
    ``MAX_GREEN_FACTOR`` times the planned green, and at least as long as the signal's own
    program gives it (a plan made from served counts can under-rate a starved movement;
    decision 0006). The greens listed in ``blind`` (indices SUMO places no controlling detector
    for) keep their planned length. Phase order, states and change intervals are the plan's
    (``validate`` checks them again).

    With ``hold`` (coordinated-actuated, the cycle held at the plan's): a green other than the
    :func:`coordinated_phase` ends by its planned length (its force-off); the coordinated phase,
    timed by the switcher, ranges from its floor up to its planned length plus all the time the
    others may free.
    """
    held = coordinated_phase(plan) if hold else None

    def floor(phase: Phase, ref: Phase) -> float:
        return max(ref.min_green, MIN_GREEN_SHARE * phase.duration)

    freed = sum(
        phase.duration - floor(phase, ref)
        for i, (phase, ref) in enumerate(zip(plan.phases, reference))
        if phase.is_green and i != held and i not in blind
    )
    phases = []
    for i, (phase, ref) in enumerate(zip(plan.phases, reference)):
        if not phase.is_green:
            phases.append(phase)
        elif i == held:
            phases.append(replace(phase, min_dur=floor(phase, ref), max_dur=phase.duration + freed))
        elif i in blind:
            phases.append(replace(phase, min_dur=phase.duration, max_dur=phase.duration))
        elif hold:
            phases.append(replace(phase, min_dur=floor(phase, ref), max_dur=phase.duration))
        else:
            phases.append(
                replace(
                    phase,
                    min_dur=floor(phase, ref),
                    max_dur=max(MAX_GREEN_FACTOR * phase.duration, ref.duration),
                )
            )
    return replace(plan, phases=tuple(phases), kind="actuated")
