"""Simulate scenarios with several controllers and seeds; compare and write the results."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import pandas as pd

from ..control.base import Controller
from ..errors import CTrafficError, NotApplicableError
from ..harness.emergency import EMERGENCY_KPIS
from ..harness.matrix import RunFailure, internal_error, one_line, run_matrix
from ..harness.runner import RunResult, RunSpec
from ..harness.stats import comparison, summary_frame
from ..network import Network
from ..report import comparison_markdown, write_emergency, write_failures, write_run_files
from ..scenario import Scenario
from ..sim.emergency import RED_OBEY, EmergencyVehicle
from ..sim.metrics import KPI_COLUMNS
from .registry import preparation


@dataclass(frozen=True)
class SimulationOutcome:
    """What a simulation command measured.

    Every measured run's result, the ``summary.csv`` table, the comparison over seeds, and
    what failed (with ``keep_going``).
    """

    results: list[RunResult]
    summary: pd.DataFrame
    comparison: pd.DataFrame
    failures: tuple[RunFailure, ...] = ()


def simulate_scenario(scenario: Scenario, network: Network, **options) -> SimulationOutcome:
    """Run every controller with every seed on one scenario; see ``simulate_cases``."""
    return simulate_cases([(scenario, network)], **options)


def simulate_cases(
    cases: list[tuple[Scenario, Network]],
    *,
    controllers: list[str],
    seeds: list[int],
    workdir: Path,
    demand_scale: float = 1.0,
    time_to_teleport: float = -1.0,
    jobs: int = 1,
    gui: bool = False,
    write_files: bool = True,
    count_bin_s: float | None = None,
    controller_options: dict[str, dict] | None = None,
    keep_going: bool = False,
    emergency: Mapping[tuple[str, int], tuple[EmergencyVehicle, ...]] | None = None,
    emergency_red: str = RED_OBEY,
    on_prepared: Callable[[list[str], list[RunSpec]], None] | None = None,
    on_preparing: Callable[[str, str], None] | None = None,
    on_progress: Callable[[int, float], None] | None = None,
    on_done: Callable[[int, RunResult], None] | None = None,
    on_failed: Callable[[int, RunFailure], None] | None = None,
) -> SimulationOutcome:
    """Run every controller with every seed on each scenario, same demand and seeds for all.

    All runs share one pool of ``jobs`` worker processes (one SUMO each).

    Parameters
    ----------
    cases
        Scenarios with their networks.
    controllers
        Controller names; the first is the baseline of the % changes.
    seeds
        SUMO seeds; every controller runs with each.
    workdir
        Folder for the runs: ``[<scenario>/]<controller>/seed-<n>/`` per run (SUMO's outputs under
        ``sumo/``; the scenario level only with several scenarios), the controllers' preparations
        under ``[<scenario>/]prepared/``; with ``write_files`` also ``summary.csv``,
        ``comparison.md``, each run's KPI, table and plot files and, when something failed,
        ``failures.csv``.
    demand_scale
        Demand multiplier (SUMO ``--scale``).
    time_to_teleport
        SUMO's teleport time (s); negative disables teleporting.
    jobs
        Runs in parallel, one process each.
    count_bin_s
        Count every movement at the stop line in bins of this many seconds (``counts.csv``).
    keep_going
        A controller whose preparation fails, and a run that fails, are reported in
        ``failures`` (and as rows of the comparison) while the others run on; without it the
        first failure raises its error.
    emergency
        Emergency vehicles per scenario name and seed (``sim.emergency.plan_emergency``), the
        same for every controller; measured apart: with ``write_files`` each run's
        ``emergency.csv``, and all of them in ``emergency.csv`` (with scenario, controller and
        seed) beside ``summary.csv``, which gains ``harness.emergency.EMERGENCY_KPIS``.
    emergency_red
        What they do at a red signal (``sim.emergency.RED_MODES``).
    on_preparing
        Called with the scenario's and the controller's name as each preparation starts.
    on_prepared
        Called with the controllers' notes and the runs before they start.
    on_progress, on_done, on_failed
        Called with the run's index as runs advance (simulation time, s), finish, and fail (with
        ``keep_going``; a failed preparation is among the notes).
    """
    specs, notes, failures = [], [], []

    def preparation_failed(failure: RunFailure) -> None:
        failures.append(failure)
        notes.append(
            f"{'refused' if failure.refused else 'failed'}: {failure.what}: {failure.reason}"
        )

    for scenario, network in cases:
        base = workdir / scenario.name if len(cases) > 1 else workdir
        prepared = prepare_controllers(
            scenario,
            network,
            controllers,
            demand_scale=demand_scale,
            workdir=base / "prepared",
            options=controller_options,
            on_preparing=on_preparing,
            on_failed=preparation_failed if keep_going else None,
        )
        notes += [*network.notes, *(note for c in prepared.values() for note in c.setup.notes)]
        note = teleport_note(scenario, time_to_teleport)
        if note:
            notes.append(note)
        specs += [
            RunSpec(
                scenario=scenario,
                network=network,
                controller=controller,
                seed=seed,
                workdir=base / name / f"seed-{seed}" / "sumo",
                demand_scale=demand_scale,
                time_to_teleport=time_to_teleport,
                gui=gui,
                count_bin_s=count_bin_s,
                emergency=(emergency or {}).get((scenario.name, seed), ()),
                emergency_red=emergency_red,
            )
            for name, controller in prepared.items()
            for seed in seeds
        ]
    if on_prepared is not None:
        on_prepared(notes, specs)
    ran = run_matrix(
        specs,
        jobs=jobs,
        on_progress=on_progress,
        on_done=on_done,
        on_failed=(on_failed or (lambda index, failure: None)) if keep_going else None,
    )
    results = [r for r in ran if isinstance(r, RunResult)]
    failures += [r for r in ran if isinstance(r, RunFailure)]
    summary = summary_frame(results)
    measured = [*KPI_COLUMNS, *(c for c in EMERGENCY_KPIS if c in summary)]
    table = comparison(summary, metrics=measured, baseline=controllers[0], failures=failures)
    # In the order named, a controller that failed in its place among the others.
    table = (
        table.set_index(["scenario", "controller"])
        .loc[[(sc.name, name) for sc, _ in cases for name in controllers]]
        .reset_index()
    )
    if write_files:
        for result in results:
            write_run_files(result, result.workdir.parent)
        summary.to_csv(workdir / "summary.csv", index=False, float_format="%.4f")
        (workdir / "comparison.md").write_text(comparison_markdown(table, baseline=controllers[0]))
        write_failures(failures, workdir)
        write_emergency(results, workdir)
    return SimulationOutcome(
        results=results, summary=summary, comparison=table, failures=tuple(failures)
    )


def prepare_controllers(
    scenario: Scenario,
    network: Network,
    controllers: list[str],
    *,
    demand_scale: float,
    workdir: Path,
    options: dict[str, dict] | None = None,
    on_preparing: Callable[[str, str], None] | None = None,
    on_failed: Callable[[RunFailure], None] | None = None,
) -> dict[str, Controller]:
    """Return every controller fitted for ``scenario``, once, in ``workdir/<controller>``.

    ``options`` maps a controller name to its options (``registry.preparation``);
    ``on_preparing`` is called with the scenario's and the controller's name as each starts (a
    preparation may simulate: the adaptive controller's history and checks take minutes).

    The first preparation that fails raises its error, unless ``on_failed`` is given: then a
    failing preparation (a SUMO tool's error, an infeasible optimization, a controller that
    cannot apply to the network, a bug) is reported to it as a ``RunFailure`` without a seed,
    left out of the result, and the other controllers are prepared. Options are applied first,
    outside of that: a bad option is the caller's error, never a controller's failure.
    """
    prepared: dict[str, Controller] = {}
    # Absolute: the preparations run SUMO's tools in their folder (cwd) and name files in it.
    workdir = Path(workdir).resolve()
    for name in controllers:
        folder = workdir / name
        folder.mkdir(parents=True, exist_ok=True)
        recipe = preparation(name, **(options or {}).get(name, {}))
        if on_preparing is not None:
            on_preparing(scenario.name, name)
        try:
            prepared[name] = recipe.build(scenario, network, folder, demand_scale=demand_scale)
        except Exception as exc:
            if on_failed is None:
                raise
            if not isinstance(exc, CTrafficError):
                exc = internal_error(f"preparing {name} on {scenario.name}")
            on_failed(
                RunFailure(
                    scenario.name,
                    name,
                    None,
                    one_line(exc),
                    refused=isinstance(exc, NotApplicableError),
                )
            )
    return prepared


def teleport_note(scenario: Scenario, time_to_teleport: float) -> str | None:
    """Return what the runs' time-to-teleport changes from the user's config, or None.

    None when it changes nothing (a non-positive value disables teleporting, whichever it is).
    """
    own = scenario.time_to_teleport
    if own is None or own == time_to_teleport or (own <= 0 and time_to_teleport <= 0):
        return None
    used = (
        f"{time_to_teleport:g} (teleporting off, so that a gridlock shows in the KPIs)"
        if time_to_teleport <= 0
        else f"{time_to_teleport:g} s"
    )
    config = scenario.config_file.name if scenario.config_file else "the config"
    return (
        f"{config} sets time-to-teleport {own:g}; the runs use {used}: "
        f"--time-to-teleport {own:g} runs with the config's"
    )
