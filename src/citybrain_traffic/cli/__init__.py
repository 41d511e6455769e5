"""The ``ctraffic`` command line: parse options, call the library, print; errors become exit codes."""

from __future__ import annotations

import math
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

import click

from ..control.base import make_controller
from ..control.switching import OFFSET_MODES
from ..errors import CTrafficError, InputError

_SIMULATE_HELP = """Simulate a scenario with one or more signal controllers and compare their KPIs.

SCENARIO is a bundled scenario name (see `ctraffic scenarios`; default: corridor), a path to a
.sumocfg, or leave it out and give --net and --routes. Every controller runs on the same demand
and seeds, one SUMO process per run. The terminal shows a table: one row per controller, the
mean over the seeds ± its 95% confidence interval, and the % change against the first
controller named. A controller whose preparation or run fails is a row 'failed: <reason>' while
the others run on (also in failures.csv); the command then exits 1. One that cannot apply to the
network (NEMA programs, a WAUT) is a row 'refused: <reason>', which is no failure.

\b
KPIs (see README), of motor vehicles: delay = timeLoss + departDelay per vehicle (s), counting
vehicles still running and vehicles never inserted (their wait since their planned departure);
travel time (s); throughput (vehicles finished per hour of the window); stops (halts per
vehicle); congestion index (travel time / free-flow travel time); backlog (vehicles unfinished at
the end). Beside them, when a run has them: bicycle delay, bicycles never inserted, pedestrian
time loss and waiting, collisions.
"""


# bench.MAX_SEEDS and MAX_SEED, spelled out: importing bench (pandas) would slow every command's start.
_SEEDS_LIMIT = "at most 1000 seeds (each one SUMO run per controller), each from 0 to 2147483647"


class _LazyGroup(click.Group):
    """A group whose bigger commands are imported only when run (or listed by --help).

    ``forecast`` pulls in LightGBM and matplotlib, ``optimize`` OR-Tools and SciPy: together
    about a second that every other command, ``simulate`` included, need not pay at start-up.
    """

    _lazy = {
        "forecast": ("citybrain_traffic.forecast.cli", "forecast"),
        "optimize": ("citybrain_traffic.optimize.cli", "optimize_command"),
        "serve": ("citybrain_traffic.service.cli", "serve"),
        "publish": ("citybrain_traffic.service.cli", "publish"),
        "adapter": ("citybrain_traffic.service.cli", "adapter"),
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._lazy})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self._lazy and name not in self.commands:
            import importlib

            module, attribute = self._lazy[name]
            self.add_command(getattr(importlib.import_module(module), attribute), name)
        return super().get_command(ctx, name)


def _adaptive_options(command):
    """``--model``, ``--interval``, ``--history-days``, ``--fixed-plans``, ``--offsets``: options of the
    adaptive controller.
    """
    command = click.option(
        "--offsets",
        type=click.Choice(list(OFFSET_MODES)),
        default=None,
        help="adaptive, real-time layer on a network of several signals: 'held' keeps each plan's cycle and "
        "offsets (coordinated-actuated: each signal's longest green ends at its planned point in the cycle, "
        "the others gap out before their planned end); 'free' lets gap-outs shorten the cycle; 'auto' "
        "simulates both on 3 seeds of their own before the run and keeps the one with less mean delay "
        "[default: auto].",
    )(command)
    command = click.option(
        "--fixed-plans",
        is_flag=True,
        default=False,
        help="adaptive: run each plan as fixed time, coordinated by its offset, instead of letting the "
        "detectors end a green from half its planned length (never below its minimum) or extend it up to "
        "1.5x (at least the signal's own program's green).",
    )(command)
    command = click.option(
        "--interval",
        "interval_min",
        type=float,
        default=None,
        help="adaptive: control interval in minutes (counts read, forecast, re-plan) [default: 15]; whole minutes "
        "dividing a day when the controller trains its forecaster, one of the model's horizons with --model.",
    )(command)
    command = click.option(
        "--history-days",
        type=click.IntRange(min=0),
        default=None,
        help="adaptive, without --model: simulated days of history to train its forecaster on [default: 14]; "
        "0: no history, forecast each interval from the counts seen so far in the run.",
    )(command)
    return click.option(
        "--model",
        "model_dir",
        type=click.Path(file_okay=False),
        help="adaptive: forecaster folder from `ctraffic forecast train` [default: train one on "
        "14 simulated days of the scenario, cached].",
    )(command)


