"""Check the plans ``ctraffic optimize`` makes for a window in SUMO, and keep the best.

The candidates are the model's plan, the ``optimized`` controller's plans under each of its
cycle floors (``control.optimized.cycle_floors``: a plan per 15 minutes, given as
``schedules``; without them, the model's plan under each floor), and the network's own
program. They run on the scenario's demand with seeds of their own, and ``selection.select``
keeps the least mean delay: the choice the ``optimized`` controller makes, from the same place.
Beside it, per approach, the delay the model promised and the delay SUMO measured.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..control.optimized import cycle_floors, cycle_min_s
from ..control.scheduled import ScheduledPlansController
from ..network import Network
from ..optimize import IntersectionDemand, SignalTiming, phase_delay
from ..plans import TimingPlan
from ..scenario import Scenario
from ..sim.metrics import level_of_service
from .selection import OWN_PROGRAM, choose, select

#: Columns of ``check.csv``, one row per approach (incoming edge) of every timed signal: the
#: model's flow (veh/h) and delay (s/veh) under the written plan, SUMO's over the check seeds,
#: their HCM levels of service, and SUMO's delay under the network's own program (s/veh).
CHECK_COLUMNS = [
    "intersection",
    "approach",
    "modeled_flow_veh_h",
    "simulated_flow_veh_h",
    "modeled_delay_s_veh",
    "simulated_delay_s_veh",
    "modeled_los",
    "simulated_los",
    "existing_delay_s_veh",
]


@dataclass(frozen=True)
class PeriodPlans:
    """One period of a schedule: its start (s), timings, validated plans, demands and flows.

    ``demands`` per signal give the modelled delay; ``flows`` the period's movement flows
    (``intersection``, ``movement``, ``flow_veh_h``).
    """

    start_s: float
    timings: dict[str, SignalTiming]
    plans: tuple[TimingPlan, ...]
    demands: Mapping[str, IntersectionDemand]
    flows: pd.DataFrame = field(compare=False, repr=False)


@dataclass(frozen=True)
class PlanCandidate:
    """One candidate for the window: its label, timings and validated plans.

    A schedule (``periods``, a plan per period run in turn) shows one period's timings and
    plans as ``timings`` and ``plans``: the timing sheet's.
    """

    label: str
    timings: dict[str, SignalTiming]
    plans: tuple[TimingPlan, ...]
    periods: tuple[PeriodPlans, ...] = ()

    def schedule(self, begin_s: float) -> tuple[tuple[float, TimingPlan], ...]:
        """Return when each plan starts (s) in a run from ``begin_s``, as (start, plan)."""
        if not self.periods:
            return tuple((begin_s, plan) for plan in self.plans)
        return tuple((p.start_s, plan) for p in self.periods for plan in p.plans)


@dataclass(frozen=True)
class PlanCheck:
    """What the check in SUMO found.

    ``delays`` is every simulated candidate's mean delay over ``seeds`` (s/veh), the network's
    own program's under ``OWN_PROGRAM``; ``kept`` the least (``selection.choose``) and
    ``best_plan`` the least of the model's candidates. ``same_as`` names the candidates not
    simulated because their plans equal an earlier one's. ``approaches`` is SUMO's delay per
    approach for each label (``selection.Selection.approaches``); ``window_s`` the simulated
    window (s).
    """

    delays: dict[str, float]
    kept: str
    best_plan: str
    seeds: tuple[int, ...]
    window_s: tuple[float, float]
    same_as: dict[str, str] = field(default_factory=dict)
    approaches: dict[str, pd.DataFrame] = field(default_factory=dict, compare=False)

    @property
    def own_program_kept(self) -> bool:
        """Whether the network's own program did better than every plan the model made."""
        return self.kept == OWN_PROGRAM

    def gain_s(self, label: str) -> float:
        """Return how much less delay ``label`` had than the network's own program (s/veh)."""
        return self.delays[OWN_PROGRAM] - self.delays[label]

    def note(self, written: str) -> str:
        """Return one line: every candidate's delay, what was kept, and the margin."""
        tried = ", ".join(f"{label} {delay:.1f}" for label, delay in self.delays.items())
        same = "".join(f"; {a}: same plans as {b}" for a, b in self.same_as.items())
        gain = self.gain_s(written)
        existing = self.delays[OWN_PROGRAM]
        margin = (
            f"{gain:.1f} s/veh ({100 * gain / existing:.0f}%) less than"
            if gain >= 0
            else f"{-gain:.1f} s/veh ({-100 * gain / existing:.0f}%) MORE than"
        )
        return (
            f"checked in SUMO ({len(self.seeds)} seeds of their own, window "
            f"{self.window_s[0]:g}-{self.window_s[1]:g} s, mean delay s/veh): {tried}{same}; "
            f"best plan: {written}, {margin} the network's own program"
        )

    def provenance(self, written: str) -> dict[str, Any]:
        """Return the check as ``plans.json`` records it (``provenance["check"]``)."""
        return {
            "candidates": dict(self.delays),
            "kept": self.kept,
            "written": written,
            "same_as": dict(self.same_as),
            "seeds": list(self.seeds),
            "window_s": list(self.window_s),
            "existing_delay_s": self.delays[OWN_PROGRAM],
            "gain_s": self.gain_s(written),
        }


