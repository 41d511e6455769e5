"""Webster's closed-form cycle and proportional splits: the optimizer's reference plan."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..errors import InputError
from ..network import Intersection
from .delay import DEFAULT_ANALYSIS_PERIOD_H
from .demand import IntersectionDemand
from .frame import DEFAULT_CYCLE_MAX_S, DEFAULT_CYCLE_MIN_S, TimingFrame, timing_frame
from .result import (
    STATUS_CLIPPED,
    STATUS_OVERSATURATED,
    STATUS_WEBSTER,
    SignalTiming,
    timing_from_greens,
)


def webster_timing(
    intersection: Intersection,
    demand: IntersectionDemand,
    *,
    cycle_min_s: float = DEFAULT_CYCLE_MIN_S,
    cycle_max_s: float = DEFAULT_CYCLE_MAX_S,
    startup_lost_s: float = 0.0,
    analysis_period_h: float = DEFAULT_ANALYSIS_PERIOD_H,
) -> SignalTiming:
    """Return Webster's plan: cycle C0 = (1.5 L + 5) / (1 − Y), greens in proportion to y.

    y are the phases' critical flow ratios.
    L is the lost time per cycle (s): the change intervals (yellow + all-red) after every green,
    plus ``startup_lost_s`` per green phase. Y is the sum of the critical flow ratios. C0 is
    clipped to the cycle bounds (the shortest cycle also fits every minimum green); when Y >= 1 no
    cycle serves the demand and the plan takes the longest cycle (status ``"oversaturated"``).
    The cycle's green time is shared in proportion to the ratios, each green at least its minimum,
    in whole seconds (largest remainders round up). The plan is evaluated with the same delay
    model as the optimizer.

    Parameters
    ----------
    intersection
        The signal.
    demand
        Its demand, from ``intersection_demand``.
    cycle_min_s, cycle_max_s
        Cycle bounds (s).
    startup_lost_s
        Start-up lost time per green phase (s), added to L.
    analysis_period_h
        Analysis period of the incremental delay (h).

    Raises
    ------
    InfeasibleError
        When the minimum greens and change intervals exceed ``cycle_max_s``.
    InputError
        When ``demand`` belongs to another signal or program, or ``startup_lost_s`` is negative.
    """
    if not (math.isfinite(startup_lost_s) and startup_lost_s >= 0):
        raise InputError(
            f"signal {intersection.tls_id}: start-up lost time {startup_lost_s!r} s, expected >= 0"
        )
    frame = timing_frame(intersection, cycle_min_s=cycle_min_s, cycle_max_s=cycle_max_s)
    check_demand(frame, demand)
    ratios = [p.critical_ratio for p in demand.phases]
    total_ratio = sum(ratios)
    lost = frame.fixed_s + startup_lost_s * len(frame.greens)
    shortest = frame.fixed_s + frame.green_total_min_s
    longest = frame.fixed_s + frame.green_total_max_s
    if total_ratio >= 1.0:
        cycle, status = longest, STATUS_OVERSATURATED
        note = (
            f"Y = {total_ratio:.3f} >= 1: no cycle serves the demand; longest cycle {longest:g} s"
        )
    else:
        webster = (1.5 * lost + 5.0) / (1.0 - total_ratio)
        cycle = min(max(webster, shortest), longest)
        status = STATUS_WEBSTER if cycle == webster else STATUS_CLIPPED
        note = f"Y = {total_ratio:.3f}, L = {lost:g} s, C0 = {webster:.1f} s"
        if status == STATUS_CLIPPED:
            note += f", clipped to {shortest:g}-{longest:g} s"
    total = min(
        max(math.floor(cycle - frame.fixed_s + 0.5), frame.green_total_min_s),
        frame.green_total_max_s,
    )
    return timing_from_greens(
        intersection,
        demand,
        proportional_greens(ratios, frame.min_greens_s, total),
        method="webster",
        status=status,
        notes=(note,),
        inputs=timing_inputs(
            demand, frame, analysis_period_h=analysis_period_h, startup_lost_s=startup_lost_s
        ),
        analysis_period_h=analysis_period_h,
    )


def proportional_greens(
    ratios: Sequence[float] | np.ndarray, min_greens_s: Sequence[int] | np.ndarray, total_s: int
) -> list[int]:
    """Share ``total_s`` whole seconds of green in proportion to ``ratios``, each >= its minimum.

    Phases whose share falls below their minimum (s) get the minimum and the rest is shared
    again; without any ratio the time is shared equally. Largest fractional parts take the
    leftover seconds.
    """
    weight_of = np.asarray(ratios, dtype=float)
    minimum = np.asarray(min_greens_s, dtype=float)
    pinned = np.zeros(len(weight_of), dtype=bool)
    while True:
        free = ~pinned
        left = total_s - minimum[pinned].sum()
        weights = weight_of[free] if weight_of[free].sum() > 0 else np.ones(free.sum())
        shares = np.where(pinned, minimum, 0.0)
        shares[free] = left * weights / weights.sum()
        short = free & (shares < minimum)
        if not short.any():
            break
        pinned |= short
    greens = np.floor(shares + 1e-9).astype(int)
    order = np.argsort(-(shares - greens), kind="stable")
    greens[order[: total_s - greens.sum()]] += 1
    return greens.tolist()


def check_demand(frame: TimingFrame, demand: IntersectionDemand) -> None:
    """Raise ``InputError`` unless ``demand`` was computed for the signal and program of ``frame``.

    Raises
    ------
    InputError
        When the signal or its green phases differ.
    """
    phases = tuple(p.index for p in demand.phases)
    if demand.tls_id != frame.tls_id or phases != frame.greens:
        raise InputError(
            f"demand for signal {demand.tls_id} (green phases {list(phases)}) "
            f"does not match signal {frame.tls_id} (green phases {list(frame.greens)}); "
            "compute it from the same intersection"
        )


def timing_inputs(
    demand: IntersectionDemand, frame: TimingFrame, *, analysis_period_h: float, **options: float
) -> dict:
    """Collect what a timing was computed from, for its provenance (flows in veh/h, times in s)."""
    return {
        "flows_veh_h": dict(demand.flows_veh_h),
        "saturation_veh_h_lane": demand.saturation_veh_h_lane,
        "cycle_min_s": frame.cycle_min_s,
        "cycle_max_s": frame.cycle_max_s,
        "analysis_period_h": analysis_period_h,
        **options,
    }
