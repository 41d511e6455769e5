"""``ctraffic plans``: check timing plans against a network."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import InputError


@click.group("plans")
def plans_group() -> None:
    """Check timing plans (JSON from `ctraffic optimize`, or SUMO tlLogic files)."""


@plans_group.command("validate")
@click.argument("plan_file", type=click.Path(dir_okay=False))
@click.option(
    "--net",
    required=True,
    type=click.Path(dir_okay=False),
    help="The SUMO network the plans were made for.",
)
def validate_command(plan_file: str, net: str) -> None:
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