class _FiniteFloat(click.ParamType):
    """A float option that refuses inf and nan (and, ``positive``, values <= 0): SUMO takes no
    infinite time, and reads ``--scale inf`` as no vehicle at all, so the run would measure an
    empty network.
    """

    name = "float"

    def __init__(self, *, positive: bool = False):
        self.positive = positive

    def convert(self, value, param, ctx) -> float:
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number) or (self.positive and number <= 0):
            self.fail(
                f"{value!r} is not a {'positive ' if self.positive else ''}finite number",
                param,
                ctx,
            )
        return number


FINITE_FLOAT = _FiniteFloat()


def demand_scale_option(help: str):
    """``--demand-scale``: the factor on the number of vehicles, checked the same way by every command."""
    return click.option(
        "--demand-scale",
        type=_FiniteFloat(positive=True),
        default=1.0,
        show_default=True,
        help=f"{help} A positive finite factor on the number of vehicles (1 = as given).",
    )


#: ``--time-to-teleport`` of the commands that compare controllers. A config's own value is
#: replaced (the runs' notes say so), so that a gridlock shows in the KPIs instead of vanishing.
_TELEPORT_OPTION = click.option(
    "--time-to-teleport",
    type=FINITE_FLOAT,
    default=-1,
    show_default=True,
    help="SUMO's teleport time for stuck vehicles, s, in place of the config's; negative disables teleports so "
    "gridlock shows in the KPIs.",
)


def _controller_options(
    names: list[str], model_dir, interval_min, history_days=None, fixed_plans=False, offsets=None
) -> dict[str, dict]:
    """Options per controller; the adaptive ones refused when no adaptive controller runs."""
    if fixed_plans and offsets is not None:
        raise InputError(
            "--offsets is an option of the real-time layer, which --fixed-plans turns off"
        )
    given = (
        ("model", model_dir),
        ("interval_min", interval_min),
        ("history_days", history_days),
        ("realtime", False if fixed_plans else None),
        ("offsets", offsets),
    )
    adaptive = {k: v for k, v in given if v is not None}
    if adaptive and "adaptive" not in names:
        raise InputError(
            "--model, --interval, --history-days, --fixed-plans and --offsets are options of the adaptive "
            "controller: add it to --controller"
        )
    return {"adaptive": adaptive} if adaptive else {}


