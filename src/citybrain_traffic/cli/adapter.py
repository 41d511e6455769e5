"""``ctraffic adapter``: reference adapters, controllers that run the plans the service serves."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..control.base import Controller
from ..errors import InputError
from ..service.auth import READ_ENV, WRITE_ENV
from ._common import StagedOutDir, console, exit_on_problems, plan_file

if TYPE_CHECKING:
    import pandas as pd

    from ..network import Network
    from ..scenario import Scenario


@click.group("adapter")
def adapter() -> None:
    """Reference adapters: controllers that take their plans from the plan service."""  # noqa: D401


@adapter.command("sumo")
@click.argument("scenario", required=False)
@click.option(
    "--server",
    metavar="URL",
    help="The plan service to pull plans from (read token: CTRAFFIC_READ_TOKEN).",
)
@click.option(
    "--plans",
    "plans_file",
    type=click.Path(),
    metavar="FILE",
    help="Instead of --server: run the plans of FILE (or an optimize folder) directly, each "
    "from its valid_from or the start; the reference an adapter run is compared with.",
)
@click.option(
    "--seed", type=int, default=1, show_default=True, help="Random seed of the simulation."
)
@click.option(
    "--begin",
    type=float,
    help="Start of the window, s of simulation time [default: the scenario's].",
)
@click.option(
    "--end", type=float, help="End of the window, s of simulation time [default: the scenario's]."
)
@click.option(
    "--poll",
    "poll_s",
    type=click.FloatRange(min=1),
    default=60.0,
    show_default=True,
    help="Pull every signal's plan this often, s of simulation time.",
)
@click.option(
    "--day",
    default="2026-01-05",
    show_default=True,
    help="Date whose midnight is simulation time 0 (plans valid at times of day).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    help="New or empty folder: kpis.json, intersections.csv, timeseries.csv/png, adapter.json.",
)
def adapter_sumo(
    scenario: str | None,
    server: str | None,
    plans_file: str | None,
    seed: int,
    begin: float | None,
    end: float | None,
    poll_s: float,
    day: str,
    out: str | None,
) -> None:
    """Run SCENARIO in SUMO with every signal driven by the plans the service serves.

    Each signal pulls its plan in force at the simulated time when the run starts and every
    --poll seconds (ETags: an unchanged plan costs a 304), checks it against its own program, and
    switches to a new plan at its next cycle boundary, keeping the plan's offset. A signal with
    no plan, or a service out of reach, keeps the program it runs. Prints the run's KPIs.
    """
    import pandas as pd

    from ..harness.matrix import run_matrix
    from ..network import read_network
    from ..report import write_run_files
    from ..scenario import load_scenario
    from ..harness.runner import RunSpec

    if (server is None) == (plans_file is None):
        raise InputError(
            "give either --server URL (pull plans from the service) "
            "or --plans FILE (run them directly)"
        )
    try:
        origin = pd.Timestamp(day)
    except ValueError:
        raise InputError(f"--day {day!r} is not a date (expected YYYY-MM-DD)") from None
    staged = StagedOutDir(out) if out else None
    sc = load_scenario(scenario, begin=begin, end=end)
    network = read_network(sc.net_file)
    controller, source = _plan_source(server, plans_file, poll_s, origin, sc, network)
    click.echo(
        f"{sc.name}: {len(network.intersections)} signals, window {sc.begin:g}-{sc.end:g} s, "
        f"seed {seed}, {source}"
    )
    with staged or tempfile.TemporaryDirectory(prefix="ctraffic-") as workdir:
        spec = RunSpec(
            scenario=sc,
            network=network,
            controller=controller.fit(sc, network, Path(workdir), demand_scale=1.0),
            seed=seed,
            workdir=Path(workdir) / "sumo",
        )
        (result,) = run_matrix([spec])
        report = result.controller_report or {}
        _print_run(result.kpis, report)
        if staged is not None:
            write_run_files(result, Path(workdir))
            (Path(workdir) / "adapter.json").write_text(json.dumps(report, indent=1) + "\n")
    if staged is not None:
        click.echo(f"results written to {staged.final}/", err=True)
    exit_on_problems(console(), [result])


def _plan_source(
    server: str | None,
    plans_file: str | None,
    poll_s: float,
    origin: pd.Timestamp,
    sc: Scenario,
    network: Network,
) -> tuple[Controller, str]:
    """Return the run's controller, unfitted, and a description of where its plans come from.

    With ``server``: the adapter pulling them from the service (checked to answer first); else
    the plans of ``plans_file``, validated against ``network``, run directly.
    """
    from ..plans import read_plans, validate_all
    from ..service.adapter import DirectPlans, ServiceAdapter, schedule_from
    from ..service.client import PlanClient

    if plans_file is not None:
        plans = validate_all(read_plans(plan_file(Path(plans_file))), network)
        schedule = schedule_from(plans, begin=sc.begin, end=sc.end, day=origin)
        return (
            DirectPlans(schedule=tuple(schedule)),
            f"{len(schedule)} plan(s) from {plans_file}, run directly",
        )
    assert server is not None  # the command takes --server or --plans
    token = os.environ.get(READ_ENV) or os.environ.get(WRITE_ENV)
    if not token:
        raise InputError(
            f"set {READ_ENV} to a read token of the service (tokens never go on the command line)"
        )
    probe = PlanClient(server, token)
    probe.health()
    probe.close()
    adapter = ServiceAdapter(server, token, poll_s=poll_s, day=origin)
    return adapter, f"plans pulled from {server} every {poll_s:g} s"


def _print_run(kpis: Mapping[str, Any], report: object) -> None:
    """Print a run's KPIs and, for an adapter run, what its pulls brought."""
    from ..sim.metrics import KPI_COLUMNS

    for key in KPI_COLUMNS:
        value = kpis[key]
        click.echo(
            f"  {key:<22} {value:,.3f}" if isinstance(value, float) else f"  {key:<22} {value:,}"
        )
    if isinstance(report, Mapping) and "stats" in report:
        stats = report["stats"]
        click.echo(
            f"adapter: {stats['pulls']} pulls: {stats['new']} new plan(s), "
            f"{stats['not_modified']} not modified, {stats['no_plan']} without a plan, "
            f"{stats['refused']} refused as unsafe, {stats['failed']} failed; "
            f"{len(report['installed'])} plan(s) installed"
        )
