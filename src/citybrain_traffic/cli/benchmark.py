"""``ctraffic benchmark``: scenarios x controllers x seeds, every controller against fixed."""

from __future__ import annotations

from typing import Any

import os
import tempfile
from pathlib import Path

import click

from ._common import (
    RunProgress,
    StagedOutDir,
    console,
    demand_scale_option,
    exit_on_problems,
    parse_seeds,
)
from .controllers import SEEDS_LIMIT, adaptive_options, configure_controllers, teleport_option


@click.command("benchmark")
@click.argument("scenarios", nargs=-1)
@click.option(
    "-c",
    "--controller",
    "controllers",
    default="fixed,actuated,actuated-rebuilt,webster,max-pressure",
    show_default=True,
    help="Controllers, comma-separated; fixed is added first when missing (the reference).",
)
@click.option(
    "--seeds", default="1-5", show_default=True, help=f"Seeds: '1-5' or '1,3,7'; {SEEDS_LIMIT}."
)
@demand_scale_option("Multiply the demand of every scenario by this factor.")
@teleport_option
@click.option(
    "-j", "--jobs", type=int, help="Runs in parallel (one SUMO process each) [default: CPU count]."
)
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False),
    help="New or empty folder for results.csv (one row per run), results.md and results.png.",
)
@adaptive_options
def benchmark_command(
    scenarios: tuple[str, ...],
    controllers: str,
    seeds: str,
    demand_scale: float,
    time_to_teleport: float,
    jobs: int | None,
    out: str,
    **adaptive: Any,
) -> None:
    """Run SCENARIOS x controllers x seeds and compare every controller with fixed.

    SCENARIOS are bundled names or .sumocfg paths (default: every bundled scenario). All runs
    share one pool of worker processes; same demand and seeds for every controller. Writes
    results.csv (the summary.csv columns, incl. wall_time_s and control_time_s, the time spent in
    the controller), results.md (mean ± 95% CI and % change against fixed per scenario) and
    results.png (bar charts of delay and congestion index). A controller whose preparation or runs
    fail is reported as failed (and in failures.csv) while the others run; the command then exits 1.
    One that cannot apply to a network (NEMA programs, a WAUT) is reported as refused, no failure.
    """
    from ..network import read_network
    from ..report import write_benchmark
    from ..scenario import bundled_scenarios, load_scenario
    from ..experiments.simulate import simulate_cases

    names = [c.strip() for c in controllers.split(",") if c.strip()]
    names = ["fixed", *[n for n in names if n != "fixed"]]
    options = configure_controllers(names, **adaptive)
    seed_list = parse_seeds(seeds)
    staged = StagedOutDir(out)
    cases = []
    for spec in scenarios or bundled_scenarios():
        sc = load_scenario(spec)
        cases.append((sc, read_network(sc.net_file)))
    terminal = console()
    terminal.print(
        f"benchmark: {len(cases)} scenarios x {len(names)} controllers x {len(seed_list)} seeds"
    )
    with tempfile.TemporaryDirectory(prefix="ctraffic-") as tmp, RunProgress(terminal) as progress:
        outcome = simulate_cases(
            cases,
            controllers=names,
            seeds=seed_list,
            demand_scale=demand_scale,
            time_to_teleport=time_to_teleport,
            jobs=jobs or os.cpu_count() or 1,
            workdir=Path(tmp),
            write_files=False,
            keep_going=True,
            controller_options=options,
            on_prepared=progress.prepared,
            on_preparing=progress.preparing,
            on_progress=progress.advance,
            on_done=progress.done,
            on_failed=progress.failed,
        )
    with staged as out_dir:
        write_benchmark(
            outcome.summary,
            outcome.comparison,
            out_dir,
            baseline="fixed",
            header=_header(scenarios, names, seeds, demand_scale, time_to_teleport),
            failures=outcome.failures,
        )
    from ..report import comparison_rich

    for sc, _ in cases:
        table = outcome.comparison[outcome.comparison["scenario"] == sc.name]
        terminal.print(
            comparison_rich(table, baseline="fixed", title=f"{sc.name}: (% change vs fixed)")
        )
    terminal.print(
        f"results written to {staged.final}/ (results.csv, results.md, results.png"
        f"{', failures.csv' if outcome.failures else ''})"
    )
    exit_on_problems(terminal, outcome.results, outcome.failures)


def _header(
    scenarios: tuple[str, ...],
    names: list[str],
    seeds: str,
    demand_scale: float,
    time_to_teleport: float,
) -> str:
    """Return the head of results.md: the command that made it, and how to read the tables."""
    return (
        f"# Benchmark\n\n`ctraffic benchmark {' '.join(scenarios)} -c {','.join(names)} "
        f"--seeds {seeds}"
        f"{f' --demand-scale {demand_scale:g}' if demand_scale != 1 else ''}"
        f"{f' --time-to-teleport {time_to_teleport:g}' if time_to_teleport != -1 else ''}`: "
        "mean ± 95% CI over the seeds, (% change against fixed)."
    )
