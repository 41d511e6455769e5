"""``ctraffic simulate``: one scenario, several controllers, their KPIs side by side."""

from __future__ import annotations

from typing import Any

import os
import sys
import tempfile
from pathlib import Path

import click

from ..errors import InputError
from ..sim.emergency import (
    CROSS_RED_SPEED_M_S,
    END_RESERVE_S,
    MAX_EMERGENCY,
    RED_MODES,
    RED_OBEY,
)
from ..sim.emergency_routes import STREET_M
from ._common import (
    FINITE_FLOAT,
    RunProgress,
    StagedOutDir,
    console,
    demand_scale_option,
    exit_on_problems,
    parse_seeds,
)
from .controllers import SEEDS_LIMIT, adaptive_options, configure_controllers, teleport_option

_HELP = """Simulate a scenario with one or more signal controllers and compare their KPIs.

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

\b
Emergency vehicles (--emergency N or --emergency-file): SUMO vehicles of class emergency with
its blue-light device (vehicles within 25 m ahead make room: a rescue lane where SUMO models
lateral positions; junction foes brake for it). By default they obey red signals
(conservative; the siren is off while one waits at a red); --emergency-red cross lets them go
through red at low speed. The same vehicles run with every controller of a seed. They are
measured apart, in emergency.csv (travel time, time stopped, signals passed, passed on green,
signals stopped at), and left out of everyone else's KPIs; the table gains their mean travel
time.
"""


@click.command("simulate", help=_HELP)
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
@click.option("--seeds", help=f"Several seeds instead of --seed: '1-5' or '1,3,7'; {SEEDS_LIMIT}.")
@demand_scale_option("Multiply the demand by this factor, e.g. 1.3 for a heavier peak.")
@teleport_option
@click.option(
    "-j", "--jobs", type=int, help="Runs in parallel (one SUMO process each) [default: CPU count]."
)
@click.option(
    "--bin",
    "bin_min",
    type=click.IntRange(min=1),
    default=15,
    show_default=True,
    help="With --out: count every movement at the stop line in bins of this many minutes "
    "(counts.csv).",
)
@click.option(
    "--gui", is_flag=True, help="Watch the run in sumo-gui (through TraCI; one run only)."
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    help="Folder for results (must not exist or be empty): summary.csv, comparison.md, and per "
    "run kpis.json, intersections.csv, timeseries.csv, timeseries.png, counts.csv and SUMO's own "
    "outputs.",
)
@click.option(
    "--emergency",
    type=click.IntRange(0, MAX_EMERGENCY),
    default=0,
    metavar="N",
    help="Add N emergency vehicles to every run, drawn from its seed (the same for every "
    "controller): departures at whole seconds spread over the window, none in its last "
    f"{END_RESERVE_S / 60:g} minutes (nor in twice the route's free-flow time), between random "
    f"streets (edges of at least {STREET_M:g} m) of the network's interior (with a way in and a "
    "way out for an emergency vehicle; a network without such a pair: from a street with a way "
    "out to one with a way in), on the fastest route at the speed limits that the lanes allow "
    "and that crosses at least one signal.",
)
@click.option(
    "--emergency-file",
    type=click.Path(dir_okay=False),
    help="Emergency vehicles from a CSV file with the header depart,from_edge,to_edge (depart in "
    "s of simulation time, inside the window; each on the fastest route between its edges), "
    "instead of --emergency; the same in every run.",
)
@click.option(
    "--emergency-red",
    type=click.Choice(RED_MODES),
    help="What emergency vehicles do at a red signal: obey (stop at red and yellow as everyone, "
    "the conservative default) or cross (go through red at most at "
    f"{CROSS_RED_SPEED_M_S:g} m/s once it has lasted 2 s, yielding to the traffic that has "
    f"green). [default: {RED_OBEY}]",
)
@adaptive_options
def simulate_command(
    scenario: str | None,
    net: str | None,
    routes: str | None,
    begin: float | None,
    end: float | None,
    controllers: str,
    seed: int,
    seeds: str | None,
    demand_scale: float,
    time_to_teleport: float,
    jobs: int | None,
    bin_min: int,
    gui: bool,
    out: str | None,
    emergency: int,
    emergency_file: str | None,
    emergency_red: str | None,
    **adaptive: Any,
) -> None:
    """Simulate SCENARIO with every controller, print their KPIs; ``--help`` shows ``_HELP``."""
    names = _controller_names(controllers)
    seed_list = parse_seeds(seeds) if seeds else parse_seeds(str(seed))
    _check_run(names, seed_list, jobs, gui)
    staged = StagedOutDir(out) if out else None
    from ..network import read_network
    from ..scenario import load_scenario
    from ..experiments.simulate import simulate_scenario

    options = configure_controllers(names, **adaptive)
    sc = load_scenario(scenario, net=net, routes=routes, begin=begin, end=end)
    network = read_network(sc.net_file)
    fleets = _emergency_vehicles(sc, network, seed_list, emergency, emergency_file, emergency_red)
    red = emergency_red or RED_OBEY
    terminal = console()
    terminal.print(
        f"[bold]{sc.name}[/]: {len(network.intersections)} signals, "
        f"window {sc.begin:g}-{sc.end:g} s, demand x{demand_scale:g}, "
        f"controllers {', '.join(names)}, seeds {_seed_text(seed_list)}"
        + (
            f", {len(next(iter(fleets.values())))} emergency vehicles per run ({red} red)"
            if fleets
            else ""
        )
    )
    with (
        staged or tempfile.TemporaryDirectory(prefix="ctraffic-") as workdir,
        RunProgress(terminal) as progress,
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
            # --gui shows one run: its failure is the command's, in one line (exit 2), not a row.
            keep_going=not gui,
            emergency={(sc.name, seed): fleet for seed, fleet in fleets.items()},
            emergency_red=red,
            on_prepared=progress.prepared,
            on_preparing=progress.preparing,
            on_progress=progress.advance,
            on_done=progress.done,
            on_failed=progress.failed,
        )
    from ..report import comparison_rich

    title = f"{sc.name}: mean ± 95% CI over {len(seed_list)} seed(s); (% change vs {names[0]})"
    terminal.print(comparison_rich(outcome.comparison, baseline=names[0], title=title))
    for result in outcome.results:
        if result.kpis["vehicles_loaded"] == 0:
            terminal.print(
                f"[yellow]warning[/]: {result.controller} seed {result.seed}: "
                "no vehicle departed in the window"
            )
    if staged is not None:
        terminal.print(
            f"results written to {staged.final}/ (summary.csv, comparison.md, one folder per run"
            f"{', failures.csv' if outcome.failures else ''})"
        )
    exit_on_problems(terminal, outcome.results, outcome.failures)


