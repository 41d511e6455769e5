"""What a plan may change at a signal: its greens, between minimum greens and the cycle bounds."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..errors import InfeasibleError, InputError
from ..network import Intersection

#: Shortest and longest cycle (s) a plan may use unless told otherwise; 180 s is the usual
#: ceiling in practice (longer cycles mostly lengthen queues and pedestrian waits).
DEFAULT_CYCLE_MIN_S = 30.0
DEFAULT_CYCLE_MAX_S = 180.0

#: Durations within this many seconds of a whole number count as whole (SUMO stores ms).
_WHOLE_S = 1e-6


@dataclass(frozen=True)
class TimingFrame:
    """The fixed and free parts of one signal's cycle, in whole seconds of green.

    ``greens`` are the program indices of the green phases and ``min_greens_s`` their minimum
    greens (``Phase.min_green``, or the pedestrian time of a green serving a crossing where that
    is longer) rounded up to whole seconds, at least 1 s. The change intervals
    (yellow and all-red) are fixed and take ``fixed_s``; the greens add up to a whole number of
    seconds between ``green_total_min_s`` and ``green_total_max_s``, so the cycle is ``fixed_s``
    plus that total.
    """

    tls_id: str
    greens: tuple[int, ...]
    min_greens_s: tuple[int, ...]
    fixed_s: float
    green_total_min_s: int
    green_total_max_s: int
    cycle_min_s: float
    cycle_max_s: float
    #: The pedestrian minimum green (s) of greens serving crossings, by program index.
    pedestrian_s: Mapping[int, float] = field(default_factory=dict)

    @property
    def green_totals_s(self) -> range:
        """Every whole-second green total the cycle bounds allow (add ``fixed_s`` for the cycle)."""
        return range(self.green_total_min_s, self.green_total_max_s + 1)


def timing_frame(
    intersection: Intersection,
    *,
    cycle_min_s: float = DEFAULT_CYCLE_MIN_S,
    cycle_max_s: float = DEFAULT_CYCLE_MAX_S,
    pedestrian_s: Mapping[int, float] | None = None,
) -> TimingFrame:
    """Return the timing frame of a signal.

    That is its green phases, minimum greens, change intervals and cycle range (s). The
    shortest cycle is the larger of ``cycle_min_s`` and the minimum greens plus the change
    intervals. ``pedestrian_s`` raises the minimum of the greens that serve pedestrian crossings
    to their pedestrian time (s, by program index; ``optimize.pedestrians.pedestrian_minimums``).

    Raises
    ------
    InputError
        When the cycle bounds are not finite, positive and ordered.
    InfeasibleError
        When the minimum greens and change intervals do not fit in ``cycle_max_s``, or the
        program has no green phase.
    """
    tls = intersection.tls_id
    if not (
        math.isfinite(cycle_min_s) and math.isfinite(cycle_max_s) and 0 < cycle_min_s <= cycle_max_s
    ):
        raise InputError(
            f"signal {tls}: cycle bounds {cycle_min_s!r}-{cycle_max_s!r} s, "
            "expected 0 < minimum <= maximum"
        )
    greens = tuple(i for i, phase in enumerate(intersection.phases) if phase.is_green)
    if not greens:
        raise InfeasibleError(
            f"signal {tls}: its program has no green phase, so there is nothing to time"
        )
    walks = pedestrian_s or {}
    unknown = sorted(set(walks) - set(greens))
    if unknown:
        raise InputError(
            f"signal {tls}: pedestrian times given for phase(s) {unknown}, "
            f"which are not green phases {list(greens)}"
        )
    # A green shorter than a second is no green: SUMO would skip it.
    min_greens = tuple(
        max(1, math.ceil(max(intersection.phases[i].min_green, walks.get(i, 0.0)) - _WHOLE_S))
        for i in greens
    )
    fixed = sum(phase.duration for phase in intersection.phases if not phase.is_green)
    need = sum(min_greens) + fixed
    if need > cycle_max_s + _WHOLE_S:
        raise InfeasibleError(
            f"signal {tls}: minimum greens {'+'.join(map(str, min_greens))} s "
            f"{'(pedestrian times included) ' if walks else ''}"
            f"plus change intervals {fixed:g} s need a {need:g} s cycle, "
            f"above the maximum cycle {cycle_max_s:g} s"
        )
    low = max(sum(min_greens), math.ceil(cycle_min_s - fixed - _WHOLE_S))
    high = math.floor(cycle_max_s - fixed + _WHOLE_S)
    if low > high:
        raise InfeasibleError(
            f"signal {tls}: no whole-second green total fits cycle bounds "
            f"{cycle_min_s:g}-{cycle_max_s:g} s with {fixed:g} s of change intervals"
        )
    return TimingFrame(
        tls_id=tls,
        greens=greens,
        min_greens_s=min_greens,
        fixed_s=fixed,
        green_total_min_s=low,
        green_total_max_s=high,
        cycle_min_s=float(cycle_min_s),
        cycle_max_s=float(cycle_max_s),
        pedestrian_s=dict(walks),
    )
