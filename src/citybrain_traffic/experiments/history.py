"""A history of simulated days of movement counts, varying day to day, for training forecasters."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from ..clock import SIM_DAY_ZERO
from ..control.fixed import FixedController
from ..errors import InputError
from ..harness.matrix import run_matrix
from ..harness.runner import RunResult, RunSpec
from ..harness.seeds import MAX_SEED
from ..network import Network
from ..scenario import Scenario
from ..sim.additionals import speed_change_xml, write_additional

#: Demand level by day of week (Mon..Sun) relative to the scenario's demand: a weekday peak
#: as modelled, a lighter Saturday and a lighter still Sunday.
DAY_OF_WEEK_LEVEL = (1.0, 1.0, 1.0, 1.0, 1.0, 0.8, 0.65)
#: Day-to-day spread of demand: the scale is lognormal with this sigma.
DAY_NOISE_SIGMA = 0.06
#: Chance of an incident on a day; it slows one approach to INCIDENT_SPEED_FACTOR of its limit
#: for 20-40 minutes, so counts drop there and spill elsewhere (a disturbance models must survive).
INCIDENT_PROBABILITY = 0.1
INCIDENT_SPEED_FACTOR = 0.2


@dataclass(frozen=True)
class Day:
    """One simulated day: its date, seed, demand scale and incident (if any)."""

    date: pd.Timestamp
    seed: int
    demand_scale: float
    incident_edge: str = ""
    incident_begin_s: float = float("nan")
    incident_end_s: float = float("nan")


#: Day ``d`` of a history of seed ``s`` runs SUMO with seed ``s * DAY_SEEDS + d``: histories of
#: different seeds never share a day's simulation.
DAY_SEEDS = 10_000


def plan_days(
    scenario: Scenario, network: Network, *, days: int, seed: int, start: pd.Timestamp
) -> list[Day]:
    """Draw every day's variation from one random stream seeded by ``seed`` (reproducible).

    Raises ``InputError`` when a day's SUMO seed would not be one SUMO takes (0 to 2**31 - 1).
    """
    if not (0 <= seed and seed * DAY_SEEDS + days - 1 <= MAX_SEED and days <= DAY_SEEDS):
        raise InputError(
            f"seed {seed} with {days} days: the days' SUMO seeds are seed x {DAY_SEEDS:,} + "
            f"day, which must lie from 0 to {MAX_SEED}; expected a seed from 0 to "
            f"{MAX_SEED // DAY_SEEDS - 1} and at most {DAY_SEEDS:,} days"
        )
    rng = np.random.default_rng(seed)
    approaches = sorted({a.edge for i in network.intersections.values() for a in i.approaches})
    plan = []
    for d in range(days):
        date = start + pd.Timedelta(days=d)
        scale = DAY_OF_WEEK_LEVEL[date.day_of_week] * float(rng.lognormal(0.0, DAY_NOISE_SIGMA))
        day = Day(date=date, seed=seed * DAY_SEEDS + d, demand_scale=round(scale, 4))
        if rng.random() < INCIDENT_PROBABILITY and approaches:
            length = float(rng.uniform(1200, 2400))
            begin = float(rng.uniform(scenario.begin, max(scenario.begin, scenario.end - length)))
            day = replace(
                day,
                incident_edge=str(rng.choice(approaches)),
                incident_begin_s=round(begin),
                incident_end_s=round(begin + length),
            )
        plan.append(day)
    return plan


def _incident_file(day: Day, network: Network, folder: Path) -> Path:
    lanes = [lane for lane in network.lanes.values() if lane.edge == day.incident_edge]
    normal = lanes[0].speed_m_s
    return write_additional(
        folder / "incident.add.xml",
        speed_change_xml(
            [lane.id for lane in lanes],
            begin=day.incident_begin_s,
            end=day.incident_end_s,
            speed_m_s=normal * INCIDENT_SPEED_FACTOR,
            normal_m_s=normal,
        ),
    )


def collect_history(
    scenario: Scenario,
    network: Network,
    *,
    days: int,
    workdir: Path,
    seed: int = 1,
    bin_s: float = 900.0,
    start: pd.Timestamp = SIM_DAY_ZERO,
    jobs: int = 1,
    on_prepared: Callable[[list[str], list[RunSpec]], None] | None = None,
    on_progress: Callable[[int, float], None] | None = None,
    on_done: Callable[[int, RunResult], None] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Simulate ``days`` days of the scenario under its own signal programs and count movements.

    Each day has its own SUMO seed, a demand scale (day-of-week level times lognormal noise) and,
    on some days, an incident. Simulation time 0 is each day's midnight.

    Returns
    -------
    counts
        The tidy counts table (``timestamp``, ``intersection``, ``movement``, ``count``).
    days
        One row per day: ``date``, ``seed``, ``demand_scale``, ``incident_edge``,
        ``incident_begin_s``, ``incident_end_s``, ``vehicles_loaded``, ``mean_delay_s``.
    """
    plan = plan_days(scenario, network, days=days, seed=seed, start=start)
    specs = []
    fixed = FixedController().fit(scenario, network, workdir, demand_scale=1.0)
    for day in plan:
        folder = workdir / f"{day.date:%Y-%m-%d}"
        folder.mkdir(parents=True, exist_ok=True)
        extra = (_incident_file(day, network, folder),) if day.incident_edge else ()
        specs.append(
            RunSpec(
                scenario=scenario,
                network=network,
                controller=fixed,
                seed=day.seed,
                workdir=folder / "sumo",
                additional_files=extra,
                demand_scale=day.demand_scale,
                count_bin_s=bin_s,
                day=day.date,
            )
        )
    if on_prepared is not None:
        on_prepared([], specs)
    results = run_matrix(specs, jobs=jobs, on_progress=on_progress, on_done=on_done)
    counts = pd.concat([r.counts for r in results], ignore_index=True)
    table = pd.DataFrame([asdict(day) for day in plan])
    table["vehicles_loaded"] = [r.kpis["vehicles_loaded"] for r in results]
    table["mean_delay_s"] = [r.kpis["mean_delay_s"] for r in results]
    return counts, table