def _controller_names(controllers: str) -> list[str]:
    """Return the names of ``--controller``; refuse none, and a name given twice."""
    names = [c.strip() for c in controllers.split(",") if c.strip()]
    if not names:
        raise InputError("--controller is empty: name at least one controller")
    if len(set(names)) != len(names):
        raise InputError(f"--controller {controllers!r} names a controller twice")
    return names


def _check_run(names: list[str], seeds: list[int], jobs: int | None, gui: bool) -> None:
    """Refuse a ``--jobs`` or ``--gui`` that cannot run, before any work."""
    if jobs is not None and jobs < 1:
        raise InputError(f"--jobs must be at least 1, got {jobs}")
    if gui and len(names) * len(seeds) > 1:
        raise InputError("--gui shows one run: give one controller and one seed")
    if gui and sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
        # sumo-gui draws through X11 (FOX) here: refused before the preparations, which may take
        # minutes (a display that is set but unusable makes sumo-gui exit at once, with its reason).
        raise InputError(
            "--gui: sumo-gui cannot open a display: DISPLAY is not set (run without --gui, "
            "or give it an X display: ssh -X, xvfb-run)"
        )


def _emergency_vehicles(
    sc, network, seeds: list[int], count: int, file: str | None, red: str | None
) -> dict:
    """Return each seed's emergency vehicles (``sim.emergency.plan_emergency``); {} for none.

    Refuses ``--emergency-red`` without emergency vehicles, before any work.
    """
    from ..sim.emergency import plan_emergency

    if red is not None and not count and file is None:
        raise InputError("--emergency-red needs --emergency N or --emergency-file")
    return plan_emergency(
        network,
        seeds,
        begin=sc.begin,
        end=sc.end,
        count=count,
        file=Path(file) if file is not None else None,
    )


def _seed_text(seeds: list[int]) -> str:
    """Write seeds as a range, '1-5', when they are one; else comma-separated."""
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}-{seeds[-1]}"
    return ",".join(map(str, seeds))