@click.group(
    cls=_LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(package_name="citybrain-traffic")
def cli() -> None:
    """citybrain-traffic: adaptive traffic-signal control, measured in SUMO."""


@cli.command()
def scenarios() -> None:
    """List the bundled scenarios."""
    from ..scenario import DEFAULT_SCENARIO, bundled_scenarios

    for name, description in bundled_scenarios().items():
        marker = " (default)" if name == DEFAULT_SCENARIO else ""
        click.echo(f"{name:<10} {description}{marker}")


@cli.command()
def controllers() -> None:
    """List the signal controllers."""
    from ..control.base import controller_names

    for name in controller_names():
        click.echo(f"{name:<17} {make_controller(name).description}")


@cli.command(help=_SIMULATE_HELP)
@click.argument("scenario", required=False)
@click.option(
    "--net", type=click.Path(dir_okay=False), help="SUMO network (.net.xml), instead of SCENARIO."
)
@click.option("--routes", help="Route/trip files, comma-separated (with --net).")
@click.option(
    "--begin",
    type=FINITE_FLOAT,
    help="Start of the evaluation window, s of simulation time [default: the config's].",
)
@click.option(
    "--end",
    type=FINITE_FLOAT,
    help="End of the evaluation window, s of simulation time [default: the config's].",
)
@click.option(
    "-c",
    "--controller",
    "controllers",
    default="fixed,actuated,actuated-rebuilt,webster,max-pressure",
    show_default=True,
    help="Controllers to compare, comma-separated; the first is the reference of the % changes "
    "(see `ctraffic controllers`).",
)
@click.option(
    "--seed", type=int, default=1, show_default=True, help="Random seed of the simulation."
)
@click.option("--seeds", help=f"Several seeds instead of --seed: '1-5' or '1,3,7'; {_SEEDS_LIMIT}.")
@demand_scale_option("Multiply the demand by this factor, e.g. 1.3 for a heavier peak.")
@_TELEPORT_OPTION
@click.option(
    "-j", "--jobs", type=int, help="Runs in parallel (one SUMO process each) [default: CPU count]."
)
@click.option(
    "--bin",
    "bin_min",
    type=click.IntRange(min=1),
    default=15,
    show_default=True,
    help="With --out: count every movement at the stop line in bins of this many minutes (counts.csv).",
)
@click.option(
    "--gui", is_flag=True, help="Watch the run in sumo-gui (through TraCI; one run only)."
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    help="Folder for results (must not exist or be empty): summary.csv, comparison.md, and per run "
    "kpis.json, intersections.csv, timeseries.csv, timeseries.png, counts.csv and SUMO's own outputs.",
)
@_adaptive_options
def simulate(
    scenario,
    net,
    routes,
    begin,
    end,
    controllers,
    seed,
    seeds,
    demand_scale,
    time_to_teleport,
    jobs,
    bin_min,
    gui,
    out,
    model_dir,
    interval_min,
    history_days,
    fixed_plans,
    offsets,
):
    from ..bench import parse_seeds

    names = [c.strip() for c in controllers.split(",") if c.strip()]
    if not names:
        raise InputError("--controller is empty: name at least one controller")
    if len(set(names)) != len(names):
        raise InputError(f"--controller {controllers!r} names a controller twice")
    seed_list = parse_seeds(seeds) if seeds else parse_seeds(str(seed))
    if jobs is not None and jobs < 1:
        raise InputError(f"--jobs must be at least 1, got {jobs}")
    if gui and len(names) * len(seed_list) > 1:
        raise InputError("--gui shows one run: give one controller and one seed")
    if gui and sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
        # sumo-gui draws through X11 (FOX) here: refused before the preparations, which may take
        # minutes (a display that is set but unusable makes sumo-gui exit at once, with its reason).
        raise InputError(
            "--gui: sumo-gui cannot open a display: DISPLAY is not set (run without --gui, "
            "or give it an X display: ssh -X, xvfb-run)"
        )
    staged = _StagedOutDir(out) if out else None
    from ..network import read_network
    from ..scenario import load_scenario
    from ..simulate import simulate_scenario

    options = _controller_options(
        names, model_dir, interval_min, history_days, fixed_plans, offsets
    )
    for name in names:
        make_controller(name).configure(**options.get(name, {}))
    sc = load_scenario(scenario, net=net, routes=routes, begin=begin, end=end)
    network = read_network(sc.net_file)
    console = _console()
    console.print(
        f"[bold]{sc.name}[/]: {len(network.intersections)} signals, window {sc.begin:g}-{sc.end:g} s, "
        f"demand x{demand_scale:g}, controllers {', '.join(names)}, seeds {_seed_text(seed_list)}"
    )
    with (
        staged or tempfile.TemporaryDirectory(prefix="ctraffic-") as workdir,
        _RunProgress(console) as progress,
    ):
        outcome = simulate_scenario(
            sc,
            network,
            controllers=names,
            seeds=seed_list,
            demand_scale=demand_scale,
            time_to_teleport=time_to_teleport,
            jobs=jobs or os.cpu_count() or 1,
            gui=gui,
            workdir=Path(workdir),
            write_files=staged is not None,
            count_bin_s=bin_min * 60.0 if staged is not None else None,
            controller_options=options,
            # --gui shows one run: its failure is the command's, in one line (exit 2), not a table row.
            keep_going=not gui,
            on_prepared=progress.prepared,
            on_preparing=progress.preparing,
            on_progress=progress.advance,
            on_done=progress.done,
            on_failed=progress.failed,
        )
    from ..report import comparison_rich

    title = f"{sc.name}: mean ± 95% CI over {len(seed_list)} seed(s); (% change vs {names[0]})"
    console.print(comparison_rich(outcome.comparison, baseline=names[0], title=title))
    for result in outcome.results:
        if result.kpis["vehicles_loaded"] == 0:
            console.print(
                f"[yellow]warning[/]: {result.controller} seed {result.seed}: no vehicle departed in the window"
            )
    if staged is not None:
        console.print(
            f"results written to {staged.final}/ (summary.csv, comparison.md, one folder per run"
            f"{', failures.csv' if outcome.failures else ''})"
        )
    _exit_on_problems(console, outcome.results, outcome.failures)


def _exit_on_problems(console, results, failures=()) -> None:
    """Name every run whose signal states left the safety envelope, every run or preparation that
    failed (``RunFailure``) and every controller that refused the network; exit 1 after the
    results when a run was unsafe or failed (a refusal alone is no fault).
    """
    from rich.markup import escape

    unsafe = [r for r in results if r.safety_violations]
    for result in unsafe:
        console.print(
            f"[bold red]unsafe[/]: {result.scenario} {result.controller} seed {result.seed}: "
            f"{len(result.safety_violations)} signal state(s) left the safety envelope, first: "
            f"{escape(result.safety_violations[0])}"
        )
    for failure in failures:
        label = "[yellow]refused[/]" if failure.refused else "[bold red]failed[/]"
        console.print(f"{label}: {failure.what}: {escape(failure.reason)}")
    if unsafe or any(not failure.refused for failure in failures):
        raise SystemExit(1)


@cli.command()
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
    "--seeds", default="1-5", show_default=True, help=f"Seeds: '1-5' or '1,3,7'; {_SEEDS_LIMIT}."
)
@demand_scale_option("Multiply the demand of every scenario by this factor.")
@_TELEPORT_OPTION
@click.option(
    "-j", "--jobs", type=int, help="Runs in parallel (one SUMO process each) [default: CPU count]."
)
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False),
    help="New or empty folder for results.csv (one row per run), results.md and results.png.",
)
@_adaptive_options
def benchmark(
    scenarios,
    controllers,
    seeds,
    demand_scale,
    time_to_teleport,
    jobs,
    out,
    model_dir,
    interval_min,
    history_days,
    fixed_plans,
    offsets,
):
    """Run SCENARIOS x controllers x seeds and compare every controller with fixed.

    SCENARIOS are bundled names or .sumocfg paths (default: every bundled scenario). All runs
    share one pool of worker processes; same demand and seeds for every controller. Writes
    results.csv (the summary.csv columns, incl. wall_time_s and control_time_s, the time spent in
    the controller), results.md (mean ± 95% CI and % change against fixed per scenario) and
    results.png (bar charts of delay and congestion index). A controller whose preparation or runs
    fail is reported as failed (and in failures.csv) while the others run; the command then exits 1.
    One that cannot apply to a network (NEMA programs, a WAUT) is reported as refused, no failure.
    """
    from ..bench import parse_seeds
    from ..network import read_network
    from ..report import write_benchmark
    from ..scenario import bundled_scenarios, load_scenario
    from ..simulate import simulate_cases

    names = [c.strip() for c in controllers.split(",") if c.strip()]
    names = ["fixed", *[n for n in names if n != "fixed"]]
    options = _controller_options(
        names, model_dir, interval_min, history_days, fixed_plans, offsets
    )
    for name in names:
        make_controller(name).configure(**options.get(name, {}))
    seed_list = parse_seeds(seeds)
    staged = _StagedOutDir(out)
    cases = []
    for spec in scenarios or bundled_scenarios():
        sc = load_scenario(spec)
        cases.append((sc, read_network(sc.net_file)))
    console = _console()
    console.print(
        f"benchmark: {len(cases)} scenarios x {len(names)} controllers x {len(seed_list)} seeds"
    )
    with tempfile.TemporaryDirectory(prefix="ctraffic-") as tmp, _RunProgress(console) as progress:
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
    header = (
        f"# Benchmark\n\n`ctraffic benchmark {' '.join(scenarios)} -c {','.join(names)} --seeds {seeds}"
        f"{f' --demand-scale {demand_scale:g}' if demand_scale != 1 else ''}"
        f"{f' --time-to-teleport {time_to_teleport:g}' if time_to_teleport != -1 else ''}`: mean ± 95% CI over the seeds, "
        "(% change against fixed)."
    )
    with staged as out_dir:
        write_benchmark(
            outcome.summary,
            outcome.comparison,
            out_dir,
            baseline="fixed",
            header=header,
            failures=outcome.failures,
        )
    from ..report import comparison_rich

    for sc, _ in cases:
        table = outcome.comparison[outcome.comparison["scenario"] == sc.name]
        console.print(
            comparison_rich(table, baseline="fixed", title=f"{sc.name}: (% change vs fixed)")
        )
    console.print(
        f"results written to {staged.final}/ (results.csv, results.md, results.png"
        f"{', failures.csv' if outcome.failures else ''})"
    )
    _exit_on_problems(console, outcome.results, outcome.failures)


