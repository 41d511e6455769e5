"""The ``ctraffic`` command line: parse options, call the library, print; errors become exit codes.

One module per command or command group; ``_common`` holds what they share. The groups that
pull in heavy libraries (LightGBM, OR-Tools, uvicorn) are imported only when run or listed.
"""

from __future__ import annotations

import importlib

import click

from ._common import run
from .benchmark import benchmark_command
from .calibrate import calibrate_command
from .collect import collect_command
from .controllers import controllers_command
from .plans import plans_group
from .scenarios import scenarios_command
from .simulate import simulate_command

__all__ = ["cli", "main"]


class _LazyGroup(click.Group):
    """A group whose bigger commands are imported only when run (or listed by --help).

    ``forecast`` pulls in LightGBM and matplotlib, ``optimize`` OR-Tools and SciPy: together
    about a second that every other command, ``simulate`` included, need not pay at start-up.
    """

    _lazy = {
        "forecast": ("citybrain_traffic.cli.forecast", "forecast"),
        "optimize": ("citybrain_traffic.cli.optimize", "optimize_command"),
        "serve": ("citybrain_traffic.cli.serve", "serve"),
        "publish": ("citybrain_traffic.cli.publish", "publish"),
        "adapter": ("citybrain_traffic.cli.adapter", "adapter"),
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Name every command, the lazy ones included, in alphabetical order."""
        return sorted({*super().list_commands(ctx), *self._lazy})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        """Return the command ``name``, importing its module first when it is a lazy one."""
        if name in self._lazy and name not in self.commands:
            module, attribute = self._lazy[name]
            self.add_command(getattr(importlib.import_module(module), attribute), name)
        return super().get_command(ctx, name)


@click.group(
    cls=_LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(package_name="citybrain-traffic")
def cli() -> None:
    """citybrain-traffic: adaptive traffic-signal control, measured in SUMO."""


for _command in (
    benchmark_command,
    calibrate_command,
    collect_command,
    controllers_command,
    plans_group,
    scenarios_command,
    simulate_command,
):
    cli.add_command(_command)


def main() -> None:
    """Run ``ctraffic``: one clear line and exit code 2 for bad input, never a traceback.

    Ctrl-C exits with 130 and SIGTERM with 143 (128 + the signal's number, as a shell reports a
    process the signal killed), after the same cleanup.
    """
    run(cli)