def window_candidates(
    model: Mapping[str, SignalTiming],
    solve: Callable[[float], Mapping[str, SignalTiming]],
    make_plans: Callable[[Mapping[str, SignalTiming]], Sequence[TimingPlan]],
    extra: Mapping[str, Mapping[str, SignalTiming]] | None = None,
    schedules: Mapping[str, tuple[Sequence[PeriodPlans], int]] | None = None,
) -> tuple[list[PlanCandidate], dict[str, str]]:
    """Return the model's plan, its cycle-floor variants and ``extra``, and which repeat another.

    ``extra`` maps labels to more candidates' timings (e.g. another design's). ``schedules``
    maps labels to the periods of a schedule and the index of the period its sheet shows; given,
    they stand for the cycle floors (the ``optimized`` controller's variants) and ``solve`` is
    not called.

    Parameters
    ----------
    model
        The model's timings (its own cycle choice).
    solve
        The same optimization with the shortest cycle (s) as its argument.
    make_plans
        Turns timings into the validated plans that would be written.

    Returns
    -------
    candidates, same_as
        One candidate per distinct set of plans, the model's first; a floor that gives plans
        equal to an earlier candidate's (the model's cycle was already above it) is named in
        ``same_as`` instead of being simulated twice.
    """
    variants = [
        (label, dict(model) if floor is None else dict(solve(cycle_min_s(floor))))
        for label, floor in cycle_floors().items()
        if floor is None or schedules is None
    ]
    found = [
        PlanCandidate(label, timings, tuple(make_plans(timings)))
        for label, timings in [*variants, *((k, dict(v)) for k, v in (extra or {}).items())]
    ]
    for label, (periods, shown) in (schedules or {}).items():
        sheet = periods[shown]
        found.append(PlanCandidate(label, dict(sheet.timings), sheet.plans, tuple(periods)))
    candidates: list[PlanCandidate] = []
    same_as: dict[str, str] = {}
    for candidate in found:
        twin = next((c.label for c in candidates if _same_runs(c, candidate)), None)
        if twin is None:
            candidates.append(candidate)
        else:
            same_as[candidate.label] = twin
    return candidates, same_as


def check_plans(
    candidates: Sequence[PlanCandidate],
    scenario: Scenario,
    network: Network,
    workdir: Path,
    *,
    demand_scale: float,
    seeds: Sequence[int],
    same_as: Mapping[str, str] | None = None,
) -> PlanCheck:
    """Run every candidate, and the network's own program, in SUMO; keep the least delay.

    Each candidate's plans start at the window's beginning (a schedule's at their period's) and
    are switched in at each signal's next cycle boundary, as ``ctraffic adapter sumo --plans``
    runs them; signals without a plan keep their program. The choice is ``selection.select``'s.

    Raises
    ------
    SimulationError
        When a checking run fails.
    """
    controllers = {
        c.label: ScheduledPlansController(schedule=c.schedule(scenario.begin)).fit(
            scenario, network, workdir, demand_scale=demand_scale
        )
        for c in candidates
    }
    selection = select(
        controllers, scenario, network, workdir, demand_scale=demand_scale, seeds=seeds
    )
    labels = [c.label for c in candidates]
    return PlanCheck(
        delays=selection.delays,
        kept=selection.label,
        best_plan=choose({k: selection.delays[k] for k in labels}, labels),
        seeds=selection.seeds,
        window_s=(scenario.begin, scenario.end),
        same_as=dict(same_as or {}),
        approaches=selection.approaches,
    )


