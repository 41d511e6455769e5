"""``ctraffic publish``: send timing plans to the plan service."""

from __future__ import annotations

import os
from pathlib import Path

import click

from ..errors import InputError
from ..service.auth import WRITE_ENV
from ._common import plan_file


@click.command("publish")
@click.argument("plan_dir", type=click.Path())
@click.option(
    "--server", required=True, metavar="URL", help="The plan service, e.g. http://127.0.0.1:8080."
)
def publish(plan_dir: str, server: str) -> None:
    """Publish the plans in PLAN_DIR to the plan service, as one batch (all or none).

    PLAN_DIR is a folder written by `ctraffic optimize --out` (its plans.json, else
    plans.add.xml) or a plan file (plans JSON or SUMO tlLogic XML). The write token comes from
    the CTRAFFIC_WRITE_TOKEN variable. The server validates every plan against its network and
    refuses the whole batch, with the reasons, when one is unsafe.
    """
    from ..plans import read_plans
    from ..service.client import PlanClient

    token = os.environ.get(WRITE_ENV)
    if not token:
        raise InputError(
            f"set {WRITE_ENV} to a write token of the service (tokens never go on the command line)"
        )
    path = plan_file(Path(plan_dir))
    plans = read_plans(path)
    if not plans:
        raise InputError(f"{path} holds no timing plan")
    client = PlanClient(server, token)
    answer = client.publish(plans)
    client.close()
    versions = ", ".join(f"{p['tls_id']} v{p['version']}" for p in answer["plans"])
    click.echo(f"published {len(plans)} plan(s) from {path} as batch {answer['batch']}: {versions}")