@cli.command()
@click.argument("scenario", required=False)
@click.option("--days", type=click.IntRange(min=1), required=True, help="Number of simulated days.")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False),
    help="Counts file to write (.csv, .csv.gz or .parquet; must not exist); the days' "
    "variation goes beside it as <name>.days.csv.",
)
@click.option(
    "--bin",
    "bin_min",
    type=click.IntRange(min=1),
    default=15,
    show_default=True,
    help="Count bin, minutes.",
)
@click.option(
    "--seed",
    type=int,
    default=1,
    show_default=True,
    help="Seed of the day-to-day variation and the days' SUMO seeds.",
)
@click.option(
    "--start", default="2026-01-05", show_default=True, help="Date of the first day (YYYY-MM-DD)."
)
@click.option("-j", "--jobs", type=int, help="Days simulated in parallel [default: CPU count].")
def collect(scenario, days, out, bin_min, seed, start, jobs):
    """Simulate a history of DAYS days of SCENARIO and write its per-movement counts.

    Every day runs the scenario's window under the network's own signal programs with its own
    seed, a demand level by day of week (weekends lighter), a random day-to-day scale and, on
    some days, an incident that slows one approach for 20-40 minutes. Counts are vehicles per
    bin and movement (<incoming edge>><outgoing edge>) at every signal's stop line; timestamps
    put simulation time 0 at each day's midnight.
    """
    import pandas as pd

    from ..collect import collect_history
    from ..network import read_network
    from ..scenario import load_scenario

    target = _fresh_out_file(out, suffixes=(".csv", ".csv.gz", ".parquet"))
    days_file = _fresh_out_file(
        target.with_name(target.name.split(".")[0] + ".days.csv"), suffixes=(".csv",)
    )
    try:
        first_day = pd.Timestamp(start)
    except ValueError:
        raise InputError(f"--start {start!r} is not a date (expected YYYY-MM-DD)") from None
    sc = load_scenario(scenario)
    network = read_network(sc.net_file)
    console = _console()
    console.print(
        f"[bold]{sc.name}[/]: collecting {days} days of counts, {bin_min}-minute bins, window {sc.begin:g}-{sc.end:g} s"
    )
    with tempfile.TemporaryDirectory(prefix="ctraffic-") as tmp, _RunProgress(console) as progress:
        counts, table = collect_history(
            sc,
            network,
            days=days,
            workdir=Path(tmp),
            seed=seed,
            bin_s=bin_min * 60.0,
            start=first_day,
            jobs=jobs or os.cpu_count() or 1,
            on_prepared=progress.prepared,
            on_progress=progress.advance,
            on_done=progress.done,
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.suffix == ".parquet":
        counts.to_parquet(target, index=False)
    else:
        counts.to_csv(target, index=False)
    table.to_csv(days_file, index=False)
    incidents = int((table["incident_edge"] != "").sum())
    console.print(
        f"wrote {len(counts):,} counts ({counts['intersection'].nunique()} signals, "
        f"{counts['movement'].nunique()} movements) to {target}; days and incidents ({incidents}) in {days_file}"
    )


@cli.command()
@click.argument("scenario", required=False)
@click.option(
    "--seed", type=int, default=1, show_default=True, help="Random seed of the simulation."
)
@demand_scale_option(
    "Multiply the demand by this factor: only queues of 8 vehicles or more are measured."
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    help="Write the per-lane table as CSV (must not exist).",
)
def calibrate(scenario, seed, demand_scale, out):
    """Measure saturation flow (veh/h of green per lane) in SCENARIO's simulation.

    Runs the scenario under its own programs and, whenever a lane's green starts with at least
    8 vehicles queued, times their discharge over the stop line; the headways from the 5th
    queued vehicle on (the HCM method) give the saturation flow, 3600 / mean headway. Prints the
    per-lane figures and the network's median (lanes with at least 20 headways), which
    `ctraffic optimize --saturation-flow` can take. When no lane has 20 headways the demand
    queues too rarely: exit code 2, and a heavier --demand-scale is the remedy.
    """
    from ..bench import parse_seeds
    from ..calibrate import MIN_LANE_HEADWAYS, MIN_QUEUE, network_saturation_flow
    from ..calibrate import calibrate as measure
    from ..network import read_network
    from ..scenario import load_scenario

    parse_seeds(str(seed))  # a seed SUMO takes
    target = _fresh_out_file(out) if out else None
    sc = load_scenario(scenario)
    network = read_network(sc.net_file)
    console = _console()
    console.print(
        f"[bold]{sc.name}[/]: measuring queue discharge at {len(network.intersections)} signals..."
    )
    with tempfile.TemporaryDirectory(prefix="ctraffic-") as tmp:
        table = measure(sc, network, workdir=Path(tmp), seed=seed, demand_scale=demand_scale)
    if table.empty:
        raise InputError(
            f"{sc.name}: no green started with a queue of {MIN_QUEUE} or more vehicles at demand x{demand_scale:g}; "
            "simulate a heavier peak (a larger --demand-scale)"
        )
    console.print(table.to_string(index=False, float_format=lambda v: f"{v:,.2f}"))
    flow = network_saturation_flow(table)
    console.print(
        f"network saturation flow (median of lanes with {MIN_LANE_HEADWAYS} headways or more): {flow:,.0f} veh/h/lane"
    )
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(target, index=False)


@cli.group()
def plans() -> None:
    """Check timing plans (JSON from `ctraffic optimize`, or SUMO tlLogic files)."""


@plans.command("validate")
@click.argument("plan_file", type=click.Path(dir_okay=False))
@click.option(
    "--net",
    required=True,
    type=click.Path(dir_okay=False),
    help="The SUMO network the plans were made for.",
)
def plans_validate(plan_file, net):
    """Check every plan in PLAN_FILE against the network's programs.

    A plan is safe when it keeps the network's phases, their order and state strings, keeps
    every yellow and all-red interval at its length, gives every green at least its minimum, and
    its durations sum to its cycle. Exit code 0 when all are safe, 2 with the reasons otherwise.
    """
    from ..network import read_network
    from ..plans import read_plans, validate_all

    found = read_plans(Path(plan_file))
    if not found:
        raise InputError(f"{plan_file} holds no timing plan")
    validate_all(found, read_network(net))
    click.echo(
        f"{len(found)} plan(s) safe for {Path(net).name}: "
        + ", ".join(f"{p.tls_id} (cycle {p.cycle_s:g} s, offset {p.offset:g} s)" for p in found)
    )


def _seed_text(seeds: list[int]) -> str:
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}-{seeds[-1]}"
    return ",".join(map(str, seeds))