def modeled_approaches(
    timings: Mapping[str, SignalTiming], demands: Mapping[str, IntersectionDemand]
) -> pd.DataFrame:
    """Return the modelled flow (veh/h) and delay (s/veh) per approach of every timed signal.

    Each lane group's delay is the optimizer's delay model (``phase_delay``) at its own flow
    ratio, with the green it gets in the cycle: the greens of its phases, a permitted green
    counted at its gap-acceptance share. An approach's delay is its lane groups' flow-weighted
    mean; lanes that no green serves (turns on red) have no modelled signal delay and are left
    out of it, their flow stays in ``flow_veh_h``.

    Columns: ``tls_id``, ``approach`` (incoming edge), ``flow_veh_h``, ``delay_s``.
    """
    rows = []
    for tls, timing in timings.items():
        greens = timing.greens_s
        for group in demands[tls].lane_groups:
            delay = math.nan
            if group.phases and group.flow_veh_h > 0:
                green = sum(group.share(p) * greens[p] for p in group.phases)
                _, d = phase_delay(
                    timing.cycle_s,
                    min(green, timing.cycle_s),
                    group.flow_ratio,
                    len(group.lanes),
                    demands[tls].saturation_veh_h_lane,
                )
                delay = float(d)
            rows.append((tls, group.edge, group.flow_veh_h, delay))
    groups = pd.DataFrame(rows, columns=["tls_id", "approach", "flow_veh_h", "delay_s"])
    groups["_weighted"] = (groups["delay_s"] * groups["flow_veh_h"]).where(
        groups["delay_s"].notna()
    )
    groups["_served"] = groups["flow_veh_h"].where(groups["delay_s"].notna())
    table = groups.groupby(["tls_id", "approach"], sort=False)[
        ["flow_veh_h", "_weighted", "_served"]
    ].sum(min_count=1)
    table["delay_s"] = table["_weighted"] / table["_served"].where(table["_served"] > 0)
    return table[["flow_veh_h", "delay_s"]].reset_index()


def schedule_approaches(periods: Sequence[PeriodPlans]) -> pd.DataFrame:
    """Return ``modeled_approaches`` over a schedule's periods: flow mean, delay flow-weighted."""
    tables = [modeled_approaches(p.timings, p.demands) for p in periods]
    both = pd.concat(tables, ignore_index=True)
    both = both.assign(
        _weighted=both["delay_s"] * both["flow_veh_h"],
        _served=both["flow_veh_h"].where(both["delay_s"].notna()),
    )
    table = both.groupby(["tls_id", "approach"], sort=False)[
        ["flow_veh_h", "_weighted", "_served"]
    ].sum(min_count=1)
    table["flow_veh_h"] /= len(tables)
    table["delay_s"] = table["_weighted"] / table["_served"].where(table["_served"] > 0)
    return table[["flow_veh_h", "delay_s"]].reset_index()


def approach_comparison(modeled: pd.DataFrame, check: PlanCheck, label: str) -> pd.DataFrame:
    """Put the modelled and the simulated delay per approach side by side (``CHECK_COLUMNS``).

    ``modeled`` is ``modeled_approaches`` of the plans of ``label``; the simulated flow is the
    vehicles that left each approach over the check's seeds, per hour of the window.
    """
    hours = (check.window_s[1] - check.window_s[0]) / 3600.0 * len(check.seeds)
    simulated = check.approaches[label].set_index(["tls_id", "approach"])
    existing = check.approaches[OWN_PROGRAM].set_index(["tls_id", "approach"])["mean_delay_s"]
    table = modeled.set_index(["tls_id", "approach"]).join(simulated, how="left")
    table = table.join(existing.rename("existing_delay_s_veh"), how="left").reset_index()
    out = pd.DataFrame(
        {
            "intersection": table["tls_id"],
            "approach": table["approach"],
            "modeled_flow_veh_h": table["flow_veh_h"],
            "simulated_flow_veh_h": table["vehicles"] / hours,
            "modeled_delay_s_veh": table["delay_s"],
            "simulated_delay_s_veh": table["mean_delay_s"],
            "modeled_los": table["delay_s"].map(level_of_service),
            "simulated_los": table["mean_delay_s"].map(level_of_service),
            "existing_delay_s_veh": table["existing_delay_s_veh"],
        }
    )
    return out[CHECK_COLUMNS]


def _same_runs(a: PlanCandidate, b: PlanCandidate) -> bool:
    """Whether two candidates run the same plans at the same times (ids and provenance aside)."""

    def key(c: PlanCandidate) -> dict[tuple[float, str], tuple]:
        return {(t, p.tls_id): (p.phases, p.offset) for t, p in c.schedule(0.0)}

    return key(a) == key(b)
