"""``ctraffic scenarios``: the scenarios that ship with the package."""

from __future__ import annotations

import click


@click.command("scenarios")
def scenarios_command() -> None:
    """List the bundled scenarios."""
    from ..scenario import DEFAULT_SCENARIO, bundled_scenarios

    for name, description in bundled_scenarios().items():
        marker = " (default)" if name == DEFAULT_SCENARIO else ""
        click.echo(f"{name:<10} {description}{marker}")