def _console():
    from rich.console import Console

    # Logs and pipes get 100 columns (rich's 80 would wrap the result table).
    return Console(highlight=False, width=None if sys.stdout.isatty() else 100)


class _RunProgress:
    """Live progress of the runs: a bar per running simulation (sim time) and one for all runs.

    Without a terminal (CI logs, pipes) it prints one line per finished run instead.
    """

    def __init__(self, console):
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = console
        self.live = console.is_terminal
        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.tasks: dict[int, int] = {}
        self.runs: list = []
        self.total = None
        self.preparation = None

    def __enter__(self):
        if self.live:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        if self.live:
            self.bar.__exit__(*exc)

    def preparing(self, scenario: str, controller: str) -> None:
        """A controller's preparation starts (the adaptive one may simulate for minutes)."""
        if not self.live:
            return
        if self.preparation is None:
            self.preparation = self.bar.add_task("", total=None, detail="")
        self.bar.update(self.preparation, description=f"  preparing {controller} on {scenario}")

    def prepared(self, notes: list[str], runs: list) -> None:
        """``runs``: the RunSpecs, in the order of the indices the other calls get."""
        if self.preparation is not None:
            self.bar.remove_task(self.preparation)
            self.preparation = None
        for note in notes:
            self.console.print(f"  {note}")
        self.runs = runs
        if self.live:
            self.total = self.bar.add_task("all runs", total=len(runs), detail="")

    def advance(self, index: int, now: float) -> None:
        if not self.live:
            return
        sc = self.runs[index].scenario
        if index not in self.tasks:
            self.tasks[index] = self.bar.add_task(
                f"  {sc.name} {self.runs[index].key}", total=sc.duration_s, detail=""
            )
        self.bar.update(self.tasks[index], completed=now - sc.begin, detail=f"{now:g} s")

    def done(self, index: int, result) -> None:
        if self.live:
            if index in self.tasks:
                self.bar.remove_task(self.tasks.pop(index))
            self.bar.advance(self.total)
        k = result.kpis
        self.console.print(
            f"  done {result.scenario} {result.controller} seed {result.seed}: delay {k['mean_delay_s']:.1f} s/veh, "
            f"{k['vehicles_arrived']} of {k['vehicles_loaded']} vehicles arrived ({result.wall_time_s:.1f} s)"
        )

    def failed(self, index: int, failure) -> None:
        """A run failed, or a controller refused the network (``RunFailure``); the others go on."""
        from rich.markup import escape

        if self.live:
            if index in self.tasks:
                self.bar.remove_task(self.tasks.pop(index))
            self.bar.advance(self.total)
        label = "[yellow]refused[/]" if failure.refused else "[red]failed[/]"
        self.console.print(f"  {label} {failure.what}: {escape(failure.reason)}")


