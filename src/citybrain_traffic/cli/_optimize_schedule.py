"""``ctraffic optimize``'s schedule candidates: the ``optimized`` controller's plan per 15 minutes.

Checked beside the window's single plans, they are the ``optimized`` controller's cycle-floor
variants (the issue's candidates), the same plans it runs, so what ``optimize`` writes is never
one the controller beat on the check's seeds. A schedule that wins is written as every period's
plan, each valid for its 15 minutes (``valid_from``/``valid_until``, which ``adapter sumo
--plans`` follows), with a SUMO WAUT that switches them and ``schedule.csv``; the timing sheet
shows the busiest period's plan.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from ..experiments.plan_check import PeriodPlans
    from ..network import Network
    from ..plans import TimingPlan
    from ..scenario import Scenario
    from ._optimize_check import Checked

#: What ``--out`` receives besides the plans when a schedule is written.
SCHEDULE_FILES = ("schedule.csv", "plans_waut.add.xml")

#: The design a schedule's plans record (``provenance["demand"]["design"]``).
SCHEDULE_DESIGN = "per 15 min"

#: Columns of ``schedule.csv``: one row per period and signal, times as HH:MM and s.
SCHEDULE_COLUMNS = [
    "start",
    "end",
    "start_s",
    "end_s",
    "intersection",
    "program_id",
    "cycle_s",
    "offset_s",
    "flow_veh_h",
    "max_v_c",
    "delay_s_veh",
    "sheet",
]


@dataclass(frozen=True)
class ScheduleOutput:
    """A schedule the check kept: every period's plan (with the check), the sheet's period."""

    periods: tuple[PeriodPlans, ...]
    shown: int
    end_s: float
    plans: list[TimingPlan]

    @classmethod
    def of(cls, checked: Checked, sc: Scenario | None) -> ScheduleOutput | None:
        """Return the schedule ``checked`` kept, or None when it kept a single plan."""
        if not checked.periods or sc is None:
            return None
        plans = checked.with_check(schedule_plans(checked.periods))
        return cls(checked.periods, checked.shown, sc.end, plans)

    def sheet_flows(self) -> tuple[pd.DataFrame, float, str]:
        """Return the sheet period's flows, its plans' saturation flow, and the sheet's words."""
        from ..optimize.demand import DEFAULT_SATURATION_VEH_H_LANE
        from ..optimize.tod import clock

        period = self.periods[self.shown]
        stop = (
            self.periods[self.shown + 1].start_s
            if self.shown + 1 < len(self.periods)
            else self.end_s
        )
        text = (
            f"{SCHEDULE_DESIGN} (the optimized controller's plans, {len(self.periods)} periods, "
            f"schedule.csv); the sheet shows the busiest, {clock(period.start_s)}-{clock(stop)}, "
            f"at a saturation flow of {DEFAULT_SATURATION_VEH_H_LANE:,.0f} veh/h/lane"
        )
        return period.flows, DEFAULT_SATURATION_VEH_H_LANE, text

    def write(self, out: Path) -> list[Path]:
        """Write ``SCHEDULE_FILES`` into ``out``; return what was written."""
        return write_schedule(out, self.periods, self.shown, self.end_s)


def schedule_label(floor_label: str) -> str:
    """Name the schedule candidate of a cycle floor (``control.optimized.floor_label``)."""
    return f"15-min plans ({floor_label})"


