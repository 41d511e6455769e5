"""Delay-optimal cycle and whole-second greens for one signal, under a degree-of-saturation cap."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from ..errors import InfeasibleError, InputError
from ..network import Intersection
from .delay import DEFAULT_ANALYSIS_PERIOD_H, phase_delay
from .demand import IntersectionDemand
from .frame import DEFAULT_CYCLE_MAX_S, DEFAULT_CYCLE_MIN_S, timing_frame
from .pedestrians import pedestrian_notes_of
from .storage import SpillbackPenalty
from .result import (
    STATUS_NO_DEMAND,
    STATUS_OPTIMAL,
    STATUS_RELAXED,
    SignalTiming,
    timing_from_greens,
)
from .webster import check_demand, proportional_greens, timing_inputs, webster_timing

#: Highest degree of saturation (v/c) a plan may give a phase when some plan can meet it; the
#: usual design target, leaving headroom for the randomness of arrivals.
DEFAULT_MAX_SATURATION = 0.9

#: Relative tolerance when comparing modelled delays (floating-point noise, not a preference).
_RELATIVE_TOLERANCE = 1e-9
_BISECTION_STEPS = 45


class SplitProblem:
    """The timing problem of one signal over every whole-second cycle its bounds allow.

    The modelled delay (veh·s/h) of each green phase is tabulated for every cycle and green.
    For a given cycle the best greens come from an exact dynamic program over the phases; the
    best cycle from branch and bound: a lower bound for every cycle (the sum of the largest
    marginal delay savings, exact when delay falls convexly with green, as it does below
    saturation) orders the cycles, and the search stops when no bound beats the best plan found.

    Each phase's green is kept at or above its minimum and, through the v/c cap, at or above
    y × C / x_cap. The cap is ``max_saturation`` when some cycle can meet it; when none can
    (``relaxed``) it rises to the least v/c any whole-second plan attains, so oversaturation is
    shared out instead of starving low-flow phases. It is never tighter than the highest v/c of
    Webster's plan for the same flows: the cap stops the optimizer from saturating a phase more
    than the closed-form reference would, and with Webster's plan always admissible the result
    never models more delay than it (pedestrian minimums aside: they bind every plan).

    Parameters
    ----------
    intersection, demand
        The signal and its demand (``intersection_demand``).
    cycle_min_s, cycle_max_s
        Cycle bounds (s).
    max_saturation
        The v/c cap x_max.
    analysis_period_h
        Analysis period of the incremental delay (h).
    pedestrian_s, storage_m, spillback_weight
        Pedestrian minimum green (s) by phase index (``pedestrians.pedestrian_minimums``); queue
        storage (m) by lane (``storage.lane_storage_m``) and weight of ``storage.SpillbackPenalty``.

    Raises
    ------
    InfeasibleError
        When the minimum greens and change intervals exceed ``cycle_max_s``.
    InputError
        For a cap or analysis period that is not positive, or demand of another signal.
    """

    def __init__(
        self,
        intersection: Intersection,
        demand: IntersectionDemand,
        *,
        cycle_min_s: float = DEFAULT_CYCLE_MIN_S,
        cycle_max_s: float = DEFAULT_CYCLE_MAX_S,
        max_saturation: float = DEFAULT_MAX_SATURATION,
        analysis_period_h: float = DEFAULT_ANALYSIS_PERIOD_H,
        pedestrian_s: Mapping[int, float] | None = None,
        storage_m: Mapping[str, float] | None = None,
        spillback_weight: float = 1.0,
    ):
        tls = intersection.tls_id
        for name, value in (
            ("max_saturation", max_saturation),
            ("analysis_period_h", analysis_period_h),
        ):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise InputError(f"signal {tls}: {name} is {value!r}, expected a positive number")
        self.intersection = intersection
        self.demand = demand
        bounds = {"cycle_min_s": cycle_min_s, "cycle_max_s": cycle_max_s}
        self.frame = timing_frame(intersection, **bounds, pedestrian_s=pedestrian_s)
        check_demand(self.frame, demand)
        self.max_saturation = float(max_saturation)
        self.analysis_period_h = float(analysis_period_h)

        self.totals = np.arange(self.frame.green_total_min_s, self.frame.green_total_max_s + 1)
        self.cycles_s = self.totals + self.frame.fixed_s
        self._ratios = np.array([p.critical_ratio for p in demand.phases])
        self._flows = np.array([p.flow_veh_h for p in demand.phases])
        self._mins = np.array(self.frame.min_greens_s)
        self._lanes = np.array([p.lanes for p in demand.phases])
        self._saturation = np.array([p.saturation_veh_h_lane for p in demand.phases])
        #: Webster's whole-second plan for the same flows, the yardstick of ``best``.
        self.reference = webster_timing(
            intersection, demand, **bounds, analysis_period_h=self.analysis_period_h
        )
        self.penalty = SpillbackPenalty(
            demand, storage_m or {}, analysis_period_h, spillback_weight, reference=self.reference
        )
        self.relaxed = not self._ranges(np.full(len(self.totals), self.max_saturation))[2].any()
        self._least = float(self.least_saturation().min()) if self.relaxed else self.max_saturation
        self.cap = max(self._least, self.reference.max_degree_of_saturation)

    def best(self) -> SignalTiming:
        """Return the least-delay plan over every cycle in the bounds (see the class docstring)."""
        if self.demand.flow_veh_h <= 0:
            greens = proportional_greens(np.zeros(len(self._mins)), self._mins, int(self.totals[0]))
            return self._timing(
                greens,
                STATUS_NO_DEMAND,
                "no flow on the green phases: shortest cycle, equal greens",
            )
        return self._timing(self._search(np.full(len(self.totals), self.cap)), *self._status())

    def at_cycle(self, cycle_s: float, *, cap: float | None = None) -> SignalTiming:
        """Return the least-delay greens for a given cycle (s), e.g. a corridor's common cycle.

        The v/c cap defaults to ``max_saturation`` if this cycle can meet it, else the least v/c
        it attains.

        Raises
        ------
        InfeasibleError
            When the cycle is outside the bounds or not the change intervals plus whole seconds,
            or no plan at this cycle meets an explicit ``cap``.
        """
        j = self.cycle_index(cycle_s)
        if cap is None:
            cap = max(self.max_saturation, float(self.least_saturation([j])[0]))
        _, greens = self.solve_at(j, cap)
        note = f"cycle fixed at {cycle_s:g} s"
        if cap > self.max_saturation:
            note += f"; no plan at this cycle meets v/c <= {self.max_saturation:g}, cap {cap:.3f}"
            return self._timing(greens, STATUS_RELAXED, note)
        return self._timing(greens, STATUS_OPTIMAL, note)

    def cycle_index(self, cycle_s: float) -> int:
        """Return the position of ``cycle_s`` in ``cycles_s``; ``InfeasibleError`` if absent."""
        j = int(round(cycle_s - self.cycles_s[0]))
        if not (0 <= j < len(self.cycles_s) and abs(self.cycles_s[j] - cycle_s) < 1e-6):
            raise InfeasibleError(
                f"signal {self.frame.tls_id}: cycle {cycle_s:g} s is not available; its cycles are "
                f"{self.cycles_s[0]:g}-{self.cycles_s[-1]:g} s in whole seconds of green"
            )
        return j

    def lower_bounds(
        self, caps: np.ndarray, rows: Sequence[int] | np.ndarray | None = None
    ) -> np.ndarray:
        """Return a lower bound of the least delay (veh·s/h) at every cycle, given v/c caps.

        ``caps`` holds one v/c cap per cycle.

        ``rows`` limits the bounds to those positions of ``cycles_s`` (and ``caps`` to them);
        the bound is infinite where the cap cannot be met. It is the delay at the lowest allowed
        greens minus the largest marginal savings the spare seconds can buy: exact when every
        phase's delay falls convexly with its green.
        """
        index = np.arange(len(self.totals)) if rows is None else np.asarray(rows)
        caps = np.asarray(caps, dtype=float)
        bounds = np.full(len(index), np.inf)
        feasible = self._ranges(caps, rows=index)[2]
        if not feasible.any():
            return bounds
        caps, index = caps[feasible], index[feasible]
        _, spare, table = self.delay_band(caps, index)
        usable = np.arange(table.shape[2] - 1)[None, None, :] < spare[:, None, None]
        savings = np.where(
            usable, table[:, :, :-1] - np.where(usable, table[:, :, 1:], 0.0), -np.inf
        )
        savings = savings.reshape(len(index), -1)
        savings = -np.sort(-savings, axis=1)
        gained = np.cumsum(np.where(np.isfinite(savings), savings, 0.0), axis=1)
        base = table[:, :, 0].sum(axis=1)
        if gained.shape[1]:
            base = base - np.where(
                spare > 0, gained[np.arange(len(index)), np.maximum(spare - 1, 0)], 0.0
            )
        bounds[feasible] = base
        return bounds

    def solve_at(self, j: int, cap: float) -> tuple[float, list[int]]:
        """Return the least delay (veh·s/h) and its whole-second greens at ``cycles_s[j]``.

        Every phase keeps v/c <= ``cap``. An exact dynamic program over the phases:
        V_p(t) = min_k V_{p-1}(t - k) + D_p(low_p + k).
        """
        caps = np.array([cap])
        if not self._ranges(caps, rows=[j])[2][0]:
            raise InfeasibleError(
                f"signal {self.frame.tls_id}: no plan at cycle {self.cycles_s[j]:g} s "
                f"keeps v/c <= {cap:g}"
            )
        lows, spares, tables = self.delay_band(caps, [j])
        low, spare, table = lows[0], int(spares[0]), tables[0]
        steps = np.arange(spare + 1)
        back = steps[:, None] - steps[None, :]
        value = table[0, steps]
        choices = []
        for p in range(1, len(low)):
            options = np.where(
                back >= 0, value[np.maximum(back, 0)] + table[p, steps][None, :], np.inf
            )
            choice = options.argmin(axis=1)
            value = options[steps, choice]
            choices.append(choice)
        greens = [0] * len(low)
        left = spare
        for p in range(len(low) - 1, 0, -1):
            extra = int(choices[p - 1][left])
            greens[p] = int(low[p]) + extra
            left -= extra
        greens[0] = int(low[0]) + left
        return float(value[spare]), greens

    def _search(self, caps: np.ndarray) -> list[int]:
        bounds = self.lower_bounds(caps)
        best, best_greens = np.inf, []
        for j in np.lexsort((self.cycles_s, bounds)):
            # Delays are never negative, so a relative margin below ``best`` is a plain product.
            if not np.isfinite(bounds[j]) or bounds[j] >= best * (1 - _RELATIVE_TOLERANCE):
                break
            value, greens = self.solve_at(int(j), float(caps[j]))
            if value < best * (1 - _RELATIVE_TOLERANCE):
                best, best_greens = value, greens
        return best_greens

    def _ranges(
        self, caps: np.ndarray, rows: Sequence[int] | np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Find the lowest green per phase, spare seconds and feasibility at the cycles ``rows``.

        ``rows`` defaults to every cycle; ``caps`` holds a v/c cap per row.
        """
        index = slice(None) if rows is None else rows
        cycles = self.cycles_s[index]
        caps = np.asarray(caps, dtype=float)
        need = np.ceil(self._ratios[None, :] * cycles[:, None] / caps[:, None] - 1e-9)
        low = np.maximum(self._mins[None, :], need).astype(int)
        spare = self.totals[index] - low.sum(axis=1)
        return low, spare, spare >= 0

    def delay_band(
        self, caps: np.ndarray, rows: Sequence[int] | np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Tabulate each phase's delay (veh·s/h) at its lowest green plus 0, 1, ... spare seconds.

        The tables behind ``lower_bounds`` and ``solve_at``, for the cycles ``cycles_s[rows]``
        under a v/c cap per row (``caps``), at rows where some plan meets its cap.

        Returns
        -------
        low, spare, table
            Lowest whole-second green (s) per row and phase, spare seconds per row, and
            ``table[row, phase, k]``, the phase's delay at ``low + k`` s of green. Only the
            feasible part is evaluated: the table is infinite for k > spare.
        """
        low, spare, _ = self._ranges(caps, rows=rows)
        extra = np.arange(int(spare.max()) + 1)
        valid = np.broadcast_to(
            (extra[None, :] <= spare[:, None])[:, None, :], (len(spare), len(low[0]), len(extra))
        )
        shape = valid.shape
        cycles = np.broadcast_to(self.cycles_s[rows][:, None, None], shape)[valid]
        greens = (low[:, :, None] + extra[None, None, :])[valid].astype(float)
        _, delay = phase_delay(
            cycles,
            greens,
            np.broadcast_to(self._ratios[None, :, None], shape)[valid],
            np.broadcast_to(self._lanes[None, :, None], shape)[valid],
            np.broadcast_to(self._saturation[None, :, None], shape)[valid],
            analysis_period_h=self.analysis_period_h,
        )
        table = np.full(shape, np.inf)
        table[valid] = np.broadcast_to(self._flows[None, :, None], shape)[valid] * delay
        if self.penalty.parts:
            positions = np.broadcast_to(np.arange(shape[1])[None, :, None], shape)[valid]
            table[valid] += self.penalty(positions, cycles, greens)
        return low, spare, table

    def least_saturation(self, rows: Sequence[int] | np.ndarray | None = None) -> np.ndarray:
        """Return the least v/c cap some whole-second plan meets, at each cycle (or at ``rows``).

        Found by bisection on the cap; the value returned is one the plan meets.
        """
        index = np.arange(len(self.totals)) if rows is None else np.asarray(rows)
        cycles = self.cycles_s[index]
        # At this cap every phase's v/c bound is at most its minimum green, which always fits.
        high = np.maximum(
            (self._ratios[None, :] * cycles[:, None] / self._mins[None, :]).max(axis=1), 1e-12
        )
        low = np.zeros_like(high)
        for _ in range(_BISECTION_STEPS):
            middle = 0.5 * (low + high)
            _, _, ok = self._ranges(middle, rows=index)
            high = np.where(ok, middle, high)
            low = np.where(ok, low, middle)
        return high

    def _status(self) -> tuple[str, str]:
        if self.relaxed:
            return STATUS_RELAXED, (
                f"no plan keeps every phase at v/c <= {self.max_saturation:g} (least attainable "
                f"{self._least:.3f}); cap raised to {self.cap:.3f}"
            )
        if self.cap > self.max_saturation:
            return STATUS_OPTIMAL, (
                f"v/c cap {self.max_saturation:g} raised to {self.cap:.3f}, "
                "the highest v/c of Webster's plan"
            )
        return STATUS_OPTIMAL, f"every phase at v/c <= {self.max_saturation:g}"

    def _timing(self, greens: list[int], status: str, note: str) -> SignalTiming:
        spill = self.penalty.notes(self.frame, greens)
        return timing_from_greens(
            self.intersection,
            self.demand,
            greens,
            method="optimizer",
            status=status,
            notes=(note, *pedestrian_notes_of(self.frame.pedestrian_s), *spill),
            inputs=timing_inputs(
                self.demand,
                self.frame,
                analysis_period_h=self.analysis_period_h,
                max_saturation=self.max_saturation,
            ),
            analysis_period_h=self.analysis_period_h,
        )


def optimize_splits(
    intersection: Intersection,
    demand: IntersectionDemand,
    *,
    cycle_min_s: float = DEFAULT_CYCLE_MIN_S,
    cycle_max_s: float = DEFAULT_CYCLE_MAX_S,
    max_saturation: float = DEFAULT_MAX_SATURATION,
    analysis_period_h: float = DEFAULT_ANALYSIS_PERIOD_H,
    cycle_s: float | None = None,
    pedestrian_s: Mapping[int, float] | None = None,
    storage_m: Mapping[str, float] | None = None,
    spillback_weight: float = 1.0,
) -> SignalTiming:
    """Return the cycle and whole-second greens of least modelled delay for one signal.

    Minimises the flow-weighted mean delay (``delay.phase_delay``: uniform plus incremental
    delay) over every whole-second cycle within the bounds and every split with each green at
    least its minimum, the change intervals kept exactly, and every phase at v/c <= the cap (see
    ``SplitProblem``). The search space holds Webster's whole-second plan for the same flows
    whenever that plan keeps within the cap (always when the cap is relaxed), so the result then
    never has more modelled delay than Webster's. When Webster's plan breaks a cap other plans
    meet, it is not admissible; if it has less delay, the notes say so. The timing's ``status``
    is ``"optimal"``, ``"relaxed"`` or ``"no demand"``.

    Parameters
    ----------
    intersection, demand, cycle_min_s, cycle_max_s, max_saturation, analysis_period_h,
    pedestrian_s, storage_m, spillback_weight
        As for ``SplitProblem`` (a cap no plan meets is relaxed: status ``"relaxed"``).
    cycle_s
        Fix the cycle (s) instead of choosing it (no Webster comparison then).

    Raises
    ------
    InfeasibleError
        When minimum greens plus change intervals exceed ``cycle_max_s``, or ``cycle_s`` is not
        an available cycle.
    InputError
        For invalid options or demand of another signal.
    """
    problem = SplitProblem(
        intersection,
        demand,
        cycle_min_s=cycle_min_s,
        cycle_max_s=cycle_max_s,
        max_saturation=max_saturation,
        analysis_period_h=analysis_period_h,
        pedestrian_s=pedestrian_s,
        storage_m=storage_m,
        spillback_weight=spillback_weight,
    )
    return problem.best() if cycle_s is None else problem.at_cycle(cycle_s)