def _fresh_out_dir(out: str | Path) -> Path:
    """The output folder; refuse one that already holds files, so nothing is overwritten."""
    path = Path(out)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise InputError(
            f"output folder {path} already exists and is not empty: choose a new --out"
        )
    return path


class _StagedOutDir:
    """A command's ``--out`` folder, written as a hidden sibling and renamed to ``--out`` at the end.

    Checked when made (``_fresh_out_dir``, before any work); ``with`` gives the partial folder
    ``.<name>.partial-<pid>`` beside it. A command that fails or is interrupted removes the
    partial folder and leaves ``--out`` as the user had it (absent or empty), so the same
    command runs again; a half-written ``--out`` used to refuse it as "not empty".
    """

    def __init__(self, out: str | Path):
        # Absolute, so that --out . has a name to put the partial folder beside.
        self.final = Path(os.path.abspath(_fresh_out_dir(out)))
        self.partial = self.final.parent / f".{self.final.name}.partial-{os.getpid()}"

    def __enter__(self) -> Path:
        self.final.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.partial.mkdir()
        except FileExistsError:
            raise InputError(
                f"{self.partial} is left over from a run that was killed: remove it"
            ) from None
        return self.partial

    def __exit__(self, kind, exc, traceback) -> None:
        if kind is not None:
            shutil.rmtree(self.partial, ignore_errors=True)
            return
        try:
            # rename(2) replaces an empty folder and refuses one with files: what the user put
            # into --out while the command ran stays, and so do the results, where they are.
            self.partial.rename(self.final)
        except OSError as err:
            raise InputError(
                f"output folder {self.final} changed while the command ran ({err.strerror}): the results are in {self.partial}"
            ) from None


