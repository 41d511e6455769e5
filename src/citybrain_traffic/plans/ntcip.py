"""NTCIP 1202-shaped CSV of time-of-day plans: patterns, splits, the time-base schedule."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..network import NemaFit
from .plan import TimingPlan
from .utdf import column_timing, phase_columns
from .units import format_seconds

#: NTCIP 1202 ``splitMode`` for a fixed-time plan: every phase times its whole split.
SPLIT_MODE_MAX_RECALL = 4
#: NTCIP 1202 ``timeBaseScheduleDay`` bits: bit 1 is Sunday, bit 2 Monday, ..., bit 7 Saturday.
_DAY_BIT = {"Sun": 1, "Mon": 2, "Tue": 3, "Wed": 4, "Thu": 5, "Fri": 6, "Sat": 7}
_WEEK = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

HEADER = """\
# NTCIP 1202-shaped time-of-day tables (written by ctraffic optimize --tod); times in s.
# [Patterns] one row per signal and pattern (NTCIP patternTable):
#   intersection, pattern (patternNumber), cycle_s (patternCycleTime),
#   offset_s (patternOffsetTime: the plan's offset, as in tod_plans.add.xml),
#   split (patternSplitNumber), program_id (the SUMO programID of the plan)
# [Splits] one row per signal, split and phase (NTCIP splitTable):
#   intersection, split (splitNumber), phase (splitPhase: the NEMA phase 1-8 where the program
#   fits a dual ring, else the plan's green phases numbered 1..n in program order; the D columns
#   of the UTDF export), split_s (splitTime: green + yellow + all-red after it; each ring's
#   phases add up to its pattern's cycle), mode (splitMode: 4 = maximumVehicleRecall, a
#   fixed-time plan), coord_phase (splitCoordPhase: 1 for the phase the offset refers to)
# [Schedule] one row per day plan (NTCIP timeBaseScheduleTable):
#   schedule, days (e.g. Mon-Fri), day_mask (timeBaseScheduleDay: bit 1 Sunday .. bit 7
#   Saturday), day_plan (timeBaseScheduleDayPlan)
# [DayPlans] one row per event (NTCIP timeBaseDayPlanTable with its action's pattern):
#   day_plan (dayPlanNumber), event (dayPlanEventNumber), hour (dayPlanHour),
#   minute (dayPlanMinute), pattern (the pattern in force from then on)
"""


@dataclass(frozen=True)
class DayPlanEvent:
    """From ``hour``:``minute`` on, day plan ``day_plan`` runs pattern ``pattern``."""

    day_plan: int
    hour: int
    minute: int
    pattern: int


def ntcip_text(
    patterns: Sequence[tuple[int, TimingPlan]],
    events: Sequence[DayPlanEvent],
    day_plans: Mapping[int, str],
    *,
    nema: Mapping[str, NemaFit] | None = None,
) -> str:
    """Return the tables described in ``HEADER`` as CSV text with ``[Section]`` lines.

    Parameters
    ----------
    patterns
        (pattern number, plan) for every signal and pattern; the split number is the pattern's.
    events
        The day plans' events.
    day_plans
        Day plan number -> the days it runs, as ``Mon-Fri``, ``Sat-Sun``, ``Mon-Sun`` or ``Tue``.
    nema
        Each signal's NEMA fit (``network.fit_network``): its phases are numbered by it where
        the program fits, as in the UTDF export.
    """
    lines = [*HEADER.rstrip("\n").split("\n"), "[Patterns]"]
    lines.append("intersection,pattern,cycle_s,offset_s,split,program_id")
    for number, plan in patterns:
        lines.append(
            f"{plan.tls_id},{number},{format_seconds(plan.cycle_s)},"
            f"{format_seconds(plan.offset)},{number},{plan.program_id}"
        )
    lines += ["", "[Splits]", "intersection,split,phase,split_s,mode,coord_phase"]
    for number, plan in patterns:
        columns, _ = phase_columns(plan, (nema or {}).get(plan.tls_id))
        first = min(run[0] for run in columns if run)
        for k, (run, timing) in enumerate(zip(columns, column_timing(plan, columns)), start=1):
            if timing is None:
                continue
            lines.append(
                f"{plan.tls_id},{number},{k},{format_seconds(timing['Split'])},"
                f"{SPLIT_MODE_MAX_RECALL},{int(run[0] == first)}"
            )
    lines += ["", "[Schedule]", "schedule,days,day_mask,day_plan"]
    for k, (day_plan, days) in enumerate(sorted(day_plans.items()), start=1):
        lines.append(f"{k},{days},{day_mask(days)},{day_plan}")
    lines += ["", "[DayPlans]", "day_plan,event,hour,minute,pattern"]
    counter: dict[int, int] = {}
    for e in sorted(events, key=lambda e: (e.day_plan, e.hour, e.minute)):
        counter[e.day_plan] = counter.get(e.day_plan, 0) + 1
        lines.append(f"{e.day_plan},{counter[e.day_plan]},{e.hour},{e.minute},{e.pattern}")
    return "\n".join(lines) + "\n"


def write_ntcip(
    path: Path,
    patterns: Sequence[tuple[int, TimingPlan]],
    events: Sequence[DayPlanEvent],
    day_plans: Mapping[int, str],
    *,
    nema: Mapping[str, NemaFit] | None = None,
) -> Path:
    """Write ``ntcip_text`` to ``path`` and return it."""
    path.write_text(ntcip_text(patterns, events, day_plans, nema=nema))
    return path


def day_mask(days: str) -> int:
    """Return NTCIP's ``timeBaseScheduleDay`` bit mask of ``Mon-Fri``, ``Sat-Sun``, ``Tue``..."""
    first, _, last = days.partition("-")
    a, b = _WEEK.index(first), _WEEK.index(last or first)
    return sum(1 << _DAY_BIT[d] for d in _WEEK[a : b + 1])