def schedule_candidates(
    network: Network,
    periods: Sequence[tuple[float, pd.DataFrame]],
    *,
    end_s: float,
    demand: dict,
    coordinated: bool | None = None,
) -> dict[str, tuple[list[PeriodPlans], int]]:
    """Return the ``optimized`` controller's plans per period under each cycle floor.

    ``periods`` are each period's start (s) and movement flows (``periods_from_routes``);
    ``end_s`` ends the last; ``coordinated`` as ``period_timings`` takes it. Each plan is valid
    for its period and records ``demand`` in its provenance. With each schedule, the index of its
    busiest period (most veh/h): the sheet's.
    """
    from ..clock import timestamp
    from ..control.optimized import cycle_floors, period_timings
    from ..experiments.plan_check import PeriodPlans
    from ..optimize.demand import DEFAULT_SATURATION_VEH_H_LANE
    from ._optimize_check import signal_demands

    busiest = max(range(len(periods)), key=lambda k: float(periods[k][1]["flow_veh_h"].sum()))
    stops = [start for start, _ in periods[1:]] + [end_s]
    out: dict[str, tuple[list[PeriodPlans], int]] = {}
    for label, floor in cycle_floors().items():
        found = []
        for (start, timings, plans), (_, flows), stop in zip(
            period_timings(network, tuple(periods), floor, coordinated=coordinated), periods, stops
        ):
            info = {**demand, "design": SCHEDULE_DESIGN, "period_s": [start, stop]}
            stamped = tuple(
                replace(
                    p,
                    valid_from=timestamp(start).isoformat(),
                    valid_until=timestamp(stop).isoformat(),
                    provenance={**p.provenance, "demand": info},
                )
                for p in plans
            )
            demands = signal_demands(network, flows, DEFAULT_SATURATION_VEH_H_LANE, list(timings))
            found.append(PeriodPlans(start, dict(timings), stamped, demands, flows))
        out[schedule_label(label)] = (found, busiest)
    return out


def schedule_table(periods: Sequence[PeriodPlans], shown: int, end_s: float) -> pd.DataFrame:
    """Tabulate a schedule: one row per period and signal (``SCHEDULE_COLUMNS``)."""
    from ..optimize.tod import clock

    stops = [p.start_s for p in periods[1:]] + [end_s]
    rows = []
    for k, (period, stop) in enumerate(zip(periods, stops)):
        served = period.flows.groupby("intersection")["flow_veh_h"].sum()
        for plan in period.plans:
            timing = period.timings[plan.tls_id]
            rows.append(
                {
                    "start": clock(period.start_s),
                    "end": clock(stop),
                    "start_s": period.start_s,
                    "end_s": stop,
                    "intersection": plan.tls_id,
                    "program_id": plan.program_id,
                    "cycle_s": plan.cycle_s,
                    "offset_s": plan.offset,
                    "flow_veh_h": round(float(served.get(plan.tls_id, 0.0)), 1),
                    "max_v_c": round(timing.max_degree_of_saturation, 3),
                    "delay_s_veh": round(timing.delay_s, 2),
                    "sheet": k == shown,
                }
            )
    return pd.DataFrame(rows, columns=SCHEDULE_COLUMNS)


def write_schedule(
    out: Path, periods: Sequence[PeriodPlans], shown: int, end_s: float
) -> list[Path]:
    """Write ``schedule.csv`` and the WAUT that switches the programs of ``plans.add.xml``.

    The WAUT's day starts at the first period (``refTime``), so the first plan runs from the
    window's start; after the window the last plan stays until the next day's first switch.
    """
    from ..plans.waut import ProgramSwitch, waut_xml

    table, waut = (out / name for name in SCHEDULE_FILES)
    schedule_table(periods, shown, end_s).to_csv(table, index=False)
    begin = periods[0].start_s
    switches = [ProgramSwitch(p.start_s - begin, _program(p.plans)) for p in periods]
    tls_ids = [plan.tls_id for plan in periods[0].plans]
    waut.write_text(
        waut_xml(switches, tls_ids, period_s=86400.0, waut_id="ctraffic-plans", ref_time_s=begin)
    )
    return [table, waut]


def schedule_plans(periods: Sequence[PeriodPlans]) -> list[TimingPlan]:
    """Return every period's plans, in time order: what ``plans.json`` holds for a schedule."""
    return [plan for period in periods for plan in period.plans]


def _program(plans: Sequence[TimingPlan]) -> str:
    """Return the one program id a period's plans share (a WAUT switches every signal to it)."""
    ids = {p.program_id for p in plans}
    if len(ids) != 1:
        raise ValueError(f"a period's plans have several program ids: {sorted(ids)}")
    return ids.pop()