def _fresh_out_file(out: str | Path, *, suffixes: tuple[str, ...] = ()) -> Path:
    """An output file to create; refuse one that exists (nothing is overwritten) or has another suffix."""
    path = Path(out)
    if path.exists():
        raise InputError(f"{path} already exists: choose a new --out (nothing is overwritten)")
    if suffixes and not path.name.endswith(suffixes):
        raise InputError(f"--out {path}: expected a {', '.join(suffixes)} file name")
    return path


#: A group called without a command shows its help through this error (click >= 8.2; before, it
#: exits by itself).
_NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())


class _Terminated(BaseException):
    """SIGTERM (``kill PID``), raised in the main thread as Ctrl-C raises KeyboardInterrupt.

    Without it SIGTERM ended the command at once, skipping every ``finally``: its worker
    processes ran on, orphaned. As an exception it takes the path Ctrl-C takes: the workers are
    terminated, temporary and partial output folders removed. A BaseException, so that no
    ``except Exception`` on the way swallows it.
    """


def _raise_terminated(signum: int, frame) -> None:
    # A second SIGTERM must not cut the cleanup the first one started (SIGKILL still ends it).
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise _Terminated


def main() -> None:
    """Entry point of ``ctraffic``: one clear line and exit code 2 for bad input, never a traceback.

    Ctrl-C exits with 130 and SIGTERM with 143 (128 + the signal's number, as a shell reports a
    process the signal killed), after the same cleanup.
    """
    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        code = cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(128 + signal.SIGINT)
    except _Terminated:
        click.echo("terminated", err=True)
        sys.exit(128 + signal.SIGTERM)
    except _NO_ARGS_IS_HELP as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        # Click would print its usage block above the message: one line, pointing at --help.
        context = getattr(exc, "ctx", None)
        hint = f" (see '{context.command_path} --help')" if context is not None else ""
        click.echo(f"error: {exc.format_message()}{hint}", err=True)
        sys.exit(exc.exit_code)
    except CTrafficError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(128 + signal.SIGINT)
    sys.exit(code if isinstance(code, int) else 0)

