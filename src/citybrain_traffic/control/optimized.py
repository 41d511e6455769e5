"""Optimized fixed-time plans: OR-Tools-coordinated time-of-day plans from the scenario's demand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Self

import pandas as pd

from ..flows import flows_from_routes, route_demand
from ..plans import TimingPlan, plans_from_network, validate_all, write_json
from .base import SimSetup
from .scheduled import ScheduledPlansController

if TYPE_CHECKING:
    from ..network import Network
    from ..optimize import SignalTiming
    from ..scenario import Scenario

#: Length of each time-of-day plan's period (s): demand is planned per 15 minutes, the usual
#: count interval; an hourly average leaves the peak quarter underserved.
PLAN_PERIOD_S = 900.0

#: Shortest cycles (s) the experiments try besides the model's own choice when they check the
#: plans in simulation: the span traffic engineers use for urban signals.
CHECKED_CYCLE_FLOORS_S = (60.0, 90.0, 120.0)


def cycle_floors() -> dict[str, float | None]:
    """Return the cycle floors (s) a check in simulation tries, by label.

    The model's own cycle (None), then each of ``CHECKED_CYCLE_FLOORS_S``: the ``optimized``
    controller's candidates and those of ``ctraffic optimize`` alike.
    """
    return {floor_label(f): f for f in (None, *CHECKED_CYCLE_FLOORS_S)}


def floor_label(floor_s: float | None) -> str:
    """Name a cycle floor (s) as the check reports it; None is the model's own cycle."""
    return "the model's cycle" if floor_s is None else f"cycle >={floor_s:g} s"


def cycle_min_s(floor_s: float | None) -> float:
    """Return the shortest cycle (s) the optimizer may use under a cycle floor (s).

    None leaves the optimizer's default; a floor is kept within the optimizer's cycle bounds.
    """
    from ..optimize import DEFAULT_CYCLE_MAX_S, DEFAULT_CYCLE_MIN_S

    if floor_s is None:
        return DEFAULT_CYCLE_MIN_S
    return min(max(floor_s, DEFAULT_CYCLE_MIN_S), DEFAULT_CYCLE_MAX_S)


class OptimizedController(ScheduledPlansController):
    """Fixed-time plans computed offline from the scenario's own demand, one per 15 minutes.

    For each period, the routed demand gives every movement's flow at the time vehicles reach
    the signal; the optimizer chooses a common cycle, delay-optimal splits and offsets for all
    signals (see ``optimize``). The delay model cannot see everything a microsimulation does
    (yielding turns blocking shared lanes, queues spilling back over short links), so, as traffic
    engineers check optimized plans in microsimulation, ``cycle_floor_s`` holds the cycle at or
    above a floor; the experiments layer simulates the candidates (``cycle_floors``) with
    ``selection.select``, the choice ``ctraffic optimize`` makes too, and keeps the best, or the
    network's own program (``own_program``). Every plan is validated,
    written to ``plans.json`` in the preparation folder, and switched in at its signal's next
    cycle boundary with its offset kept.
    """

    replaces_programs = True
    name = "optimized"
    description = (
        "OR-Tools fixed-time plans per 15 min from the scenario's demand "
        "(coordinated, simulation-checked)"
    )

    def __init__(
        self,
        cycle_floor_s: float | None = None,
        periods: tuple[tuple[float, pd.DataFrame], ...] | None = None,
        own_program: bool = False,
    ) -> None:
        self.cycle_floor_s = cycle_floor_s
        self.periods = periods
        self.own_program = own_program

    def fit(
        self, scenario: Scenario, network: Network, workdir: Path, *, demand_scale: float
    ) -> Self:
        """Optimize, validate and write the plans of every period; return self.

        ``periods`` (from :func:`demand_periods`) default to the scenario's routed demand;
        with ``own_program`` the signals keep the network's program (what a check chose).
        """
        schedule: list[tuple[float, TimingPlan]]
        if self.own_program:
            schedule, statuses = [], {"own program kept": 1}
        else:
            periods = self.periods
            if periods is None:
                periods = demand_periods(scenario, network, workdir, demand_scale=demand_scale)
            schedule, statuses = _plans(network, periods, self.cycle_floor_s)
        records = [plan for _, plan in schedule] or plans_from_network(network)
        write_json(workdir / "plans.json", records)
        (workdir / "schedule.json").write_text(
            json.dumps(
                [
                    {"from_s": t, "tls_id": p.tls_id, "program_id": p.program_id}
                    for t, p in schedule
                ],
                indent=1,
            )
        )
        cycles = sorted({round(p.cycle_s) for p in records})
        note = (
            f"optimized: {len(schedule) // max(1, len(network.intersections))} plans per signal, "
            f"cycles {cycles[0]}-{cycles[-1]} s, solver status "
            + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items()))
        )
        self.statuses_ = statuses
        self.setup_ = SimSetup(schedule=tuple(schedule), notes=(note,))
        return self


def demand_periods(
    scenario: Scenario, network: Network, workdir: Path, *, demand_scale: float
) -> tuple[tuple[float, pd.DataFrame], ...]:
    """Return each plan period's start (s) and its movement flows from the routed demand."""
    routed = route_demand(scenario, workdir, demand_scale=demand_scale)
    return periods_from_routes(routed, network, begin=scenario.begin, end=scenario.end)


def periods_from_routes(
    routed: Path, network: Network, *, begin: float, end: float
) -> tuple[tuple[float, pd.DataFrame], ...]:
    """Return each ``PLAN_PERIOD_S`` period's start (s) and movement flows in a routed window."""
    periods = []
    start = begin
    while start < end - 1e-9:
        stop = min(start + PLAN_PERIOD_S, end)
        periods.append((start, flows_from_routes(routed, network, begin=start, end=stop)))
        start = stop
    return tuple(periods)


def period_timings(
    network: Network,
    periods: tuple[tuple[float, pd.DataFrame], ...],
    cycle_floor_s: float | None,
    *,
    coordinated: bool | None = None,
) -> list[tuple[float, dict[str, SignalTiming], list[TimingPlan]]]:
    """Return every period's start (s), timings and validated plans, cycles >= the floor.

    The plans the ``optimized`` controller runs under ``cycle_floor_s`` (``ctraffic optimize``
    checks the same ones as its candidates), coordinated by default when there is more than one
    signal.
    """
    from ..optimize import optimize_network, to_plans

    floor = cycle_min_s(cycle_floor_s)
    tag = "" if cycle_floor_s is None else f"-c{int(floor)}"
    out = []
    for start, flows in periods:
        timings = optimize_network(
            network,
            flows,
            tls_ids=list(network.intersections),
            coordinated=len(network.intersections) > 1 if coordinated is None else coordinated,
            cycle_min_s=floor,
        )
        plans = validate_all(
            to_plans(timings, network, program_id=f"ctraffic-opt-{int(start)}{tag}"), network
        )
        out.append((start, timings, plans))
    return out


def _plans(
    network: Network,
    periods: tuple[tuple[float, pd.DataFrame], ...],
    cycle_floor_s: float | None,
) -> tuple[list[tuple[float, TimingPlan]], dict[str, int]]:
    """Return validated plans for every period, the cycle at least ``cycle_floor_s``."""
    schedule: list[tuple[float, TimingPlan]] = []
    statuses: dict[str, int] = {}
    for start, timings, plans in period_timings(network, periods, cycle_floor_s):
        schedule += [(start, plan) for plan in plans]
        for timing in timings.values():
            statuses[timing.status] = statuses.get(timing.status, 0) + 1
    return schedule, statuses
