"""``ctraffic calibrate``: the saturation flow of a scenario's lanes, from queue discharges."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from ..errors import InputError
from ._common import console, demand_scale_option, fresh_out_file, parse_seeds


@click.command("calibrate")
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
def calibrate_command(
    scenario: str | None, seed: int, demand_scale: float, out: str | None
) -> None:
    """Measure saturation flow (veh/h of green per lane) in SCENARIO's simulation.

    Runs the scenario under its own programs and, whenever a lane's green starts with at least
    8 vehicles queued, times their discharge over the stop line; the headways from the 5th
    queued vehicle on (the HCM method) give the saturation flow, 3600 / mean headway. Prints the
    per-lane figures and the network's median (lanes with at least 20 headways), which
    `ctraffic optimize --saturation-flow` can take. When no lane has 20 headways the demand
    queues too rarely: exit code 2, and a heavier --demand-scale is the remedy.
    """
    from ..experiments.calibrate import MIN_LANE_HEADWAYS, MIN_QUEUE, network_saturation_flow
    from ..experiments.calibrate import calibrate as measure
    from ..network import read_network
    from ..scenario import load_scenario

    parse_seeds(str(seed))  # a seed SUMO takes
    target = fresh_out_file(out) if out else None
    sc = load_scenario(scenario)
    network = read_network(sc.net_file)
    terminal = console()
    terminal.print(
        f"[bold]{sc.name}[/]: measuring queue discharge at {len(network.intersections)} signals..."
    )
    with tempfile.TemporaryDirectory(prefix="ctraffic-") as tmp:
        table = measure(sc, network, workdir=Path(tmp), seed=seed, demand_scale=demand_scale)
    if table.empty:
        raise InputError(
            f"{sc.name}: no green started with a queue of {MIN_QUEUE} or more vehicles "
            f"at demand x{demand_scale:g}; simulate a heavier peak (a larger --demand-scale)"
        )
    terminal.print(table.to_string(index=False, float_format=lambda v: f"{v:,.2f}"))
    flow = network_saturation_flow(table)
    terminal.print(
        f"network saturation flow (median of lanes with {MIN_LANE_HEADWAYS} headways or more): "
        f"{flow:,.0f} veh/h/lane"
    )
    if target is not None:
        target.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(target, index=False)
